//! Warden's agent driver for Gemini CLI: one headless `gemini --skip-trust
//! --allowed-mcp-server-names <none> -o stream-json` run per turn
//! (`--resume <session>` to continue), the prompt on standard input, its
//! lines turned into progress and the turn's outcome (see
//! `gemini_protocol::events`); sessions unknown to the store are rebuilt
//! from Gemini CLI's transcripts (see `transcripts`).
//!
//! Turn options: `model` → `-m`; `sandbox` → the matching
//! `--approval-mode` (`gemini_protocol::argv::approval_mode_for_sandbox`),
//! else the `approval-mode` setting. Options Gemini CLI has no flag for
//! (`config-overrides`, `base-instructions`, `developer-instructions`) are
//! refused; `reasoning-effort` and `approval-policy` are ignored with a
//! warning.
//!
//! Settings: `program` (the granted program name, default "gemini"),
//! `approval-mode` (when the turn names no sandbox; default: Gemini's own),
//! `read-timeout-ms` (how long one wait for output lasts, default 1000).

mod transcripts;

use gemini_protocol::argv::{TurnSpec, approval_mode_for_sandbox, headless_args};
use gemini_protocol::events::{TurnLog, TurnResult};
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
    approval_mode: Option<String>,
    read_timeout_ms: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self { program: "gemini".into(), approval_mode: None, read_timeout_ms: 1000 }
    }
}

struct Gemini;

impl Guest for Gemini {
    fn run_turn(plan: Plan, options: TurnOptions) -> Result<TurnOutcome, PluginError> {
        let settings: Settings = parse_settings("agent-gemini")?;
        let (session_id, prompt) = plan_parts(plan);
        let mut warnings = Vec::new();
        let spec = turn_spec(session_id, &options, &settings, &mut warnings)?;
        let child = process::spawn(&SpawnRequest {
            program: settings.program.clone(),
            args: headless_args(&spec),
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
                Err(e) => log(Level::Debug, &format!("ignoring a gemini output line ({e})")),
            },
            |line| {
                // Gemini CLI says only here that the provider failed and it retries.
                if line.starts_with("Attempt ") && line.contains("Retrying") {
                    report(&ProgressEvent { kind: "retry".into(), message: line.to_string() });
                }
            },
        )?;
        let mut outcome = outcome(turn, finished.code, &finished.stderr_tail, warnings)?;
        let found = transcripts::find(&outcome.thread_id).map(|found| found.map(|(_, path)| path));
        outcome.transcript_path = located(&outcome.thread_id, found);
        Ok(outcome)
    }

    fn rehydrate(thread_id: String) -> Result<Session, PluginError> {
        transcripts::rehydrate(&thread_id)
    }
}

/// The command line's options from the turn's, refusing what Gemini CLI cannot do.
fn turn_spec(
    session_id: Option<String>,
    options: &TurnOptions,
    settings: &Settings,
    warnings: &mut Vec<String>,
) -> Result<TurnSpec, PluginError> {
    if !options.config_overrides.is_empty() {
        return Err(PluginError::Invalid(
            "Gemini CLI takes no configuration overrides (`config`); leave them out for this agent".into(),
        ));
    }
    if options.base_instructions.is_some() || options.developer_instructions.is_some() {
        return Err(PluginError::Invalid(
            "agent-gemini cannot pass instructions to Gemini CLI (`base-instructions`, \
             `developer-instructions`): it has no option for them that does not read a file; put them \
             in the prompt"
                .into(),
        ));
    }
    if let Some(effort) = &options.reasoning_effort {
        warnings.push(format!(
            "reasoning effort {effort:?} is not passed to Gemini CLI; its own setting applies"
        ));
    }
    if let Some(policy) = &options.approval_policy {
        warnings.push(format!(
            "approval policy {policy:?} does not apply to Gemini CLI; its approval mode follows `sandbox`"
        ));
    }
    let approval_mode = match &options.sandbox {
        Some(sandbox) => Some(approval_mode_for_sandbox(sandbox).map_err(PluginError::Invalid)?.to_string()),
        None => settings.approval_mode.clone(),
    };
    Ok(TurnSpec { session_id, model: options.model.clone(), approval_mode })
}

fn outcome(
    turn: TurnLog,
    code: i32,
    stderr_tail: &str,
    mut warnings: Vec<String>,
) -> Result<TurnOutcome, PluginError> {
    let usage = match turn.result {
        Some(TurnResult::Success(usage)) => usage,
        Some(TurnResult::Error(message)) => {
            return Err(PluginError::Failed(format!("gemini failed: {message}")));
        }
        None => {
            return Err(PluginError::Failed(format!(
                "gemini exited with status {code} before its result: {}",
                if stderr_tail.is_empty() { "(no error output)" } else { stderr_tail }
            )));
        }
    };
    let Some(thread_id) = turn.session_id else {
        return Err(PluginError::Failed("gemini finished without reporting a session id".into()));
    };
    warnings.extend(turn.warnings);
    Ok(TurnOutcome {
        thread_id,
        response: turn.answer,
        usage: Some(Usage {
            input_tokens: usage.input_tokens,
            cached_input_tokens: usage.cached_input_tokens,
            output_tokens: usage.output_tokens,
            reasoning_output_tokens: 0,
        }),
        warnings,
        transcript_path: None,
    })
}

warden_plugin::agent::export!(Gemini, manifest = "warden.toml");
