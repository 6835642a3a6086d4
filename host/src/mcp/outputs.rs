//! Each tool's result (`structuredContent`) as a type, and the call results
//! built from them (the same text as a content item). A result type's
//! derived JSON Schema is the tool's `outputSchema`, so what Warden sends and
//! what it announces cannot disagree. Field docs are the descriptions clients
//! see.

use std::collections::BTreeMap;

use epoch_time::format_rfc3339_ms as rfc3339;
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::schemars::JsonSchema;
use serde::Serialize;

use crate::contract::bindings::agent::exports::warden::plugin::agent::Usage;
use crate::sessions::{TurnError, TurnResult};
use crate::types::SessionSummary;

/// What `<agent>` and `<agent>-reply` return, whether the turn ran or failed.
#[derive(Debug, Default, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(crate = "rmcp::schemars")]
pub struct TurnOutput {
    /// The agent's thread id; pass it to `<agent>-reply`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
    /// Warden's session key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The agent's answer, or the error.
    pub content: String,
    /// True when content was cut to fit; the note at its end says where the full answer is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<bool>,
    /// Path of the agent's full transcript, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transcript: Option<String>,
    /// Tokens the turn used, as the agent reports them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<TokenUsage>,
    /// What the agent warned about while the turn still succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warnings: Option<Vec<String>>,
    /// Why the call failed (only on a failed call).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
}

impl From<TurnResult> for TurnOutput {
    fn from(turn: TurnResult) -> Self {
        TurnOutput {
            thread_id: Some(turn.thread_id),
            session_id: Some(turn.session_id),
            content: turn.content,
            truncated: Some(turn.truncated_from.is_some()),
            transcript: turn.transcript.map(|path| path.display().to_string()),
            usage: turn.usage.map(TokenUsage::from),
            warnings: Some(turn.warnings),
            error: None,
        }
    }
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(crate = "rmcp::schemars", inline)]
pub struct TokenUsage {
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub output_tokens: u64,
    pub reasoning_output_tokens: u64,
}

impl From<Usage> for TokenUsage {
    fn from(u: Usage) -> Self {
        TokenUsage {
            input_tokens: u.input_tokens,
            cached_input_tokens: u.cached_input_tokens,
            output_tokens: u.output_tokens,
            reasoning_output_tokens: u.reasoning_output_tokens,
        }
    }
}

/// A failed call's reason; the same message is the result's `content`.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars", inline)]
pub struct ErrorInfo {
    /// invalid, not-found, busy, cancelled, timeout, conflict, agent, plugin or internal.
    pub kind: String,
    pub message: String,
}

/// A failed call's `structuredContent`: `content` and `error`, plus what the
/// tool's own result says when it can (e.g. `endSession`'s `sessionId`).
#[derive(Debug, Serialize)]
struct Failure<T: Serialize> {
    pub content: String,
    pub error: ErrorInfo,
    #[serde(flatten)]
    pub detail: T,
}

/// Nothing beyond `content` and `error`.
#[derive(Debug, Serialize)]
pub struct NoDetail {}

/// What `listSessions` returns.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(rename_all = "camelCase")]
pub struct SessionList {
    /// One page of live sessions, most recently used first.
    pub sessions: Vec<SessionItem>,
    /// Pass as `cursor` for the next page; absent after the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// One session as `listSessions` and `warden sessions list --json` show it.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(crate = "rmcp::schemars", inline)]
pub struct SessionItem {
    /// The session's key.
    pub id: String,
    /// The agent holding the session's thread (its tools continue it natively).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// When the session was created (RFC 3339, UTC).
    pub created_at: String,
    /// When a turn last used the session (RFC 3339, UTC).
    pub last_accessed_at: String,
    /// Turns recorded in the session.
    pub turn_count: u32,
    /// The agent's thread id, once a turn has run.
    pub thread_id: Option<String>,
    /// The model the session asked for, if any.
    pub model: Option<String>,
    /// The session's working directory, if one was given.
    pub cwd: Option<String>,
}

impl SessionItem {
    pub fn new(s: &SessionSummary, agent: Option<&str>) -> Self {
        SessionItem {
            id: s.id.clone(),
            agent: agent.map(str::to_string),
            created_at: rfc3339(s.created_ms),
            last_accessed_at: rfc3339(s.last_accessed_ms),
            turn_count: s.turn_count,
            thread_id: s.agent_thread_id.clone(),
            model: s.model.clone(),
            cwd: s.cwd.clone(),
        }
    }
}

/// What `endSession` returns.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(crate = "rmcp::schemars")]
pub struct SessionEnded {
    /// The session asked for.
    pub session_id: String,
    /// False when there was no such session (ending is idempotent).
    pub removed: bool,
}

/// What `ping` returns.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct Pong {
    /// Always "pong".
    pub status: String,
    /// The plugin in effect for each role (for the agent-driver role, the first agent's).
    pub plugins: BTreeMap<String, String>,
    /// Each agent served, in tool order.
    pub agents: Vec<AgentStatus>,
}

/// One agent Warden serves: the tools `<name>` and `<name>-reply`.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars", inline)]
pub struct AgentStatus {
    pub name: String,
    /// The agent-driver plugin serving it.
    pub plugin: String,
    /// Whether its turns can run (its program was found at start-up).
    pub available: bool,
    /// Why it is unavailable, and the fix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

pub fn turn_result(outcome: Result<TurnResult, TurnError>) -> CallToolResult {
    let turn = match outcome {
        Ok(turn) => turn,
        Err(error) => return turn_failure(kind_of(&error), &error.to_string()),
    };
    let text = turn.content.clone();
    structured(&TurnOutput::from(turn), text)
}

/// A failed turn: its output type carries the error.
pub fn turn_failure(kind: &str, message: &str) -> CallToolResult {
    let output = TurnOutput {
        content: message.into(),
        error: Some(error_info(kind, message)),
        ..TurnOutput::default()
    };
    failed(&output, message)
}

/// The `error.kind` a client sees for a failed call.
fn kind_of(error: &TurnError) -> &'static str {
    match error {
        TurnError::Invalid(_) => "invalid",
        TurnError::NotFound(_) => "not-found",
        TurnError::Busy(_) => "busy",
        TurnError::Cancelled => "cancelled",
        TurnError::Timeout(_) => "timeout",
        TurnError::Conflict(_) => "conflict",
        TurnError::Agent(_) => "agent",
        TurnError::Plugin(_) => "plugin",
    }
}

fn error_info(kind: &str, message: &str) -> ErrorInfo {
    ErrorInfo { kind: kind.into(), message: message.into() }
}

/// A failed call of a tool whose result has no error field.
pub fn failure<T: Serialize>(error: &TurnError, detail: T) -> CallToolResult {
    let message = error.to_string();
    let output = Failure { content: message.clone(), error: error_info(kind_of(error), &message), detail };
    failed(&output, &message)
}

fn failed(output: &impl Serialize, message: &str) -> CallToolResult {
    let mut result = CallToolResult::error(vec![ContentBlock::text(message.to_string())]);
    result.structured_content = Some(serde_json::to_value(output).expect("results serialise"));
    result
}

pub fn structured(output: &impl Serialize, text: String) -> CallToolResult {
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(serde_json::to_value(output).expect("results serialise"));
    result
}
