//! Who is calling: the principal of every MCP call, and how a caller proves
//! it over HTTP (bearer tokens from the configuration, see [`tokens`];
//! JWT access tokens checked against a key set, see [`jwt`]).
//! Over stdio the caller is the local principal, the user who started
//! Warden. Sessions belong to principals (see `sessions::owners`).

pub mod jwks;
pub mod jwt;
pub mod tokens;

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use warden_permissions::PrincipalBounds;

use crate::config::AuthConfig;
use crate::config_paths::validate_root;
use jwt::{JwtVerifier, Rejection};
use tokens::Tokens;

/// Longest principal name accepted.
const MAX_PRINCIPAL_BYTES: usize = 256;

/// Who a call acts for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Principal(String);

impl Principal {
    /// A principal named `name`: not empty, at most 256 bytes, no control characters.
    pub fn new(name: &str) -> Result<Self, String> {
        if name.trim().is_empty() {
            return Err("a principal's name may not be empty".into());
        }
        if name.len() > MAX_PRINCIPAL_BYTES {
            return Err(format!(
                "the principal name {:?}… is {} bytes long; the limit is {MAX_PRINCIPAL_BYTES}",
                name.chars().take(32).collect::<String>(),
                name.len()
            ));
        }
        if let Some(c) = name.chars().find(|c| c.is_control()) {
            return Err(format!("the principal name {name:?} contains the control character {c:?}"));
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The principals the operator names: who the stdio caller is, who may
/// rebuild sessions from the agents' own transcript directories, and what
/// each may ask of an agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principals {
    /// The caller over stdio, and the owner of sessions stored before Warden
    /// kept owners (`[auth] local-principal`, default: the user running Warden).
    pub local: Principal,
    /// The one principal who may rehydrate a thread from an agent's transcript
    /// directory, which records no owner (`[auth] transcript-owner`, default: `local`).
    pub transcript_owner: Principal,
    /// `[principals.<name>]`: bounds on what that principal asks, its `cwd-roots` canonical.
    pub bounds: HashMap<Principal, PrincipalBounds>,
}

impl Principals {
    pub fn from_config(
        auth: &AuthConfig,
        bounds: &BTreeMap<String, PrincipalBounds>,
    ) -> anyhow::Result<Self> {
        let named = |setting: &str, name: &str| {
            Principal::new(name).map_err(|e| anyhow::anyhow!("[auth] {setting}: {e}"))
        };
        let local = match &auth.local_principal {
            Some(name) => named("local-principal", name)?,
            None => named("local-principal", &user_name())?,
        };
        let transcript_owner = match &auth.transcript_owner {
            Some(name) => named("transcript-owner", name)?,
            None => local.clone(),
        };
        let bounds = bounds
            .iter()
            .map(|(name, bounds)| {
                let section = format!("[principals.{name:?}]");
                let principal = Principal::new(name).map_err(|e| anyhow::anyhow!("{section}: {e}"))?;
                bounds.validate().map_err(|e| anyhow::anyhow!("{section}: {e}"))?;
                let mut bounds = bounds.clone();
                if let Some(roots) = &mut bounds.cwd_roots {
                    for root in roots.iter_mut() {
                        let expanded = validate_root(&format!("{section} cwd-roots"), root)?;
                        *root = expanded.canonicalize().map_err(|e| {
                            anyhow::anyhow!("{section} cwd-roots: {} cannot be used: {e}", expanded.display())
                        })?;
                    }
                }
                Ok((principal, bounds))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self { local, transcript_owner, bounds })
    }

    /// Only the local principal, who also owns the transcripts.
    pub fn local_only(name: &str) -> Self {
        let local = Principal::new(name).expect("a valid principal name");
        Self { transcript_owner: local.clone(), local, bounds: HashMap::new() }
    }
}

/// How an HTTP caller proves who it is: a configured token, or a JWT access token.
pub struct Authenticator {
    tokens: Tokens,
    jwt: Option<JwtVerifier>,
}

impl Authenticator {
    pub fn from_config(auth: &AuthConfig) -> anyhow::Result<Self> {
        let jwt = auth.jwt.as_ref().map(JwtVerifier::from_config).transpose()?;
        Ok(Self { tokens: Tokens::from_config(auth)?, jwt })
    }

    /// No way to authenticate is configured: every caller is the local principal.
    pub fn is_open(&self) -> bool {
        self.tokens.is_empty() && self.jwt.is_none()
    }

    pub fn jwt(&self) -> Option<&JwtVerifier> {
        self.jwt.as_ref()
    }

    /// The principal of a configured token, if `bearer` is one (a digest
    /// comparison: nothing waits).
    pub fn token_principal(&self, bearer: &str) -> Option<Principal> {
        self.tokens.principal(bearer).cloned()
    }

    /// The principal a JWT proves. A token naming a key the set lacks may
    /// re-read the key set, over the network: call it where blocking is allowed.
    pub fn jwt_principal(&self, bearer: &str) -> Result<Principal, Rejection> {
        match &self.jwt {
            Some(jwt) => jwt.verify(bearer),
            None => Err(Rejection::Invalid("the bearer token is not one Warden knows".into())),
        }
    }
}

/// The name of the user running Warden, from the password database (the
/// environment may not say under a service manager); `local` if it has none.
fn user_name() -> String {
    let uid = rustix::process::getuid().as_raw();
    let mut buf = vec![0u8; 4096];
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is to a live local of the advertised size; the
    // result points into `buf`, read before `buf` is dropped.
    let status = unsafe { libc::getpwuid_r(uid, &mut entry, buf.as_mut_ptr().cast(), buf.len(), &mut found) };
    if status != 0 || found.is_null() || entry.pw_name.is_null() {
        return "local".into();
    }
    // SAFETY: getpwuid_r succeeded, so pw_name is a NUL-terminated string inside `buf`.
    let name = unsafe { std::ffi::CStr::from_ptr(entry.pw_name) };
    match name.to_str() {
        Ok(name) if Principal::new(name).is_ok() => name.to_string(),
        _ => "local".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principal_names_are_checked() {
        assert_eq!(Principal::new("auth0|alice@example.com").unwrap().as_str(), "auth0|alice@example.com");
        assert!(Principal::new(" ").unwrap_err().contains("empty"));
        assert!(Principal::new("a\nb").unwrap_err().contains("control character"));
        assert!(Principal::new(&"x".repeat(300)).unwrap_err().contains("limit is 256"));
    }

    #[test]
    fn the_local_principal_is_the_user_unless_configured() {
        let defaults = Principals::from_config(&AuthConfig::default(), &BTreeMap::new()).unwrap();
        assert_eq!(defaults.local.as_str(), user_name());
        assert_eq!(defaults.transcript_owner, defaults.local);
        let auth = AuthConfig {
            local_principal: Some("ops".into()),
            transcript_owner: Some("alice".into()),
            ..AuthConfig::default()
        };
        let set = Principals::from_config(&auth, &BTreeMap::new()).unwrap();
        assert_eq!((set.local.as_str(), set.transcript_owner.as_str()), ("ops", "alice"));
        let auth = AuthConfig { local_principal: Some(String::new()), ..AuthConfig::default() };
        let err = Principals::from_config(&auth, &BTreeMap::new()).unwrap_err().to_string();
        assert!(err.contains("[auth] local-principal"), "{err}");
    }
}
