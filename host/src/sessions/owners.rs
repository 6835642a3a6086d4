//! Sessions belong to the principal that created them, and keys are per
//! principal: alice's `review` and bob's `review` are two sessions. The
//! owner is part of the id a session is stored under:
//!
//! - the local principal's sessions under the client's key as it is (so a
//!   store from before Warden kept owners is the local principal's);
//! - another principal's under `@<principal, percent-encoded>/<key>`.
//!
//! The local principal's keys therefore may not start with `@`.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use super::TurnError;
use crate::auth::{Principal, Principals};

/// Characters of a principal's name kept as they are in a storage id.
const ENCODED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'.').remove(b'_').remove(b'-');

/// Maps (principal, key) to storage ids and back.
#[derive(Clone, Debug)]
pub struct Owners {
    principals: Principals,
}

impl Owners {
    pub fn new(principals: Principals) -> Self {
        Self { principals }
    }

    pub fn local(&self) -> &Principal {
        &self.principals.local
    }

    /// What the operator lets `principal` ask of any agent, if it said.
    pub fn bounds(&self, principal: &Principal) -> Option<&warden_permissions::PrincipalBounds> {
        self.principals.bounds.get(principal)
    }

    /// May `principal` rebuild a session from an agent's transcript directory?
    pub fn owns_transcripts(&self, principal: &Principal) -> bool {
        *principal == self.principals.transcript_owner
    }

    /// The storage id of `owner`'s session `key`.
    pub fn storage_id(&self, owner: &Principal, key: &str) -> Result<String, TurnError> {
        match self.prefix(owner) {
            Some(prefix) => Ok(format!("{prefix}{key}")),
            None if key.starts_with('@') => Err(TurnError::Invalid(format!(
                "session keys starting with `@` are reserved (they name other principals' sessions in the store); \
                 choose a key such as {:?}",
                key.trim_start_matches('@')
            ))),
            None => Ok(key.to_string()),
        }
    }

    /// What every storage id of `owner` starts with; none for the local principal.
    pub fn prefix(&self, owner: &Principal) -> Option<String> {
        (*owner != self.principals.local)
            .then(|| format!("@{}/", utf8_percent_encode(owner.as_str(), ENCODED)))
    }

    /// The owner and key of a stored session; `None` for an id no principal could have made.
    pub fn split<'a>(&self, storage_id: &'a str) -> Option<(Principal, &'a str)> {
        let Some(rest) = storage_id.strip_prefix('@') else {
            return Some((self.principals.local.clone(), storage_id));
        };
        let (encoded, key) = rest.split_once('/')?;
        let name = percent_decode_str(encoded).decode_utf8().ok()?;
        let owner = Principal::new(&name).ok()?;
        // Only the canonical spelling: no second id for the same (owner, key).
        (self.prefix(&owner)?.len() == encoded.len() + 2).then_some((owner, key))
    }

    /// `principal`'s key for `storage_id`, if the session is theirs.
    pub fn key_for<'a>(&self, principal: &Principal, storage_id: &'a str) -> Option<&'a str> {
        self.split(storage_id).filter(|(owner, _)| owner == principal).map(|(_, key)| key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owners() -> Owners {
        Owners::new(Principals::local_only("me"))
    }

    fn p(name: &str) -> Principal {
        Principal::new(name).unwrap()
    }

    #[test]
    fn the_local_principal_keeps_plain_keys_others_are_prefixed() {
        let o = owners();
        assert_eq!(o.storage_id(&p("me"), "review").unwrap(), "review");
        assert_eq!(o.storage_id(&p("alice"), "review").unwrap(), "@alice/review");
        assert_eq!(o.storage_id(&p("auth0|a b"), "k/@x").unwrap(), "@auth0%7Ca%20b/k/@x");
        assert_ne!(o.storage_id(&p("alice"), "x").unwrap(), o.storage_id(&p("bob"), "x").unwrap());
        let err = o.storage_id(&p("me"), "@alice/review").unwrap_err().to_string();
        assert!(err.contains("reserved") && err.contains("\"alice/review\""), "{err}");
    }

    #[test]
    fn storage_ids_split_back_into_owner_and_key() {
        let o = owners();
        for (owner, key) in [("me", "plain"), ("alice", "review"), ("auth0|a b", "k/@x"), ("é/ü", "@")] {
            let id = o.storage_id(&p(owner), key).unwrap();
            assert_eq!(o.split(&id), Some((p(owner), key)), "{id}");
            assert_eq!(o.key_for(&p(owner), &id), Some(key));
            assert_eq!(o.key_for(&p("mallory"), &id), None);
        }
        // Not canonical, or no principal's: nobody's session.
        assert_eq!(o.split("@al%69ce/review"), None);
        assert_eq!(o.split("@me/review"), None, "the local principal's keys carry no prefix");
        assert_eq!(o.split("@noslash"), None);
        assert_eq!(o.split("@%0A/x"), None);
    }

    #[test]
    fn only_the_configured_principal_owns_the_transcripts() {
        let o = owners();
        assert!(o.owns_transcripts(&p("me")));
        assert!(!o.owns_transcripts(&p("alice")));
    }
}
