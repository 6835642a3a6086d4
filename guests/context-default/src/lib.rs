//! Warden's default context builder.
//!
//! When the session already has an agent thread, the turn resumes it
//! natively (the agent keeps the full history). Otherwise, or when the caller
//! resets the session, a new thread starts; if earlier turns exist and no
//! reset was asked for, the prompt carries the last `replay-turns` turns
//! (default 2), fitted into `max-context-bytes` (default 16384) by dropping
//! the oldest turns first and then shortening what remains:
//!
//! ```text
//! Context from earlier turns of this session (oldest first):
//!
//! [Turn 1]
//! User: <prompt>
//! Assistant: <response>
//!
//! Current request:
//! <prompt>
//! ```

use warden_plugin::context::{FreshPlan, Guest, Plan, PluginError, ResumePlan, Session, Turn};

const SHORTENED: &str = " …[shortened]";

#[derive(serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
struct Settings {
    replay_turns: usize,
    max_context_bytes: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self { replay_turns: 2, max_context_bytes: 16 * 1024 }
    }
}

struct Context;

impl Guest for Context {
    fn build(session: Option<Session>, prompt: String, reset: bool) -> Result<Plan, PluginError> {
        let settings: Settings = serde_json::from_str(&warden_plugin::context::config::settings())
            .map_err(|e| PluginError::Invalid(format!("context-default settings: {e}")))?;
        let session = session.filter(|_| !reset);
        if let Some(thread_id) = session.as_ref().and_then(|s| s.agent_thread_id.clone()) {
            return Ok(Plan::Resume(ResumePlan { thread_id, recorded_prompt: prompt.clone(), prompt }));
        }
        let turns = session.map(|s| s.turns).unwrap_or_default();
        let composed = compose(&turns, &prompt, &settings);
        Ok(Plan::Fresh(FreshPlan { prompt: composed, recorded_prompt: prompt }))
    }
}

fn compose(turns: &[Turn], prompt: &str, settings: &Settings) -> String {
    let recent = &turns[turns.len().saturating_sub(settings.replay_turns)..];
    if recent.is_empty() {
        return prompt.to_string();
    }
    let budget = settings.max_context_bytes;
    let mut blocks: Vec<(String, String)> =
        recent.iter().map(|t| (t.prompt.clone(), t.response.clone())).collect();
    while blocks.len() > 1 && render(&blocks, prompt).len() > budget {
        blocks.remove(0);
    }
    let overflow = render(&blocks, prompt).len().saturating_sub(budget);
    if overflow > 0 {
        let (user, assistant) = &mut blocks[0];
        let from_assistant = overflow.min(assistant.len());
        shorten(assistant, assistant.len() - from_assistant);
        shorten(user, user.len().saturating_sub(overflow - from_assistant));
    }
    render(&blocks, prompt)
}

fn render(blocks: &[(String, String)], prompt: &str) -> String {
    let mut out = String::from("Context from earlier turns of this session (oldest first):\n\n");
    for (i, (user, assistant)) in blocks.iter().enumerate() {
        out.push_str(&format!("[Turn {}]\nUser: {user}\nAssistant: {assistant}\n\n", i + 1));
    }
    out.push_str("Current request:\n");
    out.push_str(prompt);
    out
}

/// Cut `text` to at most `keep` bytes (on a character boundary) plus a marker.
fn shorten(text: &mut String, keep: usize) {
    if text.len() <= keep {
        return;
    }
    let keep = keep.saturating_sub(SHORTENED.len());
    let cut = (0..=keep).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
    text.truncate(cut);
    text.push_str(SHORTENED);
}

warden_plugin::context::export!(Context, manifest = "warden.toml");
