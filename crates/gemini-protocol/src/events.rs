//! Folding the lines of Gemini CLI's `-o stream-json` into a turn's outcome:
//!
//! | line | what it gives |
//! |---|---|
//! | `init` | the session id (Warden's thread id), the model |
//! | `message` (assistant, `delta`) | the answer, in pieces; a progress event per message |
//! | `tool_use` / `tool_result` | a progress event each |
//! | `error` | a warning (the turn goes on) |
//! | `result` (last) | success with usage, or the provider's error |
//!
//! Gemini CLI exits 0 when it is interrupted and when a stream breaks, so
//! only a `result` line with status `success` is a finished turn.

use serde_json::Value;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub output_tokens: u64,
}

/// The final `result` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TurnResult {
    Success(Usage),
    /// The error Gemini CLI reported (the provider's, usually).
    Error(String),
}

/// What the lines of one run said so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TurnLog {
    pub session_id: Option<String>,
    pub model: Option<String>,
    /// The assistant's text since the last tool call: the answer once the turn ends.
    pub answer: String,
    /// `error` lines, which do not end the turn.
    pub warnings: Vec<String>,
    pub result: Option<TurnResult>,
    /// Whether the last line was a piece of an assistant message.
    in_message: bool,
}

/// A progress line worth showing to an MCP client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    pub kind: &'static str,
    pub message: String,
}

impl TurnLog {
    /// Fold one stdout line; returns the progress it is worth. A line that
    /// is not JSON is an `Err` for the caller to log.
    pub fn apply(&mut self, line: &str) -> Result<Vec<Progress>, String> {
        let event: Value = serde_json::from_str(line).map_err(|e| format!("not a JSON line: {e}"))?;
        let mut progress = Vec::new();
        let kind = event["type"].as_str().unwrap_or_default();
        let assistant_piece = kind == "message" && event["role"] == "assistant";
        if self.in_message && !assistant_piece && !self.answer.trim().is_empty() {
            progress.push(Progress { kind: "message", message: first_line(&self.answer) });
        }
        self.in_message = assistant_piece;
        match kind {
            "init" => {
                self.session_id = event["session_id"].as_str().map(String::from);
                self.model = event["model"].as_str().map(String::from);
                let model = self.model.as_deref().unwrap_or("its default model");
                progress
                    .push(Progress { kind: "turn-started", message: format!("gemini started ({model})") });
            }
            "message" if assistant_piece => {
                if event["delta"] != true {
                    self.answer.clear();
                }
                self.answer.push_str(event["content"].as_str().unwrap_or_default());
            }
            "tool_use" => {
                // The answer is what the model says after its last tool call.
                self.answer.clear();
                progress.push(tool_use(&event));
            }
            "error" => {
                let message = event["message"].as_str().unwrap_or("an error").to_string();
                progress.push(Progress { kind: "warning", message: message.clone() });
                self.warnings.push(message);
            }
            "result" => {
                let result = match event["status"].as_str() {
                    Some("success") => TurnResult::Success(usage(&event["stats"])),
                    _ => TurnResult::Error(
                        event["error"]["message"]
                            .as_str()
                            .unwrap_or("Gemini CLI reported an error")
                            .to_string(),
                    ),
                };
                let message = match &result {
                    TurnResult::Success(_) => "turn completed".to_string(),
                    TurnResult::Error(_) => "turn failed".to_string(),
                };
                progress.push(Progress { kind: "turn-completed", message });
                self.result = Some(result);
            }
            _ => {}
        }
        Ok(progress)
    }
}

/// A tool call, named as Codex's items are: commands, file changes, other tools.
fn tool_use(event: &Value) -> Progress {
    let name = event["tool_name"].as_str().unwrap_or("a tool");
    let parameters = &event["parameters"];
    let field = |key: &str| parameters[key].as_str().unwrap_or("?").to_string();
    match name {
        "run_shell_command" => Progress { kind: "command-started", message: field("command") },
        "write_file" | "replace" => {
            Progress { kind: "file-change", message: format!("edit {}", field("file_path")) }
        }
        _ => Progress { kind: "tool", message: format!("using {name}") },
    }
}

fn usage(stats: &Value) -> Usage {
    let n = |key: &str| stats[key].as_u64().unwrap_or(0);
    Usage {
        input_tokens: n("input_tokens"),
        cached_input_tokens: n("cached"),
        output_tokens: n("output_tokens"),
    }
}

fn first_line(text: &str) -> String {
    let line = text.trim().lines().next().unwrap_or_default();
    match line.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fold(lines: &[&str]) -> (TurnLog, Vec<Progress>) {
        let mut log = TurnLog::default();
        let mut progress = Vec::new();
        for line in lines {
            progress.extend(log.apply(line).unwrap());
        }
        (log, progress)
    }

    const INIT: &str = r#"{"type":"init","timestamp":"t","session_id":"8d58fad1-9e76-4fd4-acfc-120fc613706d","model":"gemini-2.5-flash"}"#;

    #[test]
    fn a_turn_with_a_tool_call() {
        let (log, progress) = fold(&[
            INIT,
            r#"{"type":"message","role":"user","content":"list files"}"#,
            r#"{"type":"message","role":"assistant","content":"Let me ","delta":true}"#,
            r#"{"type":"message","role":"assistant","content":"look.","delta":true}"#,
            r#"{"type":"tool_use","tool_name":"run_shell_command","tool_id":"x","parameters":{"command":"ls"}}"#,
            r#"{"type":"tool_result","tool_id":"x","status":"success"}"#,
            r#"{"type":"message","role":"assistant","content":"echo: ","delta":true}"#,
            r#"{"type":"message","role":"assistant","content":"a.txt","delta":true}"#,
            r#"{"type":"error","severity":"warning","message":"loop detected"}"#,
            r#"{"type":"result","status":"success","stats":{"input_tokens":389,"output_tokens":11,"cached":5}}"#,
        ]);
        assert_eq!(log.session_id.as_deref(), Some("8d58fad1-9e76-4fd4-acfc-120fc613706d"));
        assert_eq!(log.answer, "echo: a.txt");
        assert_eq!(log.warnings, ["loop detected"]);
        assert_eq!(
            log.result,
            Some(TurnResult::Success(Usage { input_tokens: 389, cached_input_tokens: 5, output_tokens: 11 }))
        );
        let kinds: Vec<(&str, &str)> = progress.iter().map(|p| (p.kind, p.message.as_str())).collect();
        assert_eq!(
            kinds,
            [
                ("turn-started", "gemini started (gemini-2.5-flash)"),
                ("message", "Let me look."),
                ("command-started", "ls"),
                ("message", "echo: a.txt"),
                ("warning", "loop detected"),
                ("turn-completed", "turn completed"),
            ]
        );
    }

    #[test]
    fn a_provider_error_and_an_interrupted_run() {
        let (log, _) = fold(&[
            INIT,
            r#"{"type":"result","status":"error","error":{"type":"unknown","message":"[API Error: 400 bad]"}}"#,
        ]);
        assert_eq!(log.result, Some(TurnResult::Error("[API Error: 400 bad]".into())));
        let (log, _) = fold(&[INIT, r#"{"type":"message","role":"assistant","content":"par","delta":true}"#]);
        assert_eq!(log.result, None, "no result line: the run did not finish");
        assert!(TurnLog::default().apply("not json").is_err());
    }
}
