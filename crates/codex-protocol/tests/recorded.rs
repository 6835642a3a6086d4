//! Event folding against output recorded from the real Codex CLI 0.169.0
//! (see tests/fixtures; captured against a fake provider on 127.0.0.1).

use codex_protocol::events::TurnLog;

fn fold(jsonl: &str) -> (TurnLog, Vec<String>) {
    let mut log = TurnLog::default();
    let mut progress = Vec::new();
    for line in jsonl.lines() {
        if let Some(p) = log.apply(line).expect("every recorded line is a JSON event") {
            progress.push(format!("{}: {}", p.kind, p.message));
        }
    }
    (log, progress)
}

#[test]
fn a_new_thread() {
    let (log, progress) = fold(include_str!("fixtures/new_thread.jsonl"));
    assert_eq!(log.thread_id.as_deref(), Some("01a210ac-9e49-74e3-a8fd-3ccd8512cef9"));
    assert_eq!(log.answer(), Some("echo: hello"));
    assert!(log.completed && log.failure.is_none());
    assert_eq!(log.warnings.len(), 1, "the unknown-model notice is a warning, not a failure");
    assert!(log.warnings[0].contains("mock-model"));
    assert_eq!(log.usage.unwrap().input_tokens, 9880);
    assert_eq!(
        progress,
        [
            "warning: Model metadata for `mock-model` not found. Defaulting to fallback metadata; this can degrade performance and cause issues.",
            "turn-started: turn started",
            "message: echo: hello",
            "turn-completed: turn completed"
        ]
    );
}

#[test]
fn a_resume_repeats_the_thread_id_and_reports_cumulative_usage() {
    let (log, _) = fold(include_str!("fixtures/resume.jsonl"));
    assert_eq!(log.thread_id.as_deref(), Some("01a210ac-9e49-74e3-a8fd-3ccd8512cef9"));
    assert_eq!(log.answer(), Some("echo: again"));
    assert_eq!(log.usage.unwrap().input_tokens, 19831);
}

#[test]
fn a_provider_error_fails_the_turn_with_codexs_message() {
    let (log, _) = fold(include_str!("fixtures/provider_error.jsonl"));
    assert!(!log.completed);
    assert_eq!(
        log.failure.as_deref(),
        Some("We’re currently experiencing high demand, which may cause temporary errors.")
    );
    assert_eq!(log.answer(), None);
}

#[test]
fn a_command_is_reported_with_its_exit_code() {
    let (log, progress) = fold(include_str!("fixtures/command.jsonl"));
    assert_eq!(log.answer(), Some("ran command"));
    assert!(
        progress.contains(&"command-started: running `/bin/bash -lc 'echo hi'`".to_string()),
        "{progress:?}"
    );
    assert!(
        progress.contains(&"command: ran `/bin/bash -lc 'echo hi'` (exit 0)".to_string()),
        "{progress:?}"
    );
}
