//! Every value that reaches an agent's command line is checked here first,
//! whatever its origin: the MCP caller's arguments against the operator's
//! request limits, and what one plugin hands to another (a stored session, a
//! context plugin's plan, an agent's outcome) against the schema the next
//! step expects. The spawn check in `warden-permissions` enforces the same
//! limits again on the final argument list; these checks exist so that a
//! refusal names its origin and the setting that would allow it.

use std::path::PathBuf;

use warden_permissions::value::{check_path, check_uuid};
use warden_permissions::{PrincipalBounds, RequestLimits};

use super::{TurnError, TurnSettings};
use crate::types::{Plan, Session};

/// What the operator allows a turn, taken from the agent's grant.
#[derive(Clone, Debug, Default)]
pub struct TurnLimits {
    pub requests: RequestLimits,
    pub cwd_roots: Vec<PathBuf>,
}

impl TurnLimits {
    /// A caller's settings; the error names the argument and the operator setting.
    pub fn check_caller(&self, settings: &TurnSettings) -> Result<(), TurnError> {
        let r = &self.requests;
        let refuse = |field: &str, why: String| TurnError::Invalid(format!("`{field}`: {why}"));
        if let Some(sandbox) = &settings.sandbox {
            r.check_sandbox(sandbox).map_err(|e| refuse("sandbox", e))?;
        }
        if let Some(policy) = &settings.approval_policy {
            r.check_approval_policy(policy).map_err(|e| refuse("approval-policy", e))?;
        }
        if let Some(model) = &settings.model {
            r.check_model(model).map_err(|e| refuse("model", e))?;
        }
        if let Some(effort) = &settings.reasoning_effort {
            r.check_reasoning_effort(effort).map_err(|e| refuse("reasoningEffort", e))?;
        }
        for (key, value) in &settings.config {
            r.check_config(key, value).map_err(|e| refuse(&format!("config.{key}"), e))?;
        }
        if let Some(cwd) = &settings.cwd {
            check_path(cwd, &self.cwd_roots).map_err(|e| refuse("cwd", e))?;
        }
        Ok(())
    }

    /// A session as a storage (or agent, when rehydrating) plugin returned it.
    pub fn check_session(&self, session: &Session, origin: &str) -> Result<(), TurnError> {
        let r = &self.requests;
        let refuse = |field: &str, why: String| {
            TurnError::Invalid(format!(
                "{origin} returned session {:?} with an unusable `{field}`: {why}; the session was not used",
                session.id
            ))
        };
        if let Some(thread) = &session.agent_thread_id {
            check_uuid(thread).map_err(|e| refuse("agent-thread-id", e))?;
        }
        if let Some(sandbox) = &session.sandbox {
            r.check_sandbox(sandbox).map_err(|e| refuse("sandbox", e))?;
        }
        if let Some(model) = &session.model {
            r.check_model(model).map_err(|e| refuse("model", e))?;
        }
        if let Some(effort) = &session.reasoning_effort {
            r.check_reasoning_effort(effort).map_err(|e| refuse("reasoning-effort", e))?;
        }
        if let Some(cwd) = &session.cwd {
            check_path(cwd, &self.cwd_roots).map_err(|e| refuse("cwd", e))?;
        }
        Ok(())
    }
}

/// A caller's settings and the session a turn continues, against what the
/// operator lets this principal ask (`[principals.<name>]`); the error names
/// the principal's section.
pub fn check_principal(
    principal: &str,
    bounds: &PrincipalBounds,
    settings: &TurnSettings,
    session: &Session,
) -> Result<(), TurnError> {
    let refuse = |field: &str, why: String| {
        TurnError::Invalid(format!(
            "`{field}`: {why}; the operator sets this under [principals.{principal:?}]"
        ))
    };
    if let Some(sandbox) = settings.sandbox.as_ref().or(session.sandbox.as_ref()) {
        bounds.check_sandbox(sandbox).map_err(|e| refuse("sandbox", e))?;
    }
    if let Some(policy) = &settings.approval_policy {
        bounds.check_approval_policy(policy).map_err(|e| refuse("approval-policy", e))?;
    }
    for (key, value) in &settings.config {
        bounds.check_config(key, value).map_err(|e| refuse(&format!("config.{key}"), e))?;
    }
    if let Some(cwd) = settings.cwd.as_ref().or(session.cwd.as_ref()) {
        bounds.check_cwd(cwd).map_err(|e| refuse("cwd", e))?;
    }
    Ok(())
}

/// A thread id from a caller or a plugin: agents' thread ids are UUIDs.
pub fn check_thread(thread: &str, origin: &str) -> Result<(), TurnError> {
    check_uuid(thread).map_err(|e| TurnError::Invalid(format!("{origin} gave the thread id {e}")))
}

/// A context plugin's plan: a resumed thread must be a thread id.
pub fn check_plan(plan: &Plan, context_plugin: &str) -> Result<(), TurnError> {
    if let Plan::Resume(resume) = plan {
        check_thread(&resume.thread_id, &format!("context plugin `{context_plugin}`"))?;
    }
    Ok(())
}
