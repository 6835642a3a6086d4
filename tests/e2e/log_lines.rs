//! A plugin cannot forge lines in Warden's log. The hostile agent logs, and
//! prints to stderr, text with newlines, carriage returns and escape
//! sequences that imitate the host's own `capability refused` line; Warden's
//! stderr keeps each on the one line of the plugin's event, escaped.

use serde_json::json;

const FORGED: &str = "2026-01-01T00:00:00.000000Z  WARN warden::runtime::host_state: capability refused \
                      plugin=storage-dir role=storage-backend operation=\"read\"";

#[test]
fn plugin_text_cannot_forge_a_log_line() {
    let agent = std::path::Path::new(warden::runtime::embedded::GUEST_DIR).join("hostile_agent.wasm");
    let call = |id: u32, prompt: String| json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":"codex","arguments":{"prompt":prompt}}});
    let (responses, log) = crate::mcp_stdio::exchange_logged(
        &[
            json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"0"}}}),
            json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
            call(2, format!("log:harmless start\n{FORGED}\r\x1b[1A\x1b[2K")),
            call(3, format!("stderr:harmless start\n{FORGED}\n")),
        ],
        &format!("[plugins.agent-driver]\npath = {agent:?}\n"),
    );
    assert_eq!(responses[1]["result"]["structuredContent"]["content"], "logged", "{}", responses[1]);
    assert_eq!(responses[2]["result"]["structuredContent"]["content"], "printed", "{}", responses[2]);
    let forged: Vec<&str> = log.lines().filter(|l| l.starts_with("2026-01-01")).collect();
    assert!(forged.is_empty(), "a plugin forged log lines: {forged:#?}\nwhole log:\n{log}");
    assert!(!log.contains('\x1b') && !log.contains('\r'), "control characters reached the log:\n{log}");
    let carrying: Vec<&str> = log.lines().filter(|l| l.contains("plugin=storage-dir")).collect();
    assert_eq!(carrying.len(), 2, "{log}");
    for line in carrying {
        assert!(line.contains("hostile_agent") && line.contains("harmless start\\n2026-01-01"), "{line}");
    }
}
