//! The Python redaction plugin (guests/context-redact-py) as a drop-in
//! context builder: secrets-shaped strings (none of them real) never reach
//! the agent's command line, the model provider, or the stored session.

use std::path::Path;

use warden::contract::role::Role;
use warden::sessions::new_session;
use warden::types::{Plan, Session, Turn};
use warden_tests::{info, redact_plugin, runtime};

/// Shaped like real credentials; all invented.
const SECRETS: &[&str] = &[
    "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAB7cDe",
    "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
    "AKIAIOSFODNN7EXAMPLE",
    "xoxb-123456789012-abcdefghijklmnop",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk",
    "hunter2-but-longer",
];

fn prompt_with_secrets() -> String {
    format!(
        "deploy with key {} and token {}; aws {}; slack {}; jwt {}; db https://admin:{}@db.example.com/prod\n\
         -----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n\
         VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n-----END RSA PRIVATE KEY-----",
        SECRETS[0], SECRETS[1], SECRETS[2], SECRETS[3], SECRETS[4], SECRETS[5]
    )
}

fn assert_clean(what: &str, text: &str) {
    for secret in
        SECRETS.iter().chain(["MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun"].iter())
    {
        assert!(!text.contains(secret), "{what} leaks {secret}: {text}");
    }
}

#[test]
fn its_own_tests_pass() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guests/context-redact-py");
    let out = std::process::Command::new("python3").arg("test_redact.py").current_dir(dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn plans_carry_no_secret() {
    let runtime = runtime(&crate::cache_dir());
    let wasm = std::fs::read(redact_plugin()).unwrap();
    let plugin = runtime.load_context(info(Role::ContextBuilder, &wasm, None, None), &wasm).unwrap();
    let prompt = prompt_with_secrets();
    let turn = Turn { prompt: prompt.clone(), response: format!("used {}", SECRETS[1]), timestamp_ms: 0 };
    let session = Session { turns: vec![turn], ..new_session("s", 0) };
    let Plan::Fresh(fresh) = plugin.build(Some(&session), &prompt, false).unwrap() else {
        panic!("no thread yet")
    };
    assert_clean("the replayed prompt", &fresh.prompt);
    assert_clean("the recorded prompt", &fresh.recorded_prompt);
    for kind in [
        "openai-key",
        "github-token",
        "aws-access-key-id",
        "slack-token",
        "jwt",
        "url-password",
        "private-key",
    ] {
        assert!(
            fresh.recorded_prompt.contains(&format!("[REDACTED:{kind}]")),
            "{kind}: {}",
            fresh.recorded_prompt
        );
    }
    assert!(
        fresh.prompt.contains("https://admin:[REDACTED:url-password]@db.example.com"),
        "{}",
        fresh.prompt
    );
    let mut threaded = session.clone();
    threaded.agent_thread_id = Some("t".into());
    let Plan::Resume(resume) = plugin.build(Some(&threaded), &prompt, false).unwrap() else {
        panic!("resume")
    };
    assert_clean("the resumed prompt", &resume.prompt);
    assert_clean("the resumed recorded prompt", &resume.recorded_prompt);
}
