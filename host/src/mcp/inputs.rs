//! Each tool's arguments as a type. Its serde attributes are what the tool
//! accepts and its derived JSON Schema is what `tools/list` shows, so the two
//! cannot disagree; field docs are the descriptions clients see. The types
//! name no agent: every agent's `<name>` and `<name>-reply` tools share them.

use std::borrow::Cow;
use std::collections::BTreeMap;

use rmcp::ErrorData as McpError;
use rmcp::schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use warden_permissions::Sandbox;
use warden_permissions::requests::{APPROVAL_POLICIES, REASONING_EFFORTS};

use super::args::{ConfigValue, OneOf, Words, invalid, one_of};
use crate::sessions::{
    DEFAULT_PAGE, ListRequest, MAX_PAGE, SessionFilter, Target, TurnRequest, TurnSettings,
};

pub struct ReasoningEfforts;
impl Words for ReasoningEfforts {
    const NAME: &'static str = "ReasoningEffort";
    const ALL: &'static [&'static str] = REASONING_EFFORTS;
}

pub struct Sandboxes;
impl Words for Sandboxes {
    const NAME: &'static str = "Sandbox";
    const ALL: &'static [&'static str] = Sandbox::NAMES;
}

pub struct ApprovalPolicies;
impl Words for ApprovalPolicies {
    const NAME: &'static str = "ApprovalPolicy";
    const ALL: &'static [&'static str] = APPROVAL_POLICIES;
}

/// Arguments of `<agent>`: a turn in a new or named session. The names with
/// dashes, `config` and the last three fields are those of the removed
/// official `codex mcp-server`, so its callers keep working.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(crate = "rmcp::schemars")]
pub struct TurnArgs {
    /// What the agent should do.
    pub prompt: String,
    /// Your key for the session, to continue it later (any printable text).
    pub session_id: Option<String>,
    /// Forget the session's history and start a new thread.
    #[serde(default)]
    pub reset_session: bool,
    /// Model name; without it the agent's own configuration decides.
    pub model: Option<String>,
    /// How hard the model thinks.
    pub reasoning_effort: Option<OneOf<ReasoningEfforts>>,
    /// Sandbox for the commands the agent runs (bounded by the operator's `max-sandbox`).
    pub sandbox: Option<OneOf<Sandboxes>>,
    /// Working directory for the agent (absolute, inside the operator's `cwd-roots`).
    pub cwd: Option<String>,
    /// Alias of cwd.
    pub working_directory: Option<String>,
    /// When the agent asks before running a command.
    #[serde(rename = "approval-policy")]
    pub approval_policy: Option<OneOf<ApprovalPolicies>>,
    /// Configuration overrides (`-c key=value`): only keys and values the operator allows in
    /// `config-keys`, plus base_instructions, developer_instructions and compact_prompt.
    pub config: Option<BTreeMap<String, ConfigValue>>,
    /// Replace the agent's base instructions.
    #[serde(rename = "base-instructions")]
    pub base_instructions: Option<String>,
    /// Developer instructions for this turn.
    #[serde(rename = "developer-instructions")]
    pub developer_instructions: Option<String>,
    /// The prompt the agent uses when it compacts a long thread.
    #[serde(rename = "compact-prompt")]
    pub compact_prompt: Option<String>,
    /// As in `codex mcp-server`; `codex exec` offers no plan tool and no option to add one,
    /// so only false (or leaving it out) is possible.
    #[serde(rename = "include-plan-tool")]
    pub include_plan_tool: Option<bool>,
    /// Refused: a configuration profile loads settings (model provider, MCP servers, sandbox)
    /// that Warden does not let a caller choose.
    pub profile: Option<String>,
}

/// Arguments of `<agent>-reply`: the next turn of a thread or session.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(crate = "rmcp::schemars")]
pub struct ReplyArgs {
    /// What the agent should do next.
    pub prompt: String,
    /// The threadId a previous call returned.
    pub thread_id: Option<String>,
    /// Deprecated name of threadId.
    pub conversation_id: Option<String>,
    /// A Warden session key instead of a thread id.
    pub session_id: Option<String>,
}

/// Arguments of `endSession`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(crate = "rmcp::schemars")]
pub struct EndSessionArgs {
    /// The session to remove.
    pub session_id: String,
}

/// Arguments of `listSessions`: one page, most recently used first.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(crate = "rmcp::schemars")]
pub struct ListSessionsArgs {
    /// The `nextCursor` of the previous page; omit for the most recent sessions.
    pub cursor: Option<String>,
    /// Sessions per page (default 50, at most 500).
    #[schemars(range(min = 1, max = 500))]
    pub limit: Option<u32>,
    /// Only sessions with exactly this working directory.
    pub cwd: Option<String>,
    /// Only sessions that asked for exactly this model.
    pub model: Option<String>,
    /// Only sessions whose key contains this text (case-sensitive).
    pub query: Option<String>,
    /// Only sessions held by this agent (one this Warden serves). A page may
    /// then hold fewer than `limit` sessions; follow `nextCursor` for more.
    pub agent: Option<String>,
}

