//! `codex exec` argument lists. Per-turn flags go BEFORE `resume` (`-C`
//! after it is a usage error), `-a/--ask-for-approval` is a top-level flag
//! and goes before `exec`, and every positional (the thread id and the
//! prompt) follows `--`, so none can be read as an option. This is the shape
//! Warden's built-in `codex` argument policy accepts.

/// One turn's request, independent of the plugin contract's types.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TurnSpec {
    /// Continue this thread natively; `None` starts a new one.
    pub thread_id: Option<String>,
    pub prompt: String,
    pub model: Option<String>,
    pub reasoning_effort: Option<String>,
    pub sandbox: Option<String>,
    pub cwd: Option<String>,
    pub approval_policy: Option<String>,
    /// `-c key=value` overrides; values are TOML.
    pub config: Vec<(String, String)>,
    pub base_instructions: Option<String>,
    pub developer_instructions: Option<String>,
}

/// The arguments after the program name.
pub fn exec_args(spec: &TurnSpec) -> Vec<String> {
    let mut args = Vec::new();
    if let Some(policy) = &spec.approval_policy {
        args.extend(["-a".to_string(), policy.clone()]);
    }
    args.extend(["exec", "--json", "--skip-git-repo-check"].map(String::from));
    if let Some(model) = &spec.model {
        args.extend(["-m".to_string(), model.clone()]);
    }
    if let Some(effort) = &spec.reasoning_effort {
        args.extend(["-c".to_string(), format!("model_reasoning_effort={}", toml_string(effort))]);
    }
    if let Some(sandbox) = &spec.sandbox {
        args.extend(["-s".to_string(), sandbox.clone()]);
    }
    if let Some(cwd) = &spec.cwd {
        args.extend(["-C".to_string(), cwd.clone()]);
    }
    for (key, value) in &spec.config {
        args.extend(["-c".to_string(), format!("{key}={value}")]);
    }
    if let Some(text) = &spec.base_instructions {
        args.extend(["-c".to_string(), format!("base_instructions={}", toml_string(text))]);
    }
    if let Some(text) = &spec.developer_instructions {
        args.extend(["-c".to_string(), format!("developer_instructions={}", toml_string(text))]);
    }
    if spec.thread_id.is_some() {
        args.push("resume".to_string());
    }
    // `--` keeps a thread id such as "--last", or a prompt such as "-x",
    // "help" or "resume", from being parsed as syntax.
    args.push("--".to_string());
    args.extend(spec.thread_id.iter().cloned());
    args.push(spec.prompt.clone());
    args
}

/// Codex reads standard input for a prompt of exactly "-", even after `--`.
pub fn check_prompt(prompt: &str) -> Result<(), String> {
    if prompt.trim() == "-" {
        return Err(
            "a prompt of just \"-\" would make Codex read standard input; write the request out".into()
        );
    }
    Ok(())
}

/// A TOML basic string (JSON string escaping is valid TOML).
pub fn toml_string(text: &str) -> String {
    serde_json::to_string(text).expect("strings always serialise")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_that_look_like_syntax_stay_prompts() {
        for prompt in ["-x hi", "help", "resume"] {
            let spec = TurnSpec { prompt: prompt.into(), ..Default::default() };
            assert_eq!(exec_args(&spec).last().unwrap(), prompt);
            assert_eq!(exec_args(&spec)[exec_args(&spec).len() - 2], "--");
        }
        assert!(check_prompt("-").is_err());
        assert!(check_prompt("- a list").is_ok());
    }

    #[test]
    fn new_thread_minimal() {
        let spec = TurnSpec { prompt: "hi".into(), ..Default::default() };
        assert_eq!(exec_args(&spec), ["exec", "--json", "--skip-git-repo-check", "--", "hi"]);
    }

    #[test]
    fn resume_puts_flags_before_resume_and_approval_before_exec() {
        let spec = TurnSpec {
            thread_id: Some("019a-thread".into()),
            prompt: "again".into(),
            model: Some("gpt-x".into()),
            reasoning_effort: Some("high".into()),
            sandbox: Some("read-only".into()),
            cwd: Some("/work".into()),
            approval_policy: Some("never".into()),
            config: vec![("a.b".into(), "1".into())],
            base_instructions: None,
            developer_instructions: Some("say \"x\"".into()),
        };
        assert_eq!(
            exec_args(&spec),
            [
                "-a",
                "never",
                "exec",
                "--json",
                "--skip-git-repo-check",
                "-m",
                "gpt-x",
                "-c",
                "model_reasoning_effort=\"high\"",
                "-s",
                "read-only",
                "-C",
                "/work",
                "-c",
                "a.b=1",
                "-c",
                "developer_instructions=\"say \\\"x\\\"\"",
                "resume",
                "--",
                "019a-thread",
                "again"
            ]
        );
    }
}
