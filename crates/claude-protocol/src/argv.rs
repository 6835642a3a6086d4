//! `claude -p` argument lists, in the shape Warden's built-in `claude`
//! argument policy accepts. The prompt is not among them: it goes to
//! standard input (see `warden_permissions::claude` for why), and the
//! instructions' text is attached to its option (`--append-system-prompt=…`).

/// One turn's request, independent of the plugin contract's types.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TurnSpec {
    /// Continue this session natively; `None` starts a new one.
    pub session_id: Option<String>,
    pub model: Option<String>,
    pub permission_mode: Option<String>,
    /// Appended to Claude Code's own system prompt.
    pub append_system_prompt: Option<String>,
}

/// The arguments after the program name.
pub fn print_args(spec: &TurnSpec) -> Vec<String> {
    let mut args: Vec<String> =
        ["-p", "--output-format", "stream-json", "--verbose"].map(String::from).into();
    if let Some(id) = &spec.session_id {
        args.extend(["--resume".to_string(), id.clone()]);
    }
    if let Some(model) = &spec.model {
        args.extend(["--model".to_string(), model.clone()]);
    }
    if let Some(mode) = &spec.permission_mode {
        args.extend(["--permission-mode".to_string(), mode.clone()]);
    }
    if let Some(text) = spec.append_system_prompt.as_deref().filter(|t| !t.is_empty()) {
        args.push(format!("--append-system-prompt={text}"));
    }
    args
}

/// The permission mode that matches a Codex-style sandbox level, so a
/// client's `sandbox` means the same for either agent: `read-only` plans
/// without changing anything, `workspace-write` accepts file edits, and
/// `danger-full-access` skips every question (refused unless the operator
/// lists `bypassPermissions` in `permission-modes`).
pub fn permission_mode_for_sandbox(sandbox: &str) -> Result<&'static str, String> {
    match sandbox {
        "read-only" => Ok("plan"),
        "workspace-write" => Ok("acceptEdits"),
        "danger-full-access" => Ok("bypassPermissions"),
        other => Err(format!(
            "sandbox {other:?} has no Claude Code permission mode (known: read-only, workspace-write, danger-full-access)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_session_is_the_bare_print_command() {
        assert_eq!(print_args(&TurnSpec::default()), ["-p", "--output-format", "stream-json", "--verbose"]);
    }

    #[test]
    fn every_option_and_attached_instructions() {
        let spec = TurnSpec {
            session_id: Some("d161b726-b0e4-404b-86a9-403c597c0bfa".into()),
            model: Some("sonnet".into()),
            permission_mode: Some("plan".into()),
            append_system_prompt: Some("--hard-fail\n- be brief".into()),
        };
        assert_eq!(
            print_args(&spec),
            [
                "-p",
                "--output-format",
                "stream-json",
                "--verbose",
                "--resume",
                "d161b726-b0e4-404b-86a9-403c597c0bfa",
                "--model",
                "sonnet",
                "--permission-mode",
                "plan",
                "--append-system-prompt=--hard-fail\n- be brief",
            ]
        );
        let empty = TurnSpec { append_system_prompt: Some(String::new()), ..TurnSpec::default() };
        assert_eq!(print_args(&empty).len(), 4, "empty instructions add nothing");
    }

    #[test]
    fn sandboxes_map_to_modes() {
        assert_eq!(permission_mode_for_sandbox("read-only"), Ok("plan"));
        assert_eq!(permission_mode_for_sandbox("workspace-write"), Ok("acceptEdits"));
        assert_eq!(permission_mode_for_sandbox("danger-full-access"), Ok("bypassPermissions"));
        assert!(permission_mode_for_sandbox("yolo").is_err());
    }
}