impl ListSessionsArgs {
    /// The request, given the names of the agents this Warden serves.
    pub fn into_request(self, tool: &str, served: &[&str]) -> Result<ListRequest, McpError> {
        if let Some(agent) = &self.agent
            && !served.contains(&agent.as_str())
        {
            return Err(invalid(
                tool,
                "agent",
                format!("is {agent:?}; this Warden serves {}", served.join(", ")),
            ));
        }
        let limit = match self.limit {
            None => DEFAULT_PAGE,
            Some(n) if (1..=MAX_PAGE).contains(&n) => n,
            Some(n) => return Err(invalid(tool, "limit", format!("is {n}; use 1 to {MAX_PAGE}"))),
        };
        let filter = SessionFilter { cwd: self.cwd, model: self.model, key_contains: self.query };
        Ok(ListRequest { filter, cursor: self.cursor, limit, agent: self.agent })
    }
}

/// Arguments of a tool that takes none.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// Derived, this schema has no `properties`, which some clients require.
impl JsonSchema for NoArgs {
    fn schema_name() -> Cow<'static, str> {
        "NoArgs".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "object", "properties": {}, "additionalProperties": false })
    }
}

/// The configuration key `compact-prompt` sets.
const COMPACT_PROMPT_KEY: &str = "compact_prompt";

impl TurnArgs {
    /// The turn `agent` runs, called through its tool `tool`.
    pub fn into_request(self, tool: &str, agent: &str) -> Result<TurnRequest, McpError> {
        if self.profile.is_some() {
            return Err(invalid(
                tool,
                "profile",
                "is refused: a profile loads configuration (model provider, MCP servers, sandbox) that \
                 Warden does not let a caller choose; pass model, reasoningEffort, sandbox, approval-policy \
                 or config instead, or ask the operator to set defaults in the agent's own configuration"
                    .into(),
            ));
        }
        if self.include_plan_tool == Some(true) {
            return Err(invalid(
                tool,
                "include-plan-tool",
                "cannot be true: `codex exec` offers no plan tool (`update_plan`) and no option to add one; \
                 omit the argument"
                    .into(),
            ));
        }
        let mut config: Vec<(String, String)> =
            self.config.unwrap_or_default().into_iter().map(|(key, value)| (key, value.to_toml())).collect();
        if let Some(text) = &self.compact_prompt {
            if config.iter().any(|(key, _)| key == COMPACT_PROMPT_KEY) {
                return Err(invalid(
                    tool,
                    "compact-prompt",
                    format!("duplicates config.{COMPACT_PROMPT_KEY}; give only one"),
                ));
            }
            config.push((COMPACT_PROMPT_KEY.into(), ConfigValue::text(text).to_toml()));
        }
        let target = match self.session_id {
            Some(id) => Target::Session { id, create: true },
            None => Target::New,
        };
        Ok(TurnRequest {
            agent: agent.to_string(),
            target,
            prompt: non_empty(tool, self.prompt)?,
            reset: self.reset_session,
            settings: TurnSettings {
                model: self.model,
                reasoning_effort: self.reasoning_effort.map(OneOf::into_string),
                sandbox: self.sandbox.map(OneOf::into_string),
                cwd: one_of(tool, &[("cwd", self.cwd), ("workingDirectory", self.working_directory)])?,
                approval_policy: self.approval_policy.map(OneOf::into_string),
                config,
                base_instructions: self.base_instructions,
                developer_instructions: self.developer_instructions,
            },
        })
    }
}

impl ReplyArgs {
    /// The turn `agent` runs, called through its tool `tool`.
    pub fn into_request(self, tool: &str, agent: &str) -> Result<TurnRequest, McpError> {
        let thread = one_of(tool, &[("threadId", self.thread_id), ("conversationId", self.conversation_id)])?;
        let target = match (thread, self.session_id) {
            (Some(thread), None) => Target::Thread(thread),
            (None, Some(id)) => Target::Session { id, create: false },
            (Some(_), Some(_)) => {
                return Err(invalid(tool, "sessionId", "cannot be given with threadId; give one".into()));
            }
            (None, None) => return Err(invalid(tool, "threadId", "is required (or sessionId)".into())),
        };
        Ok(TurnRequest {
            agent: agent.to_string(),
            target,
            prompt: non_empty(tool, self.prompt)?,
            reset: false,
            settings: TurnSettings::default(),
        })
    }
}

impl EndSessionArgs {
    pub fn session_id(self, tool: &str) -> Result<String, McpError> {
        match self.session_id.trim() {
            "" => Err(invalid(tool, "sessionId", "must not be empty".into())),
            _ => Ok(self.session_id),
        }
    }
}

