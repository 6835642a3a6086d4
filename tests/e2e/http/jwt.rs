//! OAuth 2.1 resource server mode: JWT access tokens signed by a local key
//! (the test is its own authorization server), checked for signature,
//! issuer, audience, expiry and scope; the protected resource metadata
//! (RFC 9728) and the challenges that point at it.

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode, get_current_timestamp};
use serde_json::{Value, json};

use super::{Client, get, initialize, post, start_with, tokens};

const ISSUER: &str = "https://auth.example.test";
const AUDIENCE: &str = "https://warden.example.test/mcp";

/// An Ed25519 key from a seed, as PKCS#8 DER (the fixed 16-byte header, then the seed).
fn key(seed: u8) -> EncodingKey {
    let mut der = hex::decode("302e020100300506032b657004220420").unwrap();
    der.extend([seed; 32]);
    EncodingKey::from_ed_der(&der)
}

fn sign(seed: u8, overrides: Value) -> String {
    let mut claims = json!({"sub": "carol", "iss": ISSUER, "aud": AUDIENCE,
        "exp": get_current_timestamp() + 600, "scope": "warden"});
    for (k, v) in overrides.as_object().unwrap() {
        claims[k] = v.clone();
    }
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("test-key".into());
    encode(&header, &claims, &key(seed)).unwrap()
}

#[test]
fn jwt_access_tokens_are_checked_and_name_their_principal() {
    let dir = tempfile::tempdir().unwrap();
    let mut jwk = Jwk::from_encoding_key(&key(1), Algorithm::EdDSA).unwrap();
    jwk.common.key_id = Some("test-key".into());
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, json!({"keys": [jwk]}).to_string()).unwrap();
    let config = format!(
        "{}[http]\npublic-url = \"https://warden.example.test\"\n\
         [auth.jwt]\njwks = {jwks:?}\nissuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\nscopes = [\"warden\"]\n",
        tokens(&[("alice", "token-of-alice")])
    );
    let server = start_with(&config, "warn");
    let addr = server.addr;

    let metadata = get(addr, "/.well-known/oauth-protected-resource/mcp").unwrap();
    assert_eq!(metadata.status, 200);
    let document: Value = serde_json::from_str(&metadata.body).unwrap();
    assert_eq!(document["resource"], AUDIENCE);
    assert_eq!(document["authorization_servers"], json!([ISSUER]));
    assert_eq!(document["scopes_supported"], json!(["warden"]));

    let pointer =
        "resource_metadata=\"https://warden.example.test/.well-known/oauth-protected-resource/mcp\"";
    let missing = post(addr, &[], &initialize());
    assert_eq!(missing.status, 401);
    assert!(missing.header("www-authenticate").unwrap().contains(pointer), "{:?}", missing.headers);
    let past = get_current_timestamp() - 600;
    for (token, why) in [
        ("not-a-jwt".to_string(), "not a JWT"),
        (sign(1, json!({"exp": past})), "expired"),
        (sign(1, json!({"aud": "https://elsewhere.test/mcp"})), "another audience"),
        (sign(1, json!({"iss": "https://evil.test"})), "another issuer"),
        (sign(2, json!({})), "does not verify"),
    ] {
        let refused = post(addr, &[("Authorization", &format!("Bearer {token}"))], &initialize());
        assert_eq!(refused.status, 401, "{why}: {}", refused.body);
        let challenge = refused.header("www-authenticate").unwrap();
        assert!(challenge.contains("error=\"invalid_token\"") && challenge.contains(pointer), "{challenge}");
        assert!(refused.body.contains(why), "{why}: {}", refused.body);
    }
    let unscoped = post(
        addr,
        &[("Authorization", &format!("Bearer {}", sign(1, json!({"scope": "other"}))))],
        &initialize(),
    );
    assert_eq!(unscoped.status, 403, "{}", unscoped.body);
    assert!(unscoped.header("www-authenticate").unwrap().contains("error=\"insufficient_scope\""));

    // A valid token acts for its `sub`; the configured tokens still work beside it.
    let mut carol = Client::connect(addr, &sign(1, json!({})));
    let done = carol.call("codex", json!({"prompt": "harmless", "sessionId": "mine"}));
    assert_eq!(done["isError"], false, "{done}");
    let mut alice = Client::connect(addr, "token-of-alice");
    assert_eq!(alice.call("listSessions", json!({}))["structuredContent"]["sessions"], json!([]));
    let mut carol_later = Client::connect(addr, &sign(1, json!({"jti": "another"})));
    let listed = carol_later.call("listSessions", json!({}));
    assert_eq!(listed["structuredContent"]["sessions"][0]["id"], "mine", "{listed}");
}

/// Serves whatever `body` holds at any path, over HTTP on loopback, until the test ends.
fn key_server(body: std::sync::Arc<std::sync::Mutex<String>>) -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 4096];
            let _ = std::io::Read::read(&mut stream, &mut request);
            let body = body.lock().unwrap().clone();
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = std::io::Write::write_all(&mut stream, response.as_bytes());
        }
    });
    addr
}

fn key_set(keys: &[(&str, u8)]) -> String {
    let keys: Vec<Value> = keys
        .iter()
        .map(|(kid, seed)| {
            let mut jwk = Jwk::from_encoding_key(&key(*seed), Algorithm::EdDSA).unwrap();
            jwk.common.key_id = Some(kid.to_string());
            serde_json::to_value(jwk).unwrap()
        })
        .collect();
    json!({ "keys": keys }).to_string()
}

fn sign_with(kid: &str, seed: u8) -> String {
    let claims = json!({"sub": "dave", "iss": ISSUER, "aud": AUDIENCE, "exp": get_current_timestamp() + 600, "scope": "warden"});
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.into());
    encode(&header, &claims, &key(seed)).unwrap()
}

#[test]
fn a_key_set_from_the_network_is_re_read_when_a_token_names_a_new_key() {
    let served = std::sync::Arc::new(std::sync::Mutex::new(key_set(&[("old", 1)])));
    let keys = key_server(served.clone());
    let config = format!(
        "[auth.jwt]\njwks = \"http://{keys}/.well-known/jwks.json\"\nissuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\n\
         refresh-secs = 1\n"
    );
    let server = start_with(&config, "info");
    let bearer = |token: String| format!("Bearer {token}");
    let accepted = post(server.addr, &[("Authorization", &bearer(sign_with("old", 1)))], &initialize());
    assert_eq!(accepted.status, 200, "{}", accepted.body);

    // The authorization server rotates to a new key; a token signed with it is accepted once
    // Warden has re-read the set (at most once a second here).
    *served.lock().unwrap() = key_set(&[("old", 1), ("new", 2)]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let rotated = post(server.addr, &[("Authorization", &bearer(sign_with("new", 2)))], &initialize());
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let forged = post(server.addr, &[("Authorization", &bearer(sign_with("new", 3)))], &initialize());
    assert_eq!(forged.status, 401, "a token naming the new key but signed by another: {}", forged.body);
    let unknown = post(server.addr, &[("Authorization", &bearer(sign_with("unknown", 2)))], &initialize());
    assert_eq!(unknown.status, 401, "{}", unknown.body);
}
