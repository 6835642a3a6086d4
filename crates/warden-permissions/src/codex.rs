//! The built-in argument policy for the Codex CLI: exactly what Warden's
//! `agent-codex` driver runs, bounded by the operator's [`RequestLimits`].
//!
//! ```text
//! codex [-a <approval>] exec --json --skip-git-repo-check [-m <model>] [-s <sandbox>]
//!       [-C <dir in cwd-roots>] [-c <allowed key>=<allowed value>]… [resume] -- [<thread uuid>] <prompt>
//! ```
//!
//! Left out on purpose: `--add-dir` and `--dangerously-*` (widen the
//! sandbox), `-p/--profile` (loads other configuration), `-i/--image` and
//! `-o` (read or write files outside the roots), `--last` (picks a thread
//! the caller did not name), and every `-c` key the operator did not allow
//! (beyond the text-only [`crate::requests::TEXT_KEYS`]).

use crate::argv::{Command, OptionRule, Positional};
use crate::requests::{MODEL_PATTERN, RequestLimits};
use crate::value::ValueRule;

/// The name operators use to select this policy (`policy = "codex"`).
pub const NAME: &str = "codex";

pub fn policy(limits: &RequestLimits) -> Command {
    let option = OptionRule::new;
    let prompt = Positional { name: "prompt".into(), value: ValueRule::Text, optional: false };
    let config = limits.config_rules();
    let resume = Command {
        name: "resume".into(),
        positionals: vec![
            Positional { name: "thread".into(), value: ValueRule::Uuid, optional: false },
            prompt.clone(),
        ],
        positionals_after_separator: true,
        ..Command::default()
    };
    let exec = Command {
        name: "exec".into(),
        options: vec![
            option(&["--json"], None),
            option(&["--skip-git-repo-check"], None),
            option(&["-m", "--model"], Some(ValueRule::Pattern(MODEL_PATTERN.into()))),
            option(&["-s", "--sandbox"], Some(ValueRule::Enum(limits.sandboxes()))),
            option(&["-C", "--cd"], Some(ValueRule::Path)),
            option(&["-c", "--config"], Some(ValueRule::Config(config))).repeated(),
        ],
        subcommands: vec![resume],
        positionals: vec![prompt],
        positionals_after_separator: true,
        ..Command::default()
    };
    Command {
        name: String::new(),
        options: vec![option(
            &["-a", "--ask-for-approval"],
            Some(ValueRule::Enum(limits.approval_policies.clone())),
        )],
        subcommands: vec![exec],
        subcommand_required: true,
        ..Command::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::ValueContext;

    const THREAD: &str = "0199a5e4-2f7c-7d10-9c3e-4b5a6c7d8e9f";

    fn check(args: &[&str], context: &ValueContext) -> Result<(), String> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        policy(&RequestLimits::default()).check("codex", &args, context)
    }

    #[test]
    fn what_agent_codex_runs_is_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let cx = ValueContext { cwd_roots: vec![root.clone()] };
        let cwd = root.to_str().unwrap();
        check(&["exec", "--json", "--skip-git-repo-check", "--", "hi"], &cx).unwrap();
        check(
            &[
                "-a",
                "never",
                "exec",
                "--json",
                "--skip-git-repo-check",
                "-m",
                "gpt-5.1",
                "-c",
                "model_reasoning_effort=\"high\"",
                "-s",
                "read-only",
                "-C",
                cwd,
                "-c",
                "model_verbosity=\"low\"",
                "-c",
                "developer_instructions=\"say \\\"x\\\"\\n\"",
                "-c",
                "compact_prompt=\"Summarise the thread.\"",
                "resume",
                "--",
                THREAD,
                "again",
            ],
            &cx,
        )
        .unwrap();
        check(&["exec", "--json", "--", "--help"], &cx).unwrap();
    }

    #[test]
    fn the_reproduced_attacks_are_refused() {
        let cx = ValueContext { cwd_roots: vec![std::env::temp_dir().canonicalize().unwrap()] };
        let attacks: &[(&[&str], &str)] = &[
            (&["exec", "-c", "mcp_servers.x.command=\"/bin/sh\"", "--", "hi"], "mcp_servers.x.command"),
            (&["exec", "-c", "mcp_servers.x.args=[\"-c\",\"id\"]", "--", "hi"], "not allowed"),
            (&["exec", "-c", "model_provider=\"evil\"", "--", "hi"], "not allowed"),
            (&["exec", "-c", "model_providers.evil.base_url=\"http://x\"", "--", "hi"], "not allowed"),
            (&["exec", "-c", "profile=\"x\"", "--", "hi"], "not allowed"),
            (&["exec", "--add-dir", "/", "--", "hi"], "--add-dir"),
            (&["exec", "-C", "/", "--", "hi"], "outside"),
            (&["exec", "--dangerously-bypass-approvals-and-sandbox", "--", "hi"], "does not allow"),
            (&["exec", "-p", "evil", "--", "hi"], "does not allow"),
            (&["exec", "-s", "danger-full-access", "--", "hi"], "not one of"),
            (&["exec", "resume", "--last", "--", "hi"], "does not allow"),
            (&["exec", "resume", "--", "--last", "hi"], "not a UUID"),
            (&["exec", "resume", THREAD, "hi"], "must follow `--`"),
            (&["exec", "hi"], "must follow `--`"),
            (&["exec", "-m", "x", "-m", "y", "--", "hi"], "only once"),
            (&["exec", "-cmcp_servers.x.command=sh", "--", "hi"], "does not allow"),
            (
                &["exec", "-c", "base_instructions=\"a\" \nmcp_servers.x.command=\"sh\"", "--", "hi"],
                "does not match",
            ),
            (&["mcp", "add", "x"], "takes no further argument"),
            (&["--", "hi"], "takes no further argument"),
            (&[], "needs a subcommand"),
            (&["exec", "--json"], "needs <prompt>"),
        ];
        for (args, expected) in attacks {
            let err = check(args, &cx).expect_err(&format!("{args:?} must be refused"));
            assert!(err.contains(expected), "{args:?}: {err}");
        }
    }

    #[test]
    fn max_sandbox_bounds_the_policy() {
        let limits =
            RequestLimits { max_sandbox: crate::Sandbox::DangerFullAccess, ..RequestLimits::default() };
        let args: Vec<String> =
            ["exec", "-s", "danger-full-access", "--", "x"].iter().map(|s| s.to_string()).collect();
        policy(&limits).check("codex", &args, &ValueContext::default()).unwrap();
        policy(&limits).validate().unwrap();
    }
}
