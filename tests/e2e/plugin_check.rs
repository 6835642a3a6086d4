//! `warden plugin check` against broken and hostile plugins: each is refused
//! with a message naming the exact problem and its fix; good ones pass.

use std::path::{Path, PathBuf};

use warden::commands::plugin_check::{Report, check};
use warden::config::Config;
use warden::contract::role::{CONTRACT_VERSION, Role};
use warden_tests::{guest_wasm, runtime};

use warden_tests::patch_bytes as patch;

/// Swap a plugin's manifest text for `text`, padded with a TOML comment to the same length.
fn with_manifest(wasm: &[u8], original: &str, text: &str) -> Vec<u8> {
    assert!(text.len() + 2 <= original.len(), "the new manifest must fit in the old one's place");
    let padded = format!("{text}\n#{}", " ".repeat(original.len() - text.len() - 2));
    patch(wasm, original, &padded)
}

fn manifest_of(guest_dir: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(guest_dir).join("warden.toml"))
        .unwrap()
}

struct Checker {
    dir: tempfile::TempDir,
    runtime: warden::runtime::Runtime,
}

impl Checker {
    fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap(), runtime: runtime(&crate::cache_dir()) }
    }

    fn run(&self, name: &str, wasm: &[u8], role: Option<Role>, config: &str) -> Report {
        let file: PathBuf = self.dir.path().join(format!("{name}.wasm"));
        std::fs::write(&file, wasm).unwrap();
        let config = Config::parse(config).unwrap();
        check(&self.runtime, &config, &file, role)
    }
}

fn refused(report: &Report, expected: &str) {
    assert!(!report.ok(), "expected a refusal, got {report:?}");
    assert!(
        report.problems.iter().any(|p| p.contains(expected)),
        "no problem mentions {expected:?}: {:?}",
        report.problems
    );
}

#[test]
fn not_webassembly_and_not_a_component() {
    let c = Checker::new();
    refused(&c.run("junk", b"MZ definitely not wasm", None, ""), "this is not WebAssembly");
    refused(
        &c.run("core", b"\0asm\x01\0\0\0", None, ""),
        "this is a core WebAssembly module, not a component",
    );
}

#[test]
fn wrong_world_extra_import_and_missing_export() {
    let c = Checker::new();
    let storage = guest_wasm("hostile_storage.wasm");
    let report = c.run("storage-as-policy", &storage, Some(Role::SessionPolicy), "");
    refused(&report, "it declares the role `storage-backend` but is checked as session-policy");
    refused(
        &report,
        &format!(
            "does not export `warden:plugin/policy@{CONTRACT_VERSION}`, which every session-policy plugin must"
        ),
    );

    let policy = guest_wasm("policy_default.wasm");
    let v = CONTRACT_VERSION;
    let extra = patch(&policy, &format!("warden:plugin/log@{v}"), &format!("warden:plugin/lag@{v}"));
    refused(
        &c.run("extra-import", &extra, None, ""),
        &format!("imports `warden:plugin/lag@{v}`, which the session-policy world does not provide"),
    );
    let missing = patch(&policy, &format!("warden:plugin/policy@{v}"), &format!("warden:plugin/polica@{v}"));
    refused(
        &c.run("missing-export", &missing, None, ""),
        &format!("does not export `warden:plugin/policy@{v}`"),
    );
}

#[test]
fn a_newer_contract_names_both_versions() {
    let c = Checker::new();
    let newer = patch(&guest_wasm("context_default.wasm"), &format!("@{CONTRACT_VERSION}"), "@0.1.9");
    let report = c.run("newer", &newer, None, "");
    refused(
        &report,
        &format!("it was built for contract 0.1.9, newer than the {CONTRACT_VERSION} this host speaks"),
    );
    assert_eq!(report.contract, ["0.1.9"]);
    let frozen = c.run("frozen", &guest_wasm("frozen_policy.wasm"), None, "");
    assert!(frozen.ok(), "an earlier release on the same line is accepted: {:?}", frozen.problems);
    assert_eq!(frozen.contract, ["0.1.0"]);
}

