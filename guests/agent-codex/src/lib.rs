//! Warden's default agent driver: one `codex exec --json` run per turn
//! (`… resume <thread> <prompt>` to continue a thread), its JSON Lines
//! events turned into progress and the turn's outcome; threads unknown to
//! the store are rebuilt from Codex's rollout files (see `transcripts`).
//!
//! Settings: `program` (the granted program name, default "codex"),
//! `read-timeout-ms` (how long one wait for output lasts, default 1000).

mod transcripts;

use codex_protocol::argv::{TurnSpec, check_prompt, exec_args};
use codex_protocol::events::TurnLog;
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
    read_timeout_ms: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self { program: "codex".into(), read_timeout_ms: 1000 }
    }
}

struct Codex;

impl Guest for Codex {
    fn run_turn(plan: Plan, options: TurnOptions) -> Result<TurnOutcome, PluginError> {
        let settings: Settings = parse_settings("agent-codex")?;
        let (thread_id, prompt) = plan_parts(plan);
        check_prompt(&prompt).map_err(PluginError::Invalid)?;
        let spec = TurnSpec {
            thread_id,
            prompt,
            model: options.model,
            reasoning_effort: options.reasoning_effort,
            sandbox: options.sandbox,
            cwd: options.cwd.clone(),
            approval_policy: options.approval_policy,
            config: options.config_overrides,
            base_instructions: options.base_instructions,
            developer_instructions: options.developer_instructions,
        };
        let child = process::spawn(&SpawnRequest {
            program: settings.program.clone(),
            args: exec_args(&spec),
            env: Vec::new(),
            cwd: options.cwd,
            stdin: StdinSource::Null,
        })?;
        let mut turn = TurnLog::default();
        let finished = lines::drain(
            &child,
            settings.read_timeout_ms,
            |line| match turn.apply(&line) {
                Ok(Some(progress)) => {
                    report(&ProgressEvent { kind: progress.kind.into(), message: progress.message })
                }
                Ok(None) => {}
                Err(e) => log(Level::Debug, &format!("ignoring codex output line ({e})")),
            },
            |_| {},
        )?;
        let mut outcome = outcome(turn, finished.code, &finished.stderr_tail)?;
        let found = transcripts::find(&outcome.thread_id).map(|found| found.map(|(path, _)| path));
        outcome.transcript_path = located(&outcome.thread_id, found);
        Ok(outcome)
    }

    fn rehydrate(thread_id: String) -> Result<Session, PluginError> {
        transcripts::rehydrate(&thread_id)
    }
}

fn outcome(turn: TurnLog, code: i32, stderr_tail: &str) -> Result<TurnOutcome, PluginError> {
    if let Some(failure) = &turn.failure {
        return Err(PluginError::Failed(format!("codex failed: {failure}")));
    }
    if code != 0 {
        return Err(PluginError::Failed(format!(
            "codex exited with status {code}: {}",
            if stderr_tail.is_empty() { "(no error output)" } else { stderr_tail }
        )));
    }
    let Some(thread_id) = turn.thread_id.clone() else {
        return Err(PluginError::Failed("codex finished without reporting a thread id".into()));
    };
    Ok(TurnOutcome {
        thread_id,
        response: turn.answer().unwrap_or_default().to_string(),
        usage: turn.usage.map(|u| Usage {
            input_tokens: u.input_tokens,
            cached_input_tokens: u.cached_input_tokens,
            output_tokens: u.output_tokens,
            reasoning_output_tokens: u.reasoning_output_tokens,
        }),
        warnings: turn.warnings,
        transcript_path: None,
    })
}

warden_plugin::agent::export!(Codex, manifest = "warden.toml");
