//! The built-in argument policy for Claude Code: exactly what Warden's
//! `agent-claude` driver runs, bounded by the operator's [`RequestLimits`].
//!
//! ```text
//! claude -p --output-format stream-json --verbose [--resume <session uuid>] [--model <model>]
//!        [--permission-mode <allowed mode>] [--append-system-prompt=<text>]
//! ```
//!
//! The prompt goes to standard input, never into the argument list: Claude
//! Code 2.1.328 looks for some flags anywhere in its arguments, even after
//! `--` (`--ignore-persisted-trust`, `--hard-fail`, `--session-tunnel`,
//! `-r`/`--resume`), so a prompt there could be read as one; a long prompt
//! would also hit the kernel's limit on one argument. For the same reason
//! the instructions' free text must be attached to its option, where no such
//! scan can match it.
//!
//! Left out on purpose: `--mcp-config`, `--settings`, `--plugin-dir`,
//! `--plugin-url`, `--agents`, `--add-dir`, `--system-prompt-file`,
//! `--debug-file`, `--file` (load code or configuration from a path or a URL,
//! start programs, or reach outside the working directory),
//! `--dangerously-skip-permissions` and `--allow-dangerously-skip-permissions`
//! (the operator's `permission-modes` decides), `--continue` and a bare
//! `--resume` (pick a conversation the caller did not name), and every
//! subcommand (`mcp`, `plugin`, `install`, …).

use crate::argv::{Command, OptionRule};
use crate::requests::{MODEL_PATTERN, RequestLimits};
use crate::value::ValueRule;

/// The name operators use to select this policy (`policy = "claude"`).
pub const NAME: &str = "claude";

pub fn policy(limits: &RequestLimits) -> Command {
    let option = OptionRule::new;
    Command {
        name: String::new(),
        options: vec![
            option(&["-p", "--print"], None).required(),
            option(&["--output-format"], Some(ValueRule::Enum(vec!["stream-json".into()]))).required(),
            option(&["--verbose"], None).required(),
            option(&["--resume"], Some(ValueRule::Uuid)),
            option(&["--model"], Some(ValueRule::Pattern(MODEL_PATTERN.into()))),
            option(&["--permission-mode"], Some(ValueRule::Enum(limits.permission_modes.clone()))),
            option(&["--append-system-prompt"], Some(ValueRule::Text)).attached(),
        ],
        ..Command::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::ValueContext;

    const SESSION: &str = "d161b726-b0e4-404b-86a9-403c597c0bfa";
    const BASE: &[&str] = &["-p", "--output-format", "stream-json", "--verbose"];

    fn check_with(limits: &RequestLimits, args: &[&str]) -> Result<(), String> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        policy(limits).check("claude", &args, &ValueContext::default())
    }

    fn check(extra: &[&str]) -> Result<(), String> {
        check_with(&RequestLimits::default(), &[BASE, extra].concat())
    }

    #[test]
    fn what_agent_claude_runs_is_allowed() {
        policy(&RequestLimits::default()).validate().unwrap();
        check(&[]).unwrap();
        check(&[
            "--resume",
            SESSION,
            "--model",
            "claude-sonnet-4-5",
            "--permission-mode",
            "acceptEdits",
            "--append-system-prompt=--dangerously-skip-permissions is not for you\n- be brief",
        ])
        .unwrap();
        check(&["--permission-mode", "plan", "--model", "opus"]).unwrap();
    }

    #[test]
    fn the_attacks_are_refused() {
        let attacks: &[(&[&str], &str)] = &[
            (&["--mcp-config", "{\"mcpServers\":{}}"], "does not allow the option \"--mcp-config\""),
            (&["--mcp-config={}"], "does not allow"),
            (&["--settings", "/tmp/evil.json"], "does not allow the option \"--settings\""),
            (&["--plugin-dir", "/tmp/evil"], "does not allow the option \"--plugin-dir\""),
            (&["--plugin-url", "http://x/p.zip"], "does not allow"),
            (&["--agents", "{}"], "does not allow the option \"--agents\""),
            (&["--add-dir", "/"], "does not allow the option \"--add-dir\""),
            (&["--dangerously-skip-permissions"], "does not allow"),
            (&["--allow-dangerously-skip-permissions"], "does not allow"),
            (&["--system-prompt-file", "/etc/shadow"], "does not allow"),
            (&["--debug-file", "/tmp/x"], "does not allow"),
            (&["--permission-mode", "bypassPermissions"], "not one of"),
            (&["--permission-mode=bypassPermissions"], "not one of"),
            (&["--permission-mode", "auto"], "not one of"),
            (&["--continue"], "does not allow"),
            (&["-c"], "does not allow"),
            (&["-r", SESSION], "does not allow"),
            (&["--resume", "--mcp-config"], "not a UUID"),
            (&["--resume"], "needs a value"),
            (&["--model", "--mcp-config"], "does not match"),
            (&["--model", "-x"], "does not match"),
            (&["--model", "opus", "--model", "sonnet"], "only once"),
            (&["--append-system-prompt", "--hard-fail"], "attached"),
            (&["--append-system-prompt-file=/etc/shadow"], "does not allow"),
            (&["--system-prompt=x"], "does not allow"),
            (&["--output-format", "text"], "only once"),
            (&["--", "hello"], "takes no further argument"),
            (&["hello"], "takes no further argument"),
            (&["mcp"], "takes no further argument"),
            (&["-pc"], "does not allow"),
            (&["--print=1"], "only once"),
        ];
        for (extra, expected) in attacks {
            let err = check(extra).expect_err(&format!("{extra:?} must be refused"));
            assert!(err.contains(expected), "{extra:?}: {err}");
        }
        let limits = RequestLimits::default();
        for (args, expected) in [
            (&["--output-format", "stream-json", "--verbose"][..], "needs the option -p/--print"),
            (&["-p", "--verbose"][..], "needs the option --output-format"),
            (&["-p", "--output-format", "json", "--verbose"][..], "not one of"),
            (&["-p", "--output-format", "stream-json", "--verbose=1"][..], "takes no value"),
            (&["mcp", "add", "x", "/bin/sh"][..], "takes no further argument"),
            (&[][..], "needs the option"),
        ] {
            let err = check_with(&limits, args).expect_err(&format!("{args:?} must be refused"));
            assert!(err.contains(expected), "{args:?}: {err}");
        }
    }

    #[test]
    fn permission_modes_are_the_operators() {
        let mut limits = RequestLimits { permission_modes: vec!["plan".into()], ..RequestLimits::default() };
        fn args(mode: &str) -> Vec<&str> {
            [BASE, &["--permission-mode", mode]].concat()
        }
        check_with(&limits, &args("plan")).unwrap();
        assert!(check_with(&limits, &args("acceptEdits")).unwrap_err().contains("not one of"));
        limits.permission_modes.push("bypassPermissions".into());
        check_with(&limits, &args("bypassPermissions")).expect("listed explicitly by the operator");
    }
}
