//! Folding the lines of `claude -p --output-format stream-json --verbose`
//! into a turn's outcome:
//!
//! | line | what it gives |
//! |---|---|
//! | `system`/`init` | the session id (Warden's thread id), the model |
//! | `system`/`api_retry` | a progress event (the provider failed; Claude waits and retries) |
//! | `assistant` | a progress event per text and tool use |
//! | `result` (last) | the answer, usage, cost; `is_error` makes it the turn's failure |
//!
//! Other lines (`user` tool results, hooks, …) are ignored.

use serde_json::Value;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Usage {
    /// Every input token, cached or not (the Anthropic API counts cache
    /// reads and writes apart from `input_tokens`).
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub output_tokens: u64,
    pub thinking_tokens: u64,
}

/// The final `result` line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TurnResult {
    pub is_error: bool,
    /// The answer, or Claude's error message.
    pub text: String,
    pub usage: Usage,
    pub cost_usd: Option<f64>,
    /// Model requests the turn made.
    pub num_turns: u64,
}

/// What the lines of one run said so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TurnLog {
    pub session_id: Option<String>,
    pub model: Option<String>,
    pub cwd: Option<String>,
    pub result: Option<TurnResult>,
}

/// A progress line worth showing to an MCP client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    pub kind: &'static str,
    pub message: String,
}

impl TurnLog {
    /// Fold one stdout line; returns the progress it is worth (possibly
    /// several events, one per content block). A line that is not JSON is
    /// an `Err` for the caller to log.
    pub fn apply(&mut self, line: &str) -> Result<Vec<Progress>, String> {
        let event: Value = serde_json::from_str(line).map_err(|e| format!("not a JSON line: {e}"))?;
        if let Some(id) = event["session_id"].as_str() {
            self.session_id = Some(id.to_string());
        }
        Ok(match (event["type"].as_str(), event["subtype"].as_str()) {
            (Some("system"), Some("init")) => {
                self.model = event["model"].as_str().map(String::from);
                self.cwd = event["cwd"].as_str().map(String::from);
                let model = self.model.as_deref().unwrap_or("its default model");
                vec![Progress { kind: "turn-started", message: format!("claude started ({model})") }]
            }
            (Some("system"), Some("api_retry")) => vec![retry(&event)],
            (Some("assistant"), _) => assistant(&event["message"]),
            (Some("result"), _) => {
                let result = turn_result(&event);
                let message = match (result.is_error, result.cost_usd) {
                    (true, _) => "turn failed".to_string(),
                    (false, Some(cost)) => format!("turn completed (${cost:.4})"),
                    (false, None) => "turn completed".to_string(),
                };
                self.result = Some(result);
                vec![Progress { kind: "turn-completed", message }]
            }
            _ => Vec::new(),
        })
    }
}

fn retry(event: &Value) -> Progress {
    let n = |key: &str| event[key].as_u64().map_or("?".to_string(), |v| v.to_string());
    let status = event["error_status"]
        .as_u64()
        .map_or_else(|| event["error"].as_str().unwrap_or("an error").to_string(), |s| format!("HTTP {s}"));
    Progress {
        kind: "retry",
        message: format!(
            "the provider answered {status}; retry {} of {} in {} ms",
            n("attempt"),
            n("max_retries"),
            n("retry_delay_ms")
        ),
    }
}

fn assistant(message: &Value) -> Vec<Progress> {
    let blocks = message["content"].as_array().map(Vec::as_slice).unwrap_or_default();
    blocks
        .iter()
        .filter_map(|block| match block["type"].as_str()? {
            "text" => {
                let text = block["text"].as_str().unwrap_or_default();
                (!text.trim().is_empty()).then(|| Progress { kind: "message", message: first_line(text) })
            }
            "tool_use" => Some(tool_use(block)),
            _ => None,
        })
        .collect()
}

/// A tool use, named as Codex's items are: commands, file changes, other tools.
fn tool_use(block: &Value) -> Progress {
    let name = block["name"].as_str().unwrap_or("a tool");
    let input = &block["input"];
    let field = |key: &str| input[key].as_str().unwrap_or("?");
    match name {
        "Bash" => Progress {
            kind: "command-started",
            message: format!("running `{}`", first_line(field("command"))),
        },
        "Edit" | "MultiEdit" | "Write" => Progress {
            kind: "file-change",
            message: format!("{} {}", name.to_lowercase(), field("file_path")),
        },
        "NotebookEdit" => {
            Progress { kind: "file-change", message: format!("edit {}", field("notebook_path")) }
        }
        _ => Progress { kind: "tool", message: format!("using {name}") },
    }
}

