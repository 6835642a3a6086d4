//! The tools Warden offers, with their input and output schemas.

use std::sync::Arc;

use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde_json::{Value, json};

pub const REASONING_EFFORTS: &[&str] = &["none", "minimal", "low", "medium", "high", "xhigh"];
pub const SANDBOXES: &[&str] = &["read-only", "workspace-write", "danger-full-access"];
pub const APPROVAL_POLICIES: &[&str] = &["untrusted", "on-failure", "on-request", "never"];

pub const CODEX_ARGS: &[&str] = &[
    "prompt",
    "sessionId",
    "resetSession",
    "model",
    "reasoningEffort",
    "sandbox",
    "cwd",
    "workingDirectory",
    "approval-policy",
    "config",
    "base-instructions",
    "developer-instructions",
];
pub const REPLY_ARGS: &[&str] = &["prompt", "threadId", "conversationId", "sessionId"];

fn schema(value: Value) -> Arc<JsonObject> {
    match value {
        Value::Object(map) => Arc::new(map),
        _ => unreachable!("tool schemas are JSON objects"),
    }
}

/// What `codex` and `codex-reply` return in `structuredContent`.
fn turn_output() -> Arc<JsonObject> {
    schema(json!({
        "type": "object",
        "properties": {
            "threadId": { "type": "string", "description": "Codex's thread id; pass it to codex-reply." },
            "sessionId": { "type": "string", "description": "Warden's session key." },
            "content": { "type": "string", "description": "The agent's answer, or the error." },
            "truncated": { "type": "boolean", "description": "True when content was cut to fit; the note at its end says where the full answer is." },
            "transcript": { "type": "string", "description": "Path of the agent's full transcript, when known." },
            "usage": {
                "type": "object",
                "properties": {
                    "inputTokens": { "type": "integer" },
                    "cachedInputTokens": { "type": "integer" },
                    "outputTokens": { "type": "integer" },
                    "reasoningOutputTokens": { "type": "integer" }
                }
            },
            "warnings": { "type": "array", "items": { "type": "string" } },
            "error": {
                "type": "object",
                "properties": { "kind": { "type": "string" }, "message": { "type": "string" } },
                "required": ["kind", "message"]
            }
        },
        "required": ["content"]
    }))
}

pub fn all() -> Vec<Tool> {
    let text = |description: &str| json!({ "type": "string", "description": description });
    vec![
        Tool::new(
            "codex",
            "Run a Codex turn in a durable session. Without sessionId a new session starts; with one, the \
             session continues (created on first use). Sessions survive Warden restarts.",
            schema(json!({
                "type": "object",
                "properties": {
                    "prompt": text("What Codex should do."),
                    "sessionId": text("Your key for the session, to continue it later (any printable text)."),
                    "resetSession": { "type": "boolean", "description": "Forget the session's history and start a new Codex thread." },
                    "model": text("Model name; without it Codex's own configuration decides."),
                    "reasoningEffort": { "type": "string", "enum": REASONING_EFFORTS },
                    "sandbox": { "type": "string", "enum": SANDBOXES },
                    "cwd": text("Working directory for Codex (absolute)."),
                    "workingDirectory": text("Alias of cwd."),
                    "approval-policy": { "type": "string", "enum": APPROVAL_POLICIES },
                    "config": { "type": "object", "description": "Codex configuration overrides (-c key=value); values are strings, numbers, booleans or lists of those." },
                    "base-instructions": text("Replace Codex's base instructions."),
                    "developer-instructions": text("Developer instructions for this turn.")
                },
                "required": ["prompt"],
                "additionalProperties": false
            })),
        )
        .with_raw_output_schema(turn_output()),
        Tool::new(
            "codex-reply",
            "Continue a Codex thread by threadId (or the deprecated conversationId), or a Warden session by \
             sessionId. A thread unknown to Warden is recovered from Codex's own transcript on disk.",
            schema(json!({
                "type": "object",
                "properties": {
                    "prompt": text("What Codex should do next."),
                    "threadId": text("The threadId a previous call returned."),
                    "conversationId": text("Deprecated name of threadId."),
                    "sessionId": text("A Warden session key instead of a thread id.")
                },
                "required": ["prompt"],
                "additionalProperties": false
            })),
        )
        .with_raw_output_schema(turn_output()),
        Tool::new(
            "listSessions",
            "List live sessions: id, Codex thread id, created and last-used times, turn count, cwd, model.",
            schema(json!({ "type": "object", "properties": {}, "additionalProperties": false })),
        )
        .with_annotations(ToolAnnotations::new().read_only(true))
        .with_raw_output_schema(schema(json!({
            "type": "object",
            "properties": { "sessions": { "type": "array", "items": { "type": "object" } } },
            "required": ["sessions"]
        }))),
        Tool::new(
            "endSession",
            "Remove a session from Warden. Codex's own transcript is kept.",
            schema(json!({
                "type": "object",
                "properties": { "sessionId": text("The session to remove.") },
                "required": ["sessionId"],
                "additionalProperties": false
            })),
        )
        .with_raw_output_schema(schema(json!({
            "type": "object",
            "properties": { "sessionId": { "type": "string" }, "removed": { "type": "boolean" } },
            "required": ["sessionId", "removed"]
        }))),
        Tool::new(
            "ping",
            "Check that Warden is running; reports the plugin in effect for each role.",
            schema(json!({ "type": "object", "properties": {}, "additionalProperties": false })),
        )
        .with_annotations(ToolAnnotations::new().read_only(true))
        .with_raw_output_schema(schema(json!({
            "type": "object",
            "properties": {
                "status": { "type": "string" },
                "plugins": { "type": "object", "additionalProperties": { "type": "string" } }
            },
            "required": ["status", "plugins"]
        }))),
    ]
}
