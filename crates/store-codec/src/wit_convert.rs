//! Conversion between the contract's session types and the on-disk form.
//! The contract's Rust types come from the plugin SDK, which this native
//! crate does not depend on, so this is a macro that each storage guest
//! expands once with the path of its role's types:
//! `store_codec::wit_conversions!(warden_plugin::storage);` at its crate root
//! defines a `wit_convert` module.

#[macro_export]
macro_rules! wit_conversions {
    ($($types:ident)::+) => {
        mod wit_convert {
            use ::store_codec::record::StoredSession;
            use ::store_codec::summary::SummaryView;

            use $($types)::+::{PluginError, Session, SessionSummary, Turn};

            pub fn from_wit(s: Session) -> Result<StoredSession, PluginError> {
                let extra =
                    ::store_codec::record::parse_extra(&s.extra_json).map_err(PluginError::Invalid)?;
                Ok(StoredSession {
                    format: ::store_codec::record::FORMAT,
                    key: s.id,
                    revision: s.revision,
                    created_ms: s.created_ms,
                    last_accessed_ms: s.last_accessed_ms,
                    turns: s
                        .turns
                        .into_iter()
                        .map(|t| ::store_codec::record::StoredTurn {
                            prompt: t.prompt,
                            response: t.response,
                            timestamp_ms: t.timestamp_ms,
                        })
                        .collect(),
                    agent_thread_id: s.agent_thread_id,
                    model: s.model,
                    reasoning_effort: s.reasoning_effort,
                    cwd: s.cwd,
                    sandbox: s.sandbox,
                    extra,
                })
            }

            pub fn to_wit(s: StoredSession) -> Result<Session, PluginError> {
                Ok(Session {
                    id: s.key,
                    created_ms: s.created_ms,
                    last_accessed_ms: s.last_accessed_ms,
                    turns: s
                        .turns
                        .into_iter()
                        .map(|t| Turn {
                            prompt: t.prompt,
                            response: t.response,
                            timestamp_ms: t.timestamp_ms,
                        })
                        .collect(),
                    agent_thread_id: s.agent_thread_id,
                    model: s.model,
                    reasoning_effort: s.reasoning_effort,
                    cwd: s.cwd,
                    sandbox: s.sandbox,
                    revision: s.revision,
                    extra_json: ::serde_json::to_string(&s.extra)
                        .map_err(|e| PluginError::Corrupt(format!("extra fields: {e}")))?,
                })
            }

            pub fn summary(v: SummaryView) -> SessionSummary {
                SessionSummary {
                    id: v.key,
                    created_ms: v.created_ms,
                    last_accessed_ms: v.last_accessed_ms,
                    turn_count: v.turns,
                    agent_thread_id: v.agent_thread_id,
                    model: v.model,
                    cwd: v.cwd,
                }
            }

            pub fn summary_of(s: &StoredSession) -> SessionSummary {
                summary(SummaryView::of(s))
            }

            /// Whether a session passes a listing's filter: every field set must match.
            pub fn matches(filter: &$($types)::+::storage_catalog::SessionFilter, s: &SummaryView) -> bool {
                filter.cwd.as_ref().is_none_or(|cwd| s.cwd.as_ref() == Some(cwd))
                    && filter.model.as_ref().is_none_or(|model| s.model.as_ref() == Some(model))
                    && filter.key_contains.as_ref().is_none_or(|text| s.key.contains(text.as_str()))
            }
        }
    };
}