fn turn_result(event: &Value) -> TurnResult {
    let usage = &event["usage"];
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let cached = n(&usage["cache_read_input_tokens"]);
    let text = event["result"].as_str().map(String::from).unwrap_or_else(|| {
        // Error subtypes (`error_max_turns`, `error_during_execution`) may carry no text.
        let errors: Vec<&str> = event["errors"]
            .as_array()
            .map(|e| e.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if errors.is_empty() {
            event["subtype"].as_str().unwrap_or_default().to_string()
        } else {
            errors.join("; ")
        }
    });
    TurnResult {
        is_error: event["is_error"].as_bool().unwrap_or(false),
        text,
        usage: Usage {
            input_tokens: n(&usage["input_tokens"]) + cached + n(&usage["cache_creation_input_tokens"]),
            cached_input_tokens: cached,
            output_tokens: n(&usage["output_tokens"]),
            thinking_tokens: n(&usage["output_tokens_details"]["thinking_tokens"]),
        },
        cost_usd: event["total_cost_usd"].as_f64(),
        num_turns: n(&event["num_turns"]),
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

    fn fold(text: &str) -> (TurnLog, Vec<Progress>) {
        let mut log = TurnLog::default();
        let progress = text.lines().flat_map(|l| log.apply(l).unwrap()).collect();
        (log, progress)
    }

    #[test]
    fn a_recorded_successful_turn() {
        let (log, progress) = fold(include_str!("../tests/fixtures/stream_success.jsonl"));
        let id = log.session_id.as_deref().unwrap();
        assert_eq!(id.len(), 36, "{id}");
        assert_eq!(log.cwd.as_deref(), Some("/tmp/ccwd"));
        let result = log.result.unwrap();
        assert!(!result.is_error);
        assert_eq!(result.text, "ANSWER n=2");
        assert_eq!(result.usage.input_tokens, 12);
        assert_eq!(result.usage.output_tokens, 5);
        assert!(result.cost_usd.unwrap() > 0.0);
        let kinds: Vec<&str> = progress.iter().map(|p| p.kind).collect();
        assert_eq!(kinds, ["turn-started", "message", "turn-completed"]);
        assert_eq!(progress[1].message, "ANSWER n=2");
        assert!(progress[2].message.starts_with("turn completed ($"), "{}", progress[2].message);
    }

    #[test]
    fn a_provider_error_is_the_result() {
        let (log, _) = fold(include_str!("../tests/fixtures/stream_error_400.jsonl"));
        let result = log.result.unwrap();
        assert!(result.is_error);
        assert_eq!(result.text, "API Error: 400 fake says no 400");
    }

    #[test]
    fn a_retry_is_reported() {
        let (log, progress) = fold(include_str!("../tests/fixtures/stream_retry_500.jsonl"));
        let retry: Vec<&Progress> = progress.iter().filter(|p| p.kind == "retry").collect();
        assert_eq!(retry.len(), 1, "{progress:?}");
        assert!(
            retry[0].message.starts_with("the provider answered HTTP 500; retry 1 of 1 in "),
            "{retry:?}"
        );
        assert!(log.result.unwrap().text.starts_with("API Error: 500"));
    }

    #[test]
    fn tool_uses_become_progress() {
        let line = serde_json::json!({
            "type": "assistant",
            "session_id": "s",
            "message": {"content": [
                {"type": "text", "text": "Let me look.\nMore."},
                {"type": "tool_use", "name": "Bash", "input": {"command": "ls -la"}},
                {"type": "tool_use", "name": "Edit", "input": {"file_path": "/w/a.rs"}},
                {"type": "tool_use", "name": "Grep", "input": {"pattern": "x"}},
                {"type": "thinking", "thinking": "hmm"},
            ]},
        });
        let mut log = TurnLog::default();
        let progress = log.apply(&line.to_string()).unwrap();
        let shown: Vec<(&str, &str)> = progress.iter().map(|p| (p.kind, p.message.as_str())).collect();
        assert_eq!(
            shown,
            [
                ("message", "Let me look."),
                ("command-started", "running `ls -la`"),
                ("file-change", "edit /w/a.rs"),
                ("tool", "using Grep"),
            ]
        );
        assert!(log.apply("not json").is_err());
    }

    #[test]
    fn an_error_result_without_text_names_its_subtype() {
        let mut log = TurnLog::default();
        log.apply(r#"{"type":"result","subtype":"error_max_turns","is_error":true,"session_id":"s"}"#)
            .unwrap();
        assert_eq!(log.result.unwrap().text, "error_max_turns");
    }
}