fn non_empty(tool: &str, prompt: String) -> Result<String, McpError> {
    if prompt.trim().is_empty() {
        return Err(invalid(tool, "prompt", "must not be empty".into()));
    }
    Ok(prompt)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use warden_permissions::RequestLimits;

    use super::*;
    use crate::mcp::args::parse;

    fn turn(value: Value) -> Result<TurnRequest, String> {
        let Value::Object(object) = value else { panic!("an object") };
        parse::<TurnArgs>("codex", Some(object))
            .and_then(|args| args.into_request("codex", "codex"))
            .map_err(|e| e.message.into_owned())
    }

    #[test]
    fn the_wire_names_of_codex_mcp_server_are_accepted() {
        let request = turn(json!({
            "prompt": "hi", "sessionId": "s", "resetSession": true, "model": "m", "reasoningEffort": "high",
            "sandbox": "read-only", "workingDirectory": "/w", "approval-policy": "never",
            "config": {"model_verbosity": "low"}, "base-instructions": "b", "developer-instructions": "d",
            "compact-prompt": "Summarise \"this\".", "include-plan-tool": false,
        }))
        .unwrap();
        assert_eq!(request.target, Target::Session { id: "s".into(), create: true });
        assert!(request.reset);
        let s = request.settings;
        assert_eq!(
            (s.model.as_deref(), s.reasoning_effort.as_deref(), s.sandbox.as_deref(), s.cwd.as_deref()),
            (Some("m"), Some("high"), Some("read-only"), Some("/w"))
        );
        assert_eq!(s.approval_policy.as_deref(), Some("never"));
        assert_eq!(
            s.config,
            [
                ("model_verbosity".to_string(), "\"low\"".to_string()),
                ("compact_prompt".to_string(), "\"Summarise \\\"this\\\".\"".to_string())
            ]
        );
        assert_eq!(
            (s.base_instructions.as_deref(), s.developer_instructions.as_deref()),
            (Some("b"), Some("d"))
        );
    }

    #[test]
    fn what_codex_exec_cannot_do_is_refused_with_the_reason() {
        let err = turn(json!({"prompt": "hi", "profile": "fast"})).unwrap_err();
        assert!(err.starts_with("`codex`: `profile` is refused: a profile loads configuration"), "{err}");
        let err = turn(json!({"prompt": "hi", "include-plan-tool": true})).unwrap_err();
        assert!(
            err.contains("`include-plan-tool` cannot be true: `codex exec` offers no plan tool"),
            "{err}"
        );
        let err = turn(json!({"prompt": "hi", "compact-prompt": "a", "config": {"compact_prompt": "b"}}))
            .unwrap_err();
        assert!(err.contains("`compact-prompt` duplicates config.compact_prompt"), "{err}");
    }

    #[test]
    fn the_compact_prompt_key_needs_no_operator_grant() {
        assert!(warden_permissions::requests::TEXT_KEYS.contains(&COMPACT_PROMPT_KEY));
        let limits = RequestLimits::default();
        let request = turn(json!({"prompt": "hi", "compact-prompt": "line\nbreak \"quoted\""})).unwrap();
        for (key, value) in &request.settings.config {
            limits.check_config(key, value).unwrap();
        }
    }

    #[test]
    fn aliases_and_empty_values_are_refused_clearly() {
        let err = turn(json!({"prompt": "hi", "cwd": "/a", "workingDirectory": "/b"})).unwrap_err();
        assert!(err.contains("duplicates cwd / workingDirectory"), "{err}");
        assert!(turn(json!({"prompt": "  "})).unwrap_err().contains("`prompt` must not be empty"));
        let err = turn(json!({"prompt": "hi", "sandbox": "yolo"})).unwrap_err();
        assert!(
            err.contains("`sandbox` is \"yolo\"; use one of read-only, workspace-write, danger-full-access")
        );
    }

    #[test]
    fn a_tool_without_arguments_says_so() {
        let Value::Object(object) = json!({"verbose": true}) else { unreachable!() };
        let err = parse::<NoArgs>("ping", Some(object)).unwrap_err();
        assert_eq!(err.message, "`ping`: `verbose` is not an argument of `ping`; it takes none");
        parse::<NoArgs>("ping", None).unwrap();
    }

    #[test]
    fn replies_name_one_thread_or_one_session() {
        let reply = |value: Value| {
            let Value::Object(object) = value else { panic!("an object") };
            parse::<ReplyArgs>("codex-reply", Some(object))
                .and_then(|args| args.into_request("codex-reply", "codex"))
                .map_err(|e| e.message.into_owned())
        };
        let thread = reply(json!({"prompt": "x", "conversationId": "t"})).unwrap();
        assert_eq!(thread.target, Target::Thread("t".into()));
        let session = reply(json!({"prompt": "x", "sessionId": "s"})).unwrap();
        assert_eq!(session.target, Target::Session { id: "s".into(), create: false });
        assert!(reply(json!({"prompt": "x"})).unwrap_err().contains("`threadId` is required (or sessionId)"));
        let both = reply(json!({"prompt": "x", "threadId": "t", "sessionId": "s"})).unwrap_err();
        assert!(both.contains("`sessionId` cannot be given with threadId"));
        let twice = reply(json!({"prompt": "x", "threadId": "t", "conversationId": "t"})).unwrap_err();
        assert!(twice.contains("`conversationId` duplicates threadId / conversationId"));
    }
}
