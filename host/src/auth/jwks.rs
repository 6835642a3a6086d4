//! The key set JWT access tokens are checked against (`[auth.jwt] jwks`):
//! a JSON Web Key Set from a file or from the authorization server's URL
//! (HTTPS; plain HTTP only on loopback). Each key verifies with one
//! algorithm, its own. A token naming a key the set lacks makes Warden read
//! the set again — at most once per `refresh-secs` (default a minute) — so
//! keys rotated by the authorization server are picked up without a restart.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};

use crate::config_paths::validate_root;

/// Fewest seconds between two reads of the key set, by default.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(60);
/// Longest a fetch of the key set may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest key set accepted.
const MAX_JWKS_BYTES: u64 = 1 << 20;

pub struct Key {
    pub id: Option<String>,
    pub algorithm: Algorithm,
    pub key: DecodingKey,
}

/// Where the key set comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    File(PathBuf),
    Url(String),
}

impl KeySource {
    /// `https://…` (or `http://` to a loopback host), else an absolute path.
    pub fn parse(setting: &str) -> anyhow::Result<Self> {
        if let Some(rest) = setting.strip_prefix("http://") {
            let authority = rest.split('/').next().unwrap_or_default();
            let host = match authority.strip_prefix('[') {
                Some(v6) => v6.split(']').next().unwrap_or_default(),
                None => authority.split(':').next().unwrap_or_default(),
            };
            if !matches!(host, "127.0.0.1" | "localhost" | "::1") {
                anyhow::bail!(
                    "[auth.jwt] jwks = {setting:?}: a key set from the network must come over https:// \
                     (plain http only from a loopback address)"
                );
            }
            return Ok(Self::Url(setting.to_string()));
        }
        if setting.starts_with("https://") {
            return Ok(Self::Url(setting.to_string()));
        }
        Ok(Self::File(validate_root("[auth.jwt] jwks", std::path::Path::new(setting))?))
    }

    fn describe(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Url(url) => url.clone(),
        }
    }

    fn read(&self) -> anyhow::Result<String> {
        match self {
            Self::File(path) => std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read the key set {}: {e}", path.display())),
            Self::Url(url) => {
                let agent: ureq::Agent =
                    ureq::Agent::config_builder().timeout_global(Some(FETCH_TIMEOUT)).build().into();
                agent
                    .get(url)
                    .call()
                    .and_then(|mut response| {
                        response.body_mut().with_config().limit(MAX_JWKS_BYTES).read_to_string()
                    })
                    .map_err(|e| anyhow::anyhow!("cannot fetch the key set {url}: {e}"))
            }
        }
    }
}

/// The keys, and when they were read.
pub struct KeySet {
    source: KeySource,
    refresh: Duration,
    current: RwLock<(Arc<Vec<Key>>, Instant)>,
}

impl KeySet {
    /// Read the key set once; a set that cannot be read or used stops start-up.
    pub fn load(source: KeySource, refresh: Duration) -> anyhow::Result<Self> {
        let keys = read_keys(&source).map_err(|e| anyhow::anyhow!("[auth.jwt] jwks: {e}"))?;
        Ok(Self { source, refresh, current: RwLock::new((Arc::new(keys), Instant::now())) })
    }

    /// The key `kid` names (or the only key, for a token naming none); an
    /// unknown `kid` re-reads the set if the last read is old enough.
    pub fn find(&self, kid: Option<&str>) -> Option<KeyRef> {
        let (keys, read_at) = {
            let current = self.current.read().expect("key set lock");
            (current.0.clone(), current.1)
        };
        if let Some(found) = KeyRef::find(&keys, kid) {
            return Some(found);
        }
        if kid.is_none() || read_at.elapsed() < self.refresh {
            return None;
        }
        let mut current = self.current.write().expect("key set lock");
        if current.1 == read_at {
            current.1 = Instant::now();
            match read_keys(&self.source) {
                Ok(fresh) => {
                    tracing::info!(source = %self.source.describe(), keys = fresh.len(), "re-read the JWT key set");
                    current.0 = Arc::new(fresh);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "re-reading the JWT key set failed; the keys read before stay")
                }
            }
        }
        KeyRef::find(&current.0, kid)
    }
}

/// One key of a key set, kept alive while a token is checked with it.
pub struct KeyRef {
    keys: Arc<Vec<Key>>,
    index: usize,
}

impl KeyRef {
    fn find(keys: &Arc<Vec<Key>>, kid: Option<&str>) -> Option<Self> {
        let index = match kid {
            Some(kid) => keys.iter().position(|k| k.id.as_deref() == Some(kid))?,
            None if keys.len() == 1 => 0,
            None => return None,
        };
        Some(Self { keys: keys.clone(), index })
    }
}

