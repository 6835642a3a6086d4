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
