//! The `warden` binary starts and describes itself (this test also makes
//! cargo build the binary that the end-to-end tests in `tests/` drive).

#[test]
fn version_is_printed() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_warden")).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8(out.stdout).unwrap().starts_with("warden "));
}
