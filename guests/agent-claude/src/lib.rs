//! Warden's agent driver for Claude Code: one `claude -p --output-format
//! stream-json --verbose` run per turn (`--resume <session>` to continue),
//! the prompt on standard input, its lines turned into progress and the
//! turn's outcome (see `claude_protocol::events`); sessions unknown to the
//! store are rebuilt from Claude Code's transcripts (see `transcripts`).
//!
//! Turn options: `model` → `--model`; `developer-instructions` →
//! `--append-system-prompt`; `sandbox` → the matching `--permission-mode`
//! (`claude_protocol::argv::permission_mode_for_sandbox`), else the
//! `permission-mode` setting. Codex-only options (`config-overrides`,
//! `base-instructions`) are refused; `reasoning-effort` and
//! `approval-policy` are ignored with a warning.
//!
//! Settings: `program` (the granted program name, default "claude"),
//! `permission-mode` (when the turn names no sandbox; default: Claude's own),
//! `read-timeout-ms` (how long one wait for output lasts, default 1000).

mod transcripts;

use claude_protocol::argv::{TurnSpec, permission_mode_for_sandbox, print_args};
use claude_protocol::events::{TurnLog, TurnResult};
use warden_plugin::agent::lines;
use warden_plugin::agent::log::{Level, log};
use warden_plugin::agent::process::{self, SpawnRequest, StdinSource};
use warden_plugin::agent::progress::{ProgressEvent, report};
use warden_plugin::agent::{
    Guest, Plan, PluginError, Session, TurnOptions, TurnOutcome, Usage, located, parse_settings, plan_parts,
};

#[derive(serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
struct Settings {
    program: String,
    permission_mode: Option<String>,
    read_timeout_ms: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self { program: "claude".into(), permission_mode: None, read_timeout_ms: 1000 }
    }
}

struct Claude;

impl Guest for Claude {
    fn run_turn(plan: Plan, options: TurnOptions) -> Result<TurnOutcome, PluginError> {
        let settings: Settings = parse_settings("agent-claude")?;
        let (session_id, prompt) = plan_parts(plan);
        let mut warnings = Vec::new();
        let spec = turn_spec(session_id, &options, &settings, &mut warnings)?;
        let child = process::spawn(&SpawnRequest {
            program: settings.program.clone(),
            args: print_args(&spec),
            env: Vec::new(),
            cwd: options.cwd,
            stdin: StdinSource::Bytes(prompt.into_bytes()),
        })?;
        let mut turn = TurnLog::default();
        let finished = lines::drain(
            &child,
            settings.read_timeout_ms,
            |line| match turn.apply(&line) {
                Ok(progress) => progress
                    .into_iter()
                    .for_each(|p| report(&ProgressEvent { kind: p.kind.into(), message: p.message })),
                Err(e) => log(Level::Debug, &format!("ignoring a claude output line ({e})")),
            },
            |_| {},
        )?;
        let cwd = turn.cwd.clone();
        let mut outcome = outcome(turn, finished.code, &finished.stderr_tail, warnings)?;
        outcome.transcript_path =
            located(&outcome.thread_id, transcripts::find(&outcome.thread_id, cwd.as_deref()));
        Ok(outcome)
    }

    fn rehydrate(thread_id: String) -> Result<Session, PluginError> {
        transcripts::rehydrate(&thread_id)
    }
}

/// The command line's options from the turn's, refusing what Claude Code cannot do.
fn turn_spec(
    session_id: Option<String>,
    options: &TurnOptions,
    settings: &Settings,
    warnings: &mut Vec<String>,
) -> Result<TurnSpec, PluginError> {
    if !options.config_overrides.is_empty() {
        return Err(PluginError::Invalid(
            "Claude Code takes no configuration overrides (`config`); leave them out for this agent".into(),
        ));
    }
    if options.base_instructions.is_some() {
        return Err(PluginError::Invalid(
            "agent-claude does not replace Claude Code's system prompt (`base-instructions`); use \
             `developer-instructions`, which it appends"
                .into(),
        ));
    }
    if let Some(effort) = &options.reasoning_effort {
        warnings.push(format!(
            "reasoning effort {effort:?} is not passed to Claude Code; its own setting applies"
        ));
    }
    if let Some(policy) = &options.approval_policy {
        warnings.push(format!(
            "approval policy {policy:?} does not apply to Claude Code; its permission mode follows `sandbox`"
        ));
    }
    let permission_mode = match &options.sandbox {
        Some(sandbox) => {
            Some(permission_mode_for_sandbox(sandbox).map_err(PluginError::Invalid)?.to_string())
        }
        None => settings.permission_mode.clone(),
    };
    Ok(TurnSpec {
        session_id,
        model: options.model.clone(),
        permission_mode,
        append_system_prompt: options.developer_instructions.clone(),
    })
}

fn outcome(
    turn: TurnLog,
    code: i32,
    stderr_tail: &str,
    warnings: Vec<String>,
) -> Result<TurnOutcome, PluginError> {
    let Some(TurnResult { is_error, text, usage, cost_usd, num_turns }) = turn.result else {
        return Err(PluginError::Failed(format!(
            "claude exited with status {code} before its result: {}",
            if stderr_tail.is_empty() { "(no error output)" } else { stderr_tail }
        )));
    };
    if is_error {
        return Err(PluginError::Failed(format!("claude failed: {text}")));
    }
    let Some(thread_id) = turn.session_id else {
        return Err(PluginError::Failed("claude finished without reporting a session id".into()));
    };
    if let Some(cost) = cost_usd {
        log(Level::Info, &format!("claude turn of session {thread_id}: {num_turns} model calls, ${cost:.6}"));
    }
    Ok(TurnOutcome {
        thread_id,
        response: text,
        usage: Some(Usage {
            input_tokens: usage.input_tokens,
            cached_input_tokens: usage.cached_input_tokens,
            output_tokens: usage.output_tokens,
            reasoning_output_tokens: usage.thinking_tokens,
        }),
        warnings,
        transcript_path: None,
    })
}

warden_plugin::agent::export!(Claude, manifest = "warden.toml");
