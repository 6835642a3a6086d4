//! Which agents one Warden serves, each an agent-driver plugin with its own
//! grant. `[agents.<name>]` sections name them exactly; without any, Warden
//! serves `codex`, `claude` and `gemini` (the embedded `agent-codex`,
//! `agent-claude` and `agent-gemini`), and an older `[plugins.agent-driver]` section configures
//! the agent its plugin drives (`codex` unless it selects another embedded
//! driver, `agent-<name>`).

use crate::config::{Config, PluginConfig};
use crate::contract::role::Role;
use crate::runtime::embedded;

/// The agents served when the configuration names none, in tool order.
pub const DEFAULT_AGENTS: &[&str] = &["codex", "claude", "gemini"];

/// Names that are tools of their own.
const RESERVED: &[&str] = &["ping", "listsessions", "endsession"];

/// One agent to serve: its name (the tool `<name>` and `<name>-reply`) and a
/// configuration whose `[plugins.agent-driver]` is this agent's section.
#[derive(Clone, Debug)]
pub struct AgentSpec {
    pub name: String,
    pub config: Config,
}

/// The name people know an agent by, for tool titles and descriptions.
pub fn display_name(agent: &str) -> String {
    match agent {
        "codex" => "Codex".into(),
        "claude" => "Claude Code".into(),
        "gemini" => "Gemini CLI".into(),
        other => other.into(),
    }
}

/// The agents `config` serves, in tool order.
pub fn served(config: &Config) -> anyhow::Result<Vec<AgentSpec>> {
    let legacy = config.plugins.get(&Role::AgentDriver);
    let mut sections: Vec<(String, PluginConfig)> = Vec::new();
    if config.agents.is_empty() {
        let configured = legacy.map(|pc| (legacy_agent_name(pc), pc.clone()));
        for name in DEFAULT_AGENTS {
            if configured.as_ref().is_some_and(|(n, _)| n == name) {
                continue;
            }
            sections.push((name.to_string(), PluginConfig::default()));
        }
        if let Some((name, pc)) = configured {
            let at = DEFAULT_AGENTS.iter().position(|n| *n == name).unwrap_or(0);
            sections.insert(at.min(sections.len()), (name, pc));
        }
    } else {
        if legacy.is_some() {
            anyhow::bail!(
                "the configuration has both [agents.<name>] sections and [plugins.agent-driver]; \
                 move the agent-driver settings into the [agents.<name>] section of the agent they drive"
            );
        }
        sections = config.agents.iter().map(|(name, pc)| (name.clone(), pc.clone())).collect();
        sections.sort_by_key(|(name, _)| DEFAULT_AGENTS.iter().position(|n| n == name).unwrap_or(usize::MAX));
    }
    sections
        .into_iter()
        .map(|(name, mut pc)| {
            check_name(&name)?;
            if pc.path.is_none() && pc.plugin.is_none() {
                let embedded = format!("agent-{name}");
                if embedded::plugin_named(Role::AgentDriver, &embedded).is_err() {
                    anyhow::bail!(
                        "[agents.{name}] names no plugin, and no agent driver `{embedded}` is embedded; \
                         set `path` to its .wasm file or `plugin` to an embedded driver"
                    );
                }
                pc.plugin = Some(embedded);
            }
            let mut config = config.clone();
            config.agents.clear();
            config.plugins.insert(Role::AgentDriver, pc);
            Ok(AgentSpec { name, config })
        })
        .collect()
}

/// The agent an `[plugins.agent-driver]` section drives.
fn legacy_agent_name(pc: &PluginConfig) -> String {
    match pc.plugin.as_deref().and_then(|p| p.strip_prefix("agent-")) {
        Some(name) if pc.path.is_none() => name.to_string(),
        _ => "codex".to_string(),
    }
}

fn check_name(name: &str) -> anyhow::Result<()> {
    let well_formed = name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with("-reply");
    if !well_formed {
        anyhow::bail!(
            "[agents.{name}]: an agent name is its tool's name: 1 to 32 lowercase letters, digits and \
             dashes, starting with a letter, not ending in `-reply`"
        );
    }
    if RESERVED.contains(&name.to_ascii_lowercase().as_str()) {
        anyhow::bail!("[agents.{name}]: `{name}` is one of Warden's own tools; choose another name");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Result<Vec<(String, Option<String>)>, String> {
        served(&Config::parse(text).unwrap())
            .map(|specs| {
                specs.into_iter().map(|s| (s.name, s.config.plugin(Role::AgentDriver).plugin)).collect()
            })
            .map_err(|e| e.to_string())
    }

    fn plugin(name: &str, plugin: &str) -> (String, Option<String>) {
        (name.into(), Some(plugin.into()))
    }

    #[test]
    fn codex_claude_and_gemini_are_served_by_default() {
        assert_eq!(
            names("").unwrap(),
            [
                plugin("codex", "agent-codex"),
                plugin("claude", "agent-claude"),
                plugin("gemini", "agent-gemini")
            ]
        );
    }

    #[test]
    fn an_agent_driver_section_configures_the_agent_it_drives() {
        let claude = names("[plugins.agent-driver]\nplugin = \"agent-claude\"\n").unwrap();
        assert_eq!(claude[..2], [plugin("codex", "agent-codex"), plugin("claude", "agent-claude")]);
        let file = names("[plugins.agent-driver]\npath = \"/opt/my-agent.wasm\"\n").unwrap();
        assert_eq!(file[0], ("codex".into(), None), "a file replaces the codex driver");
        assert_eq!(file[1..], [plugin("claude", "agent-claude"), plugin("gemini", "agent-gemini")]);
    }

    #[test]
    fn agents_sections_name_exactly_the_agents_served() {
        let only = names("[agents.claude]\n").unwrap();
        assert_eq!(only, [plugin("claude", "agent-claude")]);
        let custom = names("[agents.mine]\npath = \"/opt/mine.wasm\"\n[agents.codex]\n").unwrap();
        assert_eq!(custom, [plugin("codex", "agent-codex"), ("mine".into(), None)]);
        let err = names("[agents.gpt]\n").unwrap_err();
        assert!(err.contains("agent-gpt") && err.contains("path"), "{err}");
        let err = names("[agents.codex]\n[plugins.agent-driver]\n").unwrap_err();
        assert!(err.contains("[agents.<name>]") && err.contains("[plugins.agent-driver]"), "{err}");
        for bad in ["Codex", "ping", "a-reply", "9lives", "with space"] {
            let err = names(&format!("[agents.\"{bad}\"]\npath = \"/x.wasm\"\n")).unwrap_err();
            assert!(err.contains(bad), "{bad}: {err}");
        }
    }
}