impl std::ops::Deref for KeyRef {
    type Target = Key;
    fn deref(&self) -> &Key {
        &self.keys[self.index]
    }
}

fn read_keys(source: &KeySource) -> anyhow::Result<Vec<Key>> {
    let text = source.read()?;
    let place = source.describe();
    let set: JwkSet = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{place} is not a JSON Web Key Set ({e})"))?;
    let mut keys = Vec::new();
    for (i, jwk) in set.keys.iter().enumerate() {
        let name = jwk.common.key_id.clone().unwrap_or_else(|| format!("#{i}"));
        let algorithm = algorithm_of(jwk).map_err(|why| anyhow::anyhow!("key {name} in {place}: {why}"))?;
        let key = DecodingKey::from_jwk(jwk)
            .map_err(|e| anyhow::anyhow!("key {name} in {place} cannot be read: {e}"))?;
        keys.push(Key { id: jwk.common.key_id.clone(), algorithm, key });
    }
    if keys.is_empty() {
        anyhow::bail!("{place} holds no keys");
    }
    if keys.len() > 1 && keys.iter().any(|k| k.id.is_none()) {
        anyhow::bail!("{place} holds several keys, so each needs a `kid` for tokens to name it");
    }
    Ok(keys)
}

/// The one algorithm a key verifies: its `alg`, else the usual one for its
/// type. Symmetric keys are refused: a resource server holds no secret.
fn algorithm_of(jwk: &Jwk) -> Result<Algorithm, String> {
    let inferred = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            _ => return Err("an elliptic curve other than P-256 or P-384".into()),
        },
        AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
        AlgorithmParameters::OctetKey(_) => {
            return Err("a symmetric (`oct`) key; a resource server verifies with public keys only".into());
        }
        _ => return Err("a key type this resource does not accept".into()),
    };
    let Some(declared) = jwk.common.key_algorithm else {
        return Ok(inferred);
    };
    let declared = match declared {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        other => return Err(format!("the algorithm {other:?} is not accepted")),
    };
    if declared.family() != inferred.family() {
        return Err(format!("its `alg` {declared:?} does not fit its key type"));
    }
    Ok(declared)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_set_comes_over_https_or_from_loopback_or_a_file() {
        for url in [
            "https://auth.example.com/jwks.json",
            "http://127.0.0.1:8080/jwks",
            "http://[::1]:9/k",
            "http://localhost/k",
        ] {
            assert_eq!(KeySource::parse(url).unwrap(), KeySource::Url(url.into()));
        }
        for url in
            ["http://auth.example.com/jwks", "http://[2001:db8::1]/jwks", "http://127.0.0.1.evil.com/k"]
        {
            let err = KeySource::parse(url).unwrap_err().to_string();
            assert!(err.contains("https://"), "{url}: {err}");
        }
        assert_eq!(KeySource::parse("/etc/jwks.json").unwrap(), KeySource::File("/etc/jwks.json".into()));
        assert!(KeySource::parse("jwks.json").unwrap_err().to_string().contains("relative"));
    }

    fn key_set(kids: &[&str]) -> String {
        let mut der = hex::decode("302e020100300506032b657004220420").unwrap();
        der.extend([7u8; 32]);
        let key = jsonwebtoken::EncodingKey::from_ed_der(&der);
        let keys: Vec<serde_json::Value> = kids
            .iter()
            .map(|kid| {
                let mut jwk = Jwk::from_encoding_key(&key, Algorithm::EdDSA).unwrap();
                jwk.common.key_id = Some(kid.to_string());
                serde_json::to_value(jwk).unwrap()
            })
            .collect();
        serde_json::json!({ "keys": keys }).to_string()
    }

    #[test]
    fn an_unknown_key_re_reads_the_set_no_more_often_than_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("jwks.json");
        std::fs::write(&file, key_set(&["old"])).unwrap();
        let patient = KeySet::load(KeySource::File(file.clone()), Duration::from_secs(3600)).unwrap();
        let eager = KeySet::load(KeySource::File(file.clone()), Duration::ZERO).unwrap();
        assert!(patient.find(Some("old")).is_some() && patient.find(None).is_some());
        std::fs::write(&file, key_set(&["old", "new"])).unwrap();
        assert!(patient.find(Some("new")).is_none(), "read less than `refresh` ago: not read again");
        assert!(eager.find(Some("new")).is_some(), "an unknown key re-reads the set");
        std::fs::write(&file, "not json").unwrap();
        assert!(eager.find(Some("newer")).is_none());
        assert!(eager.find(Some("new")).is_some(), "a set that cannot be read keeps the keys read before");
    }
}