#[test]
fn spawns_must_be_declared_and_granted() {
    let c = Checker::new();
    let agent = guest_wasm("hostile_agent.wasm");
    let original = manifest_of("guests/hostile-agent");
    let undeclared = with_manifest(&agent, &original, "contract = \"0.1.0\"\nrole = \"agent-driver\"");
    refused(
        &c.run("undeclared-spawn", &undeclared, None, ""),
        "it imports `process` but declares no program",
    );

    let config = r#"
        [plugins.agent-driver]
        env = ["LANG", "WARDEN_TEST_VALUE"]
        [[plugins.agent-driver.programs]]
        name = "echo"
        path = "/bin/echo"
        args = ["hello", "world"]
    "#;
    let report = c.run("beyond-grant", &agent, None, config);
    refused(&report, "it declares `sh -c *`, which the configuration does not grant");
    assert!(
        !report.problems.iter().any(|p| p.contains("LANG")),
        "granted variables are not problems: {:?}",
        report.problems
    );
    assert!(
        report.granted.iter().any(|g| g.contains("echo at /bin/echo, exactly: echo hello world")),
        "{:?}",
        report.granted
    );

    let wildcard = r#"
        [[plugins.agent-driver.programs]]
        name = "echo"
        path = "/bin/echo"
        args = ["**"]
    "#;
    let report = c.run("wildcard", &agent, None, &format!("[plugins.agent-driver]{wildcard}"));
    refused(&report, "uses a wildcard, which lets a plugin pass any option");

    let full = r#"
        [plugins.agent-driver]
        env = ["LANG", "WARDEN_TEST_VALUE", "PATH", "HOME", "CODEX_HOME", "OPENAI_BASE_URL", "OPENAI_API_KEY"]
        [[plugins.agent-driver.programs]]
        name = "sh"
        args = ["-c", "*"]
        unrestricted = true
        [[plugins.agent-driver.programs]]
        name = "echo"
        args = ["**"]
        unrestricted = true
        [[plugins.agent-driver.programs]]
        name = "sleep"
        args = ["*"]
        unrestricted = true
        [[plugins.agent-driver.programs]]
        name = "codex"
        policy = "codex"
        [[plugins.agent-driver.programs]]
        name = "claude"
        policy = "claude"
        [[plugins.agent-driver.programs]]
        name = "gemini"
        policy = "gemini"
    "#;
    let report = c.run("granted", &agent, None, full);
    assert!(report.ok(), "{:?}", report.problems);
    assert!(report.granted.iter().any(|g| g.starts_with("program UNRESTRICTED: sh")), "{:?}", report.granted);
    assert!(report.warnings.iter().any(|w| w.contains("`sh` is UNRESTRICTED")), "{:?}", report.warnings);
    assert!(
        report.granted.iter().any(|g| g.contains("codex exec [--json, --skip-git-repo-check")),
        "{:?}",
        report.granted
    );
    assert!(
        report.granted.iter().any(|g| g.contains("claude [-p/--print, --output-format <stream-json>")),
        "{:?}",
        report.granted
    );
}

#[test]
fn roots_and_memory_must_be_granted() {
    let c = Checker::new();
    let storage = guest_wasm("hostile_storage.wasm");
    refused(
        &c.run("no-root", &storage, None, ""),
        "it needs the directory `store`, which the configuration does not grant: set `root` under [plugins.storage-backend]",
    );
    let root = c.dir.path().join("store");
    let report = c.run("root", &storage, None, &format!("[plugins.storage-backend]\nroot = {root:?}\n"));
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.role, Some(Role::StorageBackend));
    assert_eq!(report.sha256.len(), 64);

    let original = manifest_of("guests/hostile-storage");
    let greedy = with_manifest(&storage, &original, "memory-mib = 4096\nroot = \"store\"");
    refused(
        &c.run("greedy", &greedy, None, &format!("[plugins.storage-backend]\nroot = {root:?}\n")),
        "it needs 4096 MiB of memory, over the 128 MiB limit: raise `memory-mib` under [plugins.storage-backend]",
    );
}

#[test]
fn the_command_exits_non_zero_and_speaks_json() {
    let out = std::process::Command::new(warden_tests::warden_bin())
        .args(["plugin", "check", "--json"])
        .arg(Path::new(warden::runtime::embedded::GUEST_DIR).join("hostile_storage.wasm"))
        .env("XDG_CACHE_HOME", crate::cache_dir())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["role"], "storage-backend");
    assert!(report["problems"][0].as_str().unwrap().contains("`store`"), "{report}");
}
