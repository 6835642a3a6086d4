//! The OAuth 2.1 resource server (`[auth.jwt]`): a JWT access token is
//! accepted when a key of the configured JWKS (see [`super::jwks`]) signed it (with that key's own
//! algorithm, never one the token picks), its issuer and audience are the
//! configured ones, it has not expired, and it carries every required scope.
//! The principal is a string claim of the token (`sub` by default).

use std::time::Duration;

use jsonwebtoken::{Validation, decode, decode_header};
use serde_json::Value;

use super::Principal;
use super::jwks::{DEFAULT_REFRESH, KeySet, KeySource};
use crate::config::JwtConfig;

const DEFAULT_LEEWAY_SECS: u64 = 30;

/// Why a token was not accepted; the text is sent back in the challenge.
#[derive(Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Not a valid token for this resource (401, `invalid_token`).
    Invalid(String),
    /// Valid, but without the scopes this resource needs (403, `insufficient_scope`).
    InsufficientScope(String),
}

/// Checks JWT access tokens against the configured keys and claims.
pub struct JwtVerifier {
    keys: KeySet,
    issuer: String,
    audience: String,
    scopes: Vec<String>,
    principal_claim: String,
    leeway_secs: u64,
}

impl JwtVerifier {
    pub fn from_config(config: &JwtConfig) -> anyhow::Result<Self> {
        let refresh = config.refresh_secs.map_or(DEFAULT_REFRESH, Duration::from_secs);
        let keys = KeySet::load(KeySource::parse(&config.jwks)?, refresh)?;
        if config.issuer.trim().is_empty() || config.audience.trim().is_empty() {
            anyhow::bail!(
                "[auth.jwt]: `issuer` and `audience` must name this resource's issuer and audience"
            );
        }
        Ok(Self {
            keys,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            scopes: config.scopes.clone(),
            principal_claim: config.principal_claim.clone().unwrap_or_else(|| "sub".into()),
            leeway_secs: config.leeway_secs.unwrap_or(DEFAULT_LEEWAY_SECS),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The principal `token` proves, or why it proves none.
    pub fn verify(&self, token: &str) -> Result<Principal, Rejection> {
        let invalid = |why: &str| Rejection::Invalid(why.to_string());
        let header = decode_header(token).map_err(|e| invalid(&format!("not a JWT ({e})")))?;
        let key = self
            .keys
            .find(header.kid.as_deref())
            .ok_or_else(|| invalid("signed by no key of this resource's key set"))?;
        if header.alg != key.algorithm {
            return Err(invalid("its algorithm is not its key's"));
        }
        let mut validation = Validation::new(key.algorithm);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = self.leeway_secs;
        validation.validate_nbf = true;
        let claims = decode::<serde_json::Map<String, Value>>(token, &key.key, &validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind as K;
                match e.kind() {
                    K::ExpiredSignature => invalid("the token has expired"),
                    K::ImmatureSignature => invalid("the token is not valid yet"),
                    K::InvalidAudience => invalid("the token is for another audience"),
                    K::InvalidIssuer => invalid("the token is from another issuer"),
                    K::InvalidSignature => invalid("the signature does not verify"),
                    K::MissingRequiredClaim(claim) => invalid(&format!("the token has no `{claim}` claim")),
                    _ => invalid(&format!("the token is not valid ({e})")),
                }
            })?
            .claims;
        let granted = granted_scopes(&claims);
        if let Some(missing) = self.scopes.iter().find(|s| !granted.contains(&s.as_str())) {
            return Err(Rejection::InsufficientScope(format!("the token lacks the scope `{missing}`")));
        }
        let name = claims
            .get(&self.principal_claim)
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(&format!("the token has no string `{}` claim", self.principal_claim)))?;
        Principal::new(name).map_err(|e| invalid(&format!("its `{}` claim: {e}", self.principal_claim)))
    }
}

/// Scopes from `scope` (space-separated) or `scp` (a list or a string).
fn granted_scopes(claims: &serde_json::Map<String, Value>) -> Vec<&str> {
    let mut scopes = Vec::new();
    for claim in ["scope", "scp"] {
        match claims.get(claim) {
            Some(Value::String(text)) => scopes.extend(text.split_whitespace()),
            Some(Value::Array(items)) => scopes.extend(items.iter().filter_map(Value::as_str)),
            _ => {}
        }
    }
    scopes
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    use serde_json::json;

    /// An Ed25519 key from a seed, as PKCS#8 DER (the fixed 16-byte header, then the seed).
    fn ed_key(seed: u8) -> EncodingKey {
        let mut der = hex::decode("302e020100300506032b657004220420").unwrap();
        der.extend([seed; 32]);
        EncodingKey::from_ed_der(&der)
    }

    fn jwks(dir: &std::path::Path, keys: &[(&str, u8)]) -> std::path::PathBuf {
        let keys: Vec<Value> = keys
            .iter()
            .map(|(kid, seed)| {
                let mut jwk = Jwk::from_encoding_key(&ed_key(*seed), Algorithm::EdDSA).unwrap();
                jwk.common.key_id = Some(kid.to_string());
                serde_json::to_value(jwk).unwrap()
            })
            .collect();
        let file = dir.join("jwks.json");
        std::fs::write(&file, json!({ "keys": keys }).to_string()).unwrap();
        file
    }

    fn verifier(dir: &std::path::Path) -> JwtVerifier {
        JwtVerifier::from_config(&JwtConfig {
            jwks: jwks(dir, &[("k1", 1), ("k2", 2)]).display().to_string(),
            issuer: "https://issuer.test".into(),
            audience: "https://warden.test/mcp".into(),
            scopes: vec!["warden".into()],
            principal_claim: None,
            leeway_secs: Some(0),
            refresh_secs: None,
        })
        .unwrap()
    }

    fn token(kid: &str, seed: u8, claims: Value) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.into());
        encode(&header, &claims, &ed_key(seed)).unwrap()
    }

    fn claims(overrides: Value) -> Value {
        let now = jsonwebtoken::get_current_timestamp();
        let mut claims = json!({"sub": "alice", "iss": "https://issuer.test", "aud": "https://warden.test/mcp",
            "exp": now + 600, "scope": "openid warden"});
        for (k, v) in overrides.as_object().unwrap() {
            claims[k] = v.clone();
        }
        claims
    }

    #[test]
    fn a_valid_token_names_its_principal_and_every_fault_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let v = verifier(dir.path());
        assert_eq!(v.verify(&token("k1", 1, claims(json!({})))).unwrap().as_str(), "alice");
        assert_eq!(
            v.verify(&token("k2", 2, claims(json!({"scp": ["warden"], "scope": null})))).unwrap().as_str(),
            "alice"
        );
        let rejected = |t: String| match v.verify(&t) {
            Err(Rejection::Invalid(why)) => why,
            other => panic!("{other:?}"),
        };
        let past = jsonwebtoken::get_current_timestamp() - 60;
        assert!(rejected(token("k1", 1, claims(json!({"exp": past})))).contains("expired"));
        assert!(
            rejected(token("k1", 1, claims(json!({"aud": "https://other.test"}))))
                .contains("another audience")
        );
        assert!(
            rejected(token("k1", 1, claims(json!({"iss": "https://evil.test"})))).contains("another issuer")
        );
        assert!(
            rejected(token("k1", 9, claims(json!({})))).contains("does not verify"),
            "signed by another key"
        );
        assert!(rejected(token("k3", 1, claims(json!({})))).contains("no key"));
        assert!(rejected("not.a.jwt".into()).contains("not a JWT"));
        assert!(rejected(token("k1", 1, claims(json!({"sub": 7})))).contains("`sub`"));
        let mut no_exp = claims(json!({}));
        no_exp.as_object_mut().unwrap().remove("exp");
        assert!(rejected(token("k1", 1, no_exp)).contains("`exp`"));
        let hmac = encode(
            &Header { kid: Some("k1".into()), ..Header::new(Algorithm::HS256) },
            &claims(json!({})),
            &EncodingKey::from_secret(b"public key bytes as a secret").unwrap(),
        )
        .unwrap();
        assert!(rejected(hmac).contains("algorithm"), "no algorithm confusion");
        assert_eq!(
            v.verify(&token("k1", 1, claims(json!({"scope": "openid"})))),
            Err(Rejection::InsufficientScope("the token lacks the scope `warden`".into()))
        );
    }

    #[test]
    fn key_sets_without_usable_public_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let config = |jwks: std::path::PathBuf| JwtConfig {
            jwks: jwks.display().to_string(),
            issuer: "i".into(),
            audience: "a".into(),
            scopes: vec![],
            principal_claim: None,
            leeway_secs: None,
            refresh_secs: None,
        };
        let file = dir.path().join("bad.json");
        std::fs::write(&file, r#"{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"s"}]}"#).unwrap();
        let err = JwtVerifier::from_config(&config(file.clone())).err().unwrap().to_string();
        assert!(err.contains("symmetric"), "{err}");
        std::fs::write(&file, r#"{"keys":[]}"#).unwrap();
        let err = JwtVerifier::from_config(&config(file.clone())).err().unwrap().to_string();
        assert!(err.contains("holds no keys"), "{err}");
        let err =
            JwtVerifier::from_config(&config(dir.path().join("missing.json"))).err().unwrap().to_string();
        assert!(err.contains("cannot read"), "{err}");
    }
}
