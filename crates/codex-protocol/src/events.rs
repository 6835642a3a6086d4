//! Folding `codex exec --json` events into a turn outcome. An `error` ITEM
//! is only a warning; the run failed only when a top-level `error` and
//! `turn.failed` arrive.

use serde_json::Value;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub output_tokens: u64,
    pub reasoning_output_tokens: u64,
}

/// What the events of one run said so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TurnLog {
    pub thread_id: Option<String>,
    /// Agent messages in order; the last one is the answer.
    pub messages: Vec<String>,
    pub warnings: Vec<String>,
    pub usage: Option<Usage>,
    pub completed: bool,
    /// The fatal error, from `turn.failed` or a top-level `error`.
    pub failure: Option<String>,
}

/// A progress line worth showing to an MCP client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    pub kind: &'static str,
    pub message: String,
}

impl TurnLog {
    /// Fold one stdout line; returns the progress it is worth, if any. Lines
    /// that are not JSON are reported as `Err` for the caller to log.
    pub fn apply(&mut self, line: &str) -> Result<Option<Progress>, String> {
        let event: Value = serde_json::from_str(line).map_err(|e| format!("not a JSON event: {e}"))?;
        let kind = event["type"].as_str().unwrap_or_default();
        Ok(match kind {
            "thread.started" => {
                self.thread_id = event["thread_id"].as_str().map(String::from);
                None
            }
            "turn.started" => Some(Progress { kind: "turn-started", message: "turn started".into() }),
            "turn.completed" => {
                self.completed = true;
                self.usage = Some(usage(&event["usage"]));
                Some(Progress { kind: "turn-completed", message: "turn completed".into() })
            }
            "turn.failed" => {
                let message = event["error"]["message"].as_str().unwrap_or("the turn failed").to_string();
                self.failure = Some(message);
                None
            }
            "error" => {
                let message = event["message"].as_str().unwrap_or("codex reported an error").to_string();
                self.failure.get_or_insert(message);
                None
            }
            "item.completed" => self.item_completed(&event["item"]),
            "item.started" => item_started(&event["item"]),
            _ => None,
        })
    }

    /// The answer: the last agent message.
    pub fn answer(&self) -> Option<&str> {
        self.messages.last().map(String::as_str)
    }

    fn item_completed(&mut self, item: &Value) -> Option<Progress> {
        match item["type"].as_str().unwrap_or_default() {
            "agent_message" => {
                let text = item["text"].as_str().unwrap_or_default().to_string();
                self.messages.push(text.clone());
                Some(Progress { kind: "message", message: first_line(&text) })
            }
            "error" => {
                let message = item["message"].as_str().unwrap_or_default().to_string();
                self.warnings.push(message.clone());
                Some(Progress { kind: "warning", message })
            }
            "command_execution" => {
                let command = item["command"].as_str().unwrap_or_default();
                let code = item["exit_code"].as_i64().map_or("?".to_string(), |c| c.to_string());
                Some(Progress { kind: "command", message: format!("ran `{command}` (exit {code})") })
            }
            "file_change" => {
                let changes = item["changes"].as_array().map(Vec::as_slice).unwrap_or_default();
                let files: Vec<String> = changes
                    .iter()
                    .map(|c| {
                        format!(
                            "{} {}",
                            c["kind"].as_str().unwrap_or("changed"),
                            c["path"].as_str().unwrap_or("?")
                        )
                    })
                    .collect();
                Some(Progress { kind: "file-change", message: files.join(", ") })
            }
            "mcp_tool_call" => Some(Progress { kind: "tool", message: "MCP tool call finished".into() }),
            "web_search" => Some(Progress { kind: "web-search", message: "web search finished".into() }),
            _ => None,
        }
    }
}

fn item_started(item: &Value) -> Option<Progress> {
    match item["type"].as_str().unwrap_or_default() {
        "command_execution" => Some(Progress {
            kind: "command-started",
            message: format!("running `{}`", item["command"].as_str().unwrap_or_default()),
        }),
        _ => None,
    }
}

fn usage(v: &Value) -> Usage {
    let n = |key: &str| v[key].as_u64().unwrap_or(0);
    Usage {
        input_tokens: n("input_tokens"),
        cached_input_tokens: n("cached_input_tokens"),
        output_tokens: n("output_tokens"),
        reasoning_output_tokens: n("reasoning_output_tokens"),
    }
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    if line.len() > 200 {
        let cut = (0..=200).rev().find(|&i| line.is_char_boundary(i)).unwrap_or(0);
        format!("{}…", &line[..cut])
    } else {
        line.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_successful_run() {
        let lines = [
            r#"{"type":"thread.started","thread_id":"019a0000-0000-7000-8000-000000000001"}"#,
            r#"{"type":"turn.started"}"#,
            r#"{"type":"item.completed","item":{"id":"item_0","type":"error","message":"unknown model"}}"#,
            r#"{"type":"item.started","item":{"id":"item_1","type":"command_execution","command":"ls","aggregated_output":"","exit_code":null,"status":"in_progress"}}"#,
            r#"{"type":"item.completed","item":{"id":"item_1","type":"command_execution","command":"ls","aggregated_output":"a\n","exit_code":0,"status":"completed"}}"#,
            r#"{"type":"item.completed","item":{"id":"item_2","type":"agent_message","text":"done"}}"#,
            r#"{"type":"turn.completed","usage":{"input_tokens":10,"cached_input_tokens":2,"output_tokens":5,"reasoning_output_tokens":1}}"#,
        ];
        let mut log = TurnLog::default();
        let progress: Vec<Progress> = lines.iter().filter_map(|l| log.apply(l).unwrap()).collect();
        assert_eq!(log.thread_id.as_deref(), Some("019a0000-0000-7000-8000-000000000001"));
        assert_eq!(log.answer(), Some("done"));
        assert_eq!(log.warnings, ["unknown model"]);
        assert!(log.completed && log.failure.is_none());
        assert_eq!(log.usage.as_ref().unwrap().input_tokens, 10);
        let kinds: Vec<&str> = progress.iter().map(|p| p.kind).collect();
        assert_eq!(
            kinds,
            ["turn-started", "warning", "command-started", "command", "message", "turn-completed"]
        );
        assert_eq!(progress[3].message, "ran `ls` (exit 0)");
    }

    #[test]
    fn a_failed_run() {
        let mut log = TurnLog::default();
        for line in [
            r#"{"type":"thread.started","thread_id":"t"}"#,
            r#"{"type":"error","message":"We're currently experiencing high demand"}"#,
            r#"{"type":"turn.failed","error":{"message":"We're currently experiencing high demand"}}"#,
        ] {
            log.apply(line).unwrap();
        }
        assert_eq!(log.failure.as_deref(), Some("We're currently experiencing high demand"));
        assert!(!log.completed);
        assert!(log.apply("not json").is_err());
    }
}
