//! The built-in argument policy for Gemini CLI: exactly what Warden's
//! `agent-gemini` driver runs, bounded by the operator's [`RequestLimits`].
//!
//! ```text
//! gemini --skip-trust --allowed-mcp-server-names <none> -o stream-json
//!        [--resume <session uuid>] [-m <model>] [--approval-mode <mode>]
//! ```
//!
//! The prompt goes to standard input (with standard input not a terminal,
//! Gemini CLI 0.61.0 runs headless and takes it as the prompt), never into
//! the argument list, where a prompt such as `--yolo` would be read as an
//! option and a long one would hit the kernel's limit on one argument.
//!
//! `--skip-trust` is required: without it a headless run in an untrusted
//! directory exits, and trusting the directory any other way (the
//! environment, a trusted-folders file) makes Gemini CLI run the MCP
//! servers, hooks and discovery commands of the project's own
//! `.gemini/settings.json`. `--allowed-mcp-server-names` with a name no
//! server has is required too, so no MCP server starts whatever the
//! settings say.
//!
//! The approval mode follows the sandbox level the operator allows
//! (`max-sandbox`): `plan` (read-only) and `default` always, `auto_edit`
//! from `workspace-write`, `yolo` only with `danger-full-access`.
//!
//! Left out on purpose: `-y`/`--yolo` (the approval mode decides),
//! `--policy`, `--admin-policy`, `-e`/`--extensions`, `--session-file`,
//! `--include-directories`, `-s`/`--sandbox`, `-w`/`--worktree`,
//! `--allowed-tools`, `--acp`, `--raw-output`, `-i`, the hidden
//! `--fake-responses`/`--record-responses` (load code, configuration or
//! files, start programs, widen what it may touch), `-p` (the prompt goes
//! to standard input), `--session-id` and `-r latest` or an index (pick a
//! session the caller did not name), and every subcommand (`mcp`,
//! `extensions`, `skills`, `hooks`, `gemma`).

use gemini_protocol::argv::NO_MCP_SERVER;

use crate::argv::{Command, OptionRule};
use crate::requests::{MODEL_PATTERN, RequestLimits, Sandbox};
use crate::value::ValueRule;

/// The name operators use to select this policy (`policy = "gemini"`).
pub const NAME: &str = "gemini";

/// The approval modes `limits` allows.
pub fn approval_modes(limits: &RequestLimits) -> Vec<String> {
    let mut modes = vec!["plan", "default"];
    if limits.max_sandbox >= Sandbox::WorkspaceWrite {
        modes.push("auto_edit");
    }
    if limits.max_sandbox >= Sandbox::DangerFullAccess {
        modes.push("yolo");
    }
    modes.into_iter().map(String::from).collect()
}

pub fn policy(limits: &RequestLimits) -> Command {
    let option = OptionRule::new;
    Command {
        name: String::new(),
        options: vec![
            option(&["--skip-trust"], None).required(),
            option(&["--allowed-mcp-server-names"], Some(ValueRule::Enum(vec![NO_MCP_SERVER.into()])))
                .required(),
            option(&["-o", "--output-format"], Some(ValueRule::Enum(vec!["stream-json".into()]))).required(),
            option(&["--resume"], Some(ValueRule::Uuid)),
            option(&["-m", "--model"], Some(ValueRule::Pattern(MODEL_PATTERN.into()))),
            option(&["--approval-mode"], Some(ValueRule::Enum(approval_modes(limits)))),
        ],
        ..Command::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::ValueContext;

    const SESSION: &str = "8d58fad1-9e76-4fd4-acfc-120fc613706d";
    const BASE: &[&str] = &["--skip-trust", "--allowed-mcp-server-names", NO_MCP_SERVER, "-o", "stream-json"];

    fn check_with(limits: &RequestLimits, args: &[&str]) -> Result<(), String> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        policy(limits).check("gemini", &args, &ValueContext::default())
    }

    fn check(extra: &[&str]) -> Result<(), String> {
        check_with(&RequestLimits::default(), &[BASE, extra].concat())
    }

    #[test]
    fn what_agent_gemini_runs_is_allowed() {
        policy(&RequestLimits::default()).validate().unwrap();
        check(&[]).unwrap();
        check(&["--resume", SESSION, "-m", "gemini-2.5-flash", "--approval-mode", "auto_edit"]).unwrap();
        check(&["--approval-mode", "plan"]).unwrap();
    }

    #[test]
    fn the_attacks_are_refused() {
        let attacks: &[(&[&str], &str)] = &[
            (&["-y"], "does not allow"),
            (&["--yolo"], "does not allow"),
            (&["--approval-mode", "yolo"], "not one of"),
            (&["--approval-mode=yolo"], "not one of"),
            (&["--policy", "/tmp/evil.toml"], "does not allow"),
            (&["--admin-policy", "/tmp/evil"], "does not allow"),
            (&["-e", "evil"], "does not allow"),
            (&["--extensions", "evil"], "does not allow"),
            (&["--session-file", "/etc/shadow"], "does not allow"),
            (&["--include-directories", "/"], "does not allow"),
            (&["-s"], "does not allow"),
            (&["--sandbox"], "does not allow"),
            (&["-w", "x"], "does not allow"),
            (&["--allowed-tools", "run_shell_command"], "does not allow"),
            (&["--fake-responses", "/tmp/x"], "does not allow"),
            (&["--record-responses", "/tmp/x"], "does not allow"),
            (&["--acp"], "does not allow"),
            (&["--raw-output"], "does not allow"),
            (&["-p", "hello"], "does not allow"),
            (&["-i", "hello"], "does not allow"),
            (&["--session-id", SESSION], "does not allow"),
            (&["-r", "latest"], "does not allow"),
            (&["--resume", "latest"], "not a UUID"),
            (&["--resume", "5"], "not a UUID"),
            (&["--allowed-mcp-server-names", "evil"], "only once"),
            (&["-m", "--yolo"], "does not match"),
            (&["hello"], "takes no further argument"),
            (&["mcp"], "takes no further argument"),
            (&["--", "--yolo"], "takes no further argument"),
        ];
        for (extra, expected) in attacks {
            let err = check(extra).expect_err(&format!("{extra:?} must be refused"));
            assert!(err.contains(expected), "{extra:?}: {err}");
        }
        for (args, expected) in [
            (&["--allowed-mcp-server-names", NO_MCP_SERVER, "-o", "stream-json"][..], "--skip-trust"),
            (&["--skip-trust", "-o", "stream-json"][..], "--allowed-mcp-server-names"),
            (&["--skip-trust", "--allowed-mcp-server-names", "evil", "-o", "stream-json"][..], "not one of"),
            (&["--skip-trust", "--allowed-mcp-server-names", NO_MCP_SERVER][..], "--output-format"),
        ] {
            let err = check_with(&RequestLimits::default(), args).expect_err(&format!("{args:?}"));
            assert!(err.contains(expected), "{args:?}: {err}");
        }
    }

    #[test]
    fn the_operator_sandbox_level_bounds_the_approval_mode() {
        let read_only = RequestLimits { max_sandbox: Sandbox::ReadOnly, ..RequestLimits::default() };
        assert!(check_with(&read_only, &[BASE, &["--approval-mode", "auto_edit"]].concat()).is_err());
        check_with(&read_only, &[BASE, &["--approval-mode", "plan"]].concat()).unwrap();
        let full = RequestLimits { max_sandbox: Sandbox::DangerFullAccess, ..RequestLimits::default() };
        check_with(&full, &[BASE, &["--approval-mode", "yolo"]].concat()).unwrap();
    }
}
