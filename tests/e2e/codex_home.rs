//! The agent driver's read-only root is CODEX_HOME, which also holds Codex's
//! credentials (`auth.json`) and configuration. Only the entries the driver
//! reads (`sessions/`, `archived_sessions/`) are granted by default: a hostile
//! agent plugin configured with CODEX_HOME as its root cannot read, list or
//! stat anything else, under any spelling.

use std::path::Path;

use warden::config::Config;
use warden::contract::role::Role;
use warden::runtime::calls::AgentPlugin;
use warden::runtime::loaded::{CallError, CallOptions};
use warden::types::PluginError;
use warden_tests::{agent_turn, guest_wasm, patch_bytes};

/// A CODEX_HOME with credentials, configuration and one transcript.
fn codex_home(dir: &Path) -> std::path::PathBuf {
    let home = dir.join("codex-home");
    std::fs::create_dir_all(home.join("sessions/2026/01/02")).unwrap();
    std::fs::create_dir_all(home.join("archived_sessions")).unwrap();
    std::fs::write(home.join("auth.json"), r#"{"OPENAI_API_KEY":"sk-secret"}"#).unwrap();
    std::fs::write(home.join("config.toml"), "model_provider = \"secret\"\n").unwrap();
    std::fs::write(home.join("sessions/2026/01/02/rollout.jsonl"), "transcript").unwrap();
    home
}

/// The hostile agent with a manifest that also declares a read-only root.
fn hostile_agent_with_root(dir: &Path) -> std::path::PathBuf {
    let wasm = guest_wasm("hostile_agent.wasm");
    let original = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("guests/hostile-agent/warden.toml"),
    )
    .unwrap();
    let manifest = "contract = \"0.1.1\"\nrole = \"agent-driver\"\nroot = \"codex-home\"\n";
    let padded = format!("{manifest}#{}", " ".repeat(original.len() - manifest.len() - 1));
    let path = dir.join("hostile-agent.wasm");
    std::fs::write(&path, patch_bytes(&wasm, &original, &padded)).unwrap();
    path
}

fn agent(config: &Config) -> (warden::runtime::Runtime, AgentPlugin) {
    let runtime = warden::plugins::runtime(config).unwrap();
    let (info, wasm) = warden::plugins::plugin_info(Role::AgentDriver, config).unwrap();
    let plugin = runtime.load_agent(info, &wasm).unwrap();
    (runtime, plugin)
}

fn turn(plugin: &AgentPlugin, prompt: &str) -> Result<String, CallError> {
    agent_turn(plugin, prompt, CallOptions::default())
}

#[test]
fn credentials_in_codex_home_are_out_of_the_agents_reach() {
    let dir = tempfile::tempdir().unwrap();
    let home = codex_home(dir.path());
    let wasm = hostile_agent_with_root(dir.path());
    let config = Config::parse(&format!(
        "cache-dir = {:?}\n[plugins.agent-driver]\npath = {wasm:?}\nroot = {home:?}\n",
        crate::cache_dir()
    ))
    .unwrap();
    let (_rt, plugin) = agent(&config);
    for attack in [
        "read-ro:auth.json",
        "read-ro:config.toml",
        "read-ro:AUTH.JSON",
        "read-ro:./auth.json",
        "read-ro:sessions/../auth.json",
        "list-ro:archived_sessions/../",
    ] {
        match turn(&plugin, attack) {
            Err(CallError::Plugin { error: PluginError::Denied(message), .. }) => {
                assert!(!message.contains("sk-secret"), "{attack}: {message}")
            }
            other => panic!("{attack}: expected denied, got {other:?}"),
        }
    }
    let listing = turn(&plugin, "list-ro:").unwrap();
    let mut names: Vec<&str> = listing.split(',').collect();
    names.sort();
    assert_eq!(names, ["archived_sessions", "sessions"], "only the transcripts are listed");
    assert_eq!(turn(&plugin, "read-ro:sessions/2026/01/02/rollout.jsonl").unwrap(), "transcript");
}

#[test]
fn the_embedded_driver_gets_only_the_transcript_directories_unless_widened() {
    let dir = tempfile::tempdir().unwrap();
    let home = codex_home(dir.path());
    let base = format!("cache-dir = {:?}\n[plugins.agent-driver]\nroot = {home:?}\n", crate::cache_dir());
    let (info, _) = warden::plugins::plugin_info(Role::AgentDriver, &Config::parse(&base).unwrap()).unwrap();
    let root = info.fs_root.expect("CODEX_HOME is granted");
    assert_eq!(root.entries().unwrap(), ["sessions", "archived_sessions"]);
    assert!(matches!(root.read("auth.json"), Err(PluginError::Denied(_))));
    assert!(matches!(root.metadata("config.toml"), Err(PluginError::Denied(_))));
    assert_eq!(root.read("sessions/2026/01/02/rollout.jsonl").unwrap(), b"transcript");

    let widened = Config::parse(&format!("{base}root-entries = [\"sessions\", \"config.toml\"]\n")).unwrap();
    let (info, _) = warden::plugins::plugin_info(Role::AgentDriver, &widened).unwrap();
    let root = info.fs_root.unwrap();
    assert!(root.read("config.toml").is_ok() && root.read("auth.json").is_err());

    let bad = Config::parse(&format!("{base}root-entries = [\"sessions/2026\"]\n")).unwrap();
    let err = warden::plugins::plugin_info(Role::AgentDriver, &bad).err().expect("refused");
    assert!(format!("{err:#}").contains("not the name of one entry"), "{err:#}");
}
