//! Bearer tokens from the configuration (`[[auth.tokens]]`), kept as SHA-256
//! digests, each naming its principal.

use sha2::{Digest, Sha256};

use super::Principal;
use crate::config::AuthConfig;

/// The configured tokens, by the SHA-256 digest of the token.
#[derive(Clone, Debug, Default)]
pub struct Tokens {
    by_digest: Vec<([u8; 32], Principal)>,
}

impl Tokens {
    /// Check the configuration: well-formed digests, each naming a principal.
    pub fn from_config(auth: &AuthConfig) -> anyhow::Result<Self> {
        let mut by_digest = Vec::new();
        for token in &auth.tokens {
            let digest: [u8; 32] = hex::decode(token.sha256.trim())
                .ok()
                .and_then(|bytes| bytes.try_into().ok())
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "[[auth.tokens]] of principal {:?}: sha256 must be the 64 hex digits of the token's \
                         SHA-256 digest (e.g. `printf %s \"$TOKEN\" | sha256sum`)",
                        token.principal
                    )
                })?;
            let principal = Principal::new(&token.principal).map_err(|e| {
                anyhow::anyhow!(
                    "[[auth.tokens]]: every token names its principal (`principal = \"alice\"`): {e}"
                )
            })?;
            if by_digest.iter().any(|(d, _)| *d == digest) {
                anyhow::bail!(
                    "[[auth.tokens]]: the same token is configured twice (principal {:?}); each token names one principal",
                    token.principal
                );
            }
            by_digest.push((digest, principal));
        }
        Ok(Self { by_digest })
    }

    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    /// The principal of `token`, if it is one of the configured tokens.
    pub fn principal(&self, token: &str) -> Option<&Principal> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.by_digest.iter().find(|(d, _)| *d == digest).map(|(_, p)| p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TokenConfig;

    fn digest(token: &str) -> String {
        hex::encode(Sha256::digest(token.as_bytes()))
    }

    fn tokens(entries: &[(&str, String)]) -> anyhow::Result<Tokens> {
        let tokens = entries
            .iter()
            .map(|(p, s)| TokenConfig { principal: p.to_string(), sha256: s.clone() })
            .collect();
        Tokens::from_config(&AuthConfig { tokens, ..AuthConfig::default() })
    }

    #[test]
    fn tokens_are_matched_by_digest() {
        let tokens =
            tokens(&[("alice", digest("s3cret")), ("alice", digest("other")), ("bob", digest("b"))]).unwrap();
        assert_eq!(tokens.principal("s3cret").map(Principal::as_str), Some("alice"));
        assert_eq!(tokens.principal("other").map(Principal::as_str), Some("alice"));
        assert_eq!(tokens.principal("b").map(Principal::as_str), Some("bob"));
        assert_eq!(tokens.principal("s3cre"), None);
        assert_eq!(tokens.principal(&digest("s3cret")), None, "the digest is not the token");
    }

    #[test]
    fn bad_token_configuration_is_refused() {
        let err = tokens(&[("alice", "abc".into())]).unwrap_err().to_string();
        assert!(err.contains("64 hex digits") && err.contains("alice"), "{err}");
        let err = tokens(&[("", digest("x"))]).unwrap_err().to_string();
        assert!(err.contains("names its principal"), "{err}");
        let err = tokens(&[("alice", digest("a")), ("bob", digest("a"))]).unwrap_err().to_string();
        assert!(err.contains("configured twice"), "{err}");
    }
}
