//! HTTPS: with `[http.tls]` Warden speaks TLS (rustls) with the operator's
//! certificate; a client that trusts it gets MCP, plain HTTP gets nothing,
//! and a certificate it cannot use stops start-up with the setting named.

use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use warden_tests::warden_bin;

use super::{Response, config, exchange_over, free_port, initialize, tokens};

/// A self-signed certificate for 127.0.0.1 and localhost: (certificate PEM, key PEM).
fn self_signed() -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// One HTTPS exchange, trusting only `ca_pem`.
fn https(addr: SocketAddr, ca_pem: &str, request: &str) -> Option<Response> {
    let mut roots = rustls::RootCertStore::empty();
    let der = rustls::pki_types::pem::PemObject::from_pem_slice(ca_pem.as_bytes()).unwrap();
    roots.add(der).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let socket = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    socket.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    exchange_over(rustls::StreamOwned::new(connection, socket), request)
}

#[test]
fn with_a_certificate_warden_speaks_https_only() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed();
    std::fs::write(dir.path().join("cert.pem"), &cert).unwrap();
    std::fs::write(dir.path().join("key.pem"), &key).unwrap();
    let tls = format!(
        "[http]\ntls = {{ cert = {:?}, key = {:?} }}\n",
        dir.path().join("cert.pem"),
        dir.path().join("key.pem")
    );
    let config_file = config(dir.path(), &format!("{}{tls}", tokens(&[("alice", "token-of-alice")])));
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut child = Command::new(warden_bin())
        .arg("--config")
        .arg(&config_file)
        .args(["serve", "--http", &addr.to_string()])
        .env("WARDEN_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let health = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let started = Instant::now();
    while https(addr, &cert, &health).map(|r| r.status) != Some(200) {
        assert!(started.elapsed() < Duration::from_secs(60), "warden never answered over HTTPS");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(super::get(addr, "/healthz").is_none(), "plain HTTP gets no answer from an HTTPS port");

    let body = initialize().to_string();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nAuthorization: Bearer token-of-alice\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let init = https(addr, &cert, &request).expect("an HTTPS response");
    assert_eq!(init.status, 200, "{}", init.body);
    assert_eq!(init.messages()[0]["result"]["serverInfo"]["name"], "warden", "{}", init.body);
    let _ = child.kill();
    let _ = child.wait();

    std::fs::write(dir.path().join("key.pem"), "not a key").unwrap();
    let refused = Command::new(warden_bin())
        .arg("--config")
        .arg(&config_file)
        .args(["serve", "--http", &format!("127.0.0.1:{}", free_port())])
        .env("WARDEN_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && stderr.contains("[http.tls]"), "{stderr}");
}
