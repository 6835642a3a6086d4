//! Gemini CLI argument lists, in the shape Warden's built-in `gemini`
//! argument policy accepts (see `warden_permissions::gemini`). The prompt
//! is not among them: it goes to standard input.

/// The MCP server allow-list passed on every run: a name no server has, so
/// no MCP server starts whatever settings Gemini CLI finds.
pub const NO_MCP_SERVER: &str = "warden-allows-no-mcp-server";

/// One turn's request, independent of the plugin contract's types.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TurnSpec {
    /// Continue this session natively; `None` starts a new one.
    pub session_id: Option<String>,
    pub model: Option<String>,
    pub approval_mode: Option<String>,
}

/// The arguments after the program name.
pub fn headless_args(spec: &TurnSpec) -> Vec<String> {
    let mut args: Vec<String> =
        ["--skip-trust", "--allowed-mcp-server-names", NO_MCP_SERVER, "-o", "stream-json"]
            .map(String::from)
            .into();
    if let Some(id) = &spec.session_id {
        args.extend(["--resume".to_string(), id.clone()]);
    }
    if let Some(model) = &spec.model {
        args.extend(["-m".to_string(), model.clone()]);
    }
    if let Some(mode) = &spec.approval_mode {
        args.extend(["--approval-mode".to_string(), mode.clone()]);
    }
    args
}

/// The approval mode that matches a Codex-style sandbox level, so a
/// client's `sandbox` means the same for every agent: `read-only` plans
/// without changing anything, `workspace-write` approves file edits, and
/// `danger-full-access` approves everything (refused unless the operator's
/// `max-sandbox` allows it).
pub fn approval_mode_for_sandbox(sandbox: &str) -> Result<&'static str, String> {
    match sandbox {
        "read-only" => Ok("plan"),
        "workspace-write" => Ok("auto_edit"),
        "danger-full-access" => Ok("yolo"),
        other => Err(format!(
            "sandbox {other:?} has no Gemini CLI approval mode (known: read-only, workspace-write, danger-full-access)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_session_and_every_option() {
        assert_eq!(
            headless_args(&TurnSpec::default()),
            ["--skip-trust", "--allowed-mcp-server-names", NO_MCP_SERVER, "-o", "stream-json"]
        );
        let spec = TurnSpec {
            session_id: Some("8d58fad1-9e76-4fd4-acfc-120fc613706d".into()),
            model: Some("gemini-2.5-flash".into()),
            approval_mode: Some("plan".into()),
        };
        assert_eq!(
            headless_args(&spec)[5..],
            [
                "--resume",
                "8d58fad1-9e76-4fd4-acfc-120fc613706d",
                "-m",
                "gemini-2.5-flash",
                "--approval-mode",
                "plan"
            ]
        );
    }

    #[test]
    fn sandboxes_map_to_modes() {
        assert_eq!(approval_mode_for_sandbox("read-only"), Ok("plan"));
        assert_eq!(approval_mode_for_sandbox("workspace-write"), Ok("auto_edit"));
        assert_eq!(approval_mode_for_sandbox("danger-full-access"), Ok("yolo"));
        assert!(approval_mode_for_sandbox("yolo").is_err());
    }
}
