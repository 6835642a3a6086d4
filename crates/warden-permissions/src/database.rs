//! The operator's grant of one database to a storage plugin
//! (`[plugins.storage-backend.database]`), as plain data: where it is, how
//! Warden logs in (the plugin never sees it), the schema the plugin works in,
//! and the bounds of every statement. The host turns it into connection
//! pools; the plugin only gets the `sql` interface.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub const DEFAULT_SCHEMA: &str = "warden";
pub const DEFAULT_STATEMENT_TIMEOUT_MS: u64 = 5_000;
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 5_000;
pub const DEFAULT_POOL_SIZE: u32 = 8;
pub const DEFAULT_LOCK_POOL_SIZE: u32 = 32;
pub const DEFAULT_PLUGIN_LOCK_POOL_SIZE: u32 = 8;
pub const DEFAULT_MAX_ROWS: u32 = 10_000;
pub const DEFAULT_MAX_RESULT_MIB: u32 = 64;
/// A pool larger than this is a typo, not a plan.
const MAX_POOL_SIZE: u32 = 1_000;

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DatabaseGrant {
    /// A libpq connection string or URL, without a password, e.g.
    /// `postgresql://warden@/warden?host=/run/postgresql` (unix socket) or
    /// `postgresql://warden@db.example.com/warden?sslmode=require`. Shown
    /// (and serialized) only when it carries no password.
    #[serde(serialize_with = "serialize_shown_url")]
    pub url: String,
    /// A file holding the password (its first line), readable by Warden's user only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// An environment variable of Warden's holding the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// A second login role for the connections holding advisory locks (the
    /// host's turn and task locks, the plugin's `lock`), so that the plugin,
    /// which runs SQL as the main role, cannot end them
    /// (`pg_terminate_backend` works on one's own role's connections). It
    /// needs only `CONNECT` on the database. Default: the main role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locks_user: Option<String>,
    /// The password of `locks-user`, from a file (mode 0600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locks_password_file: Option<PathBuf>,
    /// The password of `locks-user`, from an environment variable of Warden's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locks_password_env: Option<String>,
    /// PEM certificates of the authorities a TLS server certificate must
    /// chain to (default: the public web roots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// The schema the plugin works in (`search_path`); the login role should own only it.
    #[serde(default = "default_schema")]
    pub schema: String,
    /// The server stops any statement running longer (`statement_timeout`).
    #[serde(default = "default_statement_timeout_ms")]
    pub statement_timeout_ms: u64,
    /// How long opening a connection may take.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Connections for transactions, at most.
    #[serde(default = "default_pool_size")]
    pub pool_size: u32,
    /// Connections holding the host's advisory locks (one per running turn or task), at most.
    #[serde(default = "default_lock_pool_size")]
    pub lock_pool_size: u32,
    /// Connections holding the plugin's own advisory locks (`sql.lock`), at most: a pool apart,
    /// so a plugin holding many cannot leave the host's turns without one.
    #[serde(default = "default_plugin_lock_pool_size")]
    pub plugin_lock_pool_size: u32,
    /// Rows one query may return.
    #[serde(default = "default_max_rows")]
    pub max_rows: u32,
    /// Bytes one query may return, in MiB.
    #[serde(default = "default_max_result_mib")]
    pub max_result_mib: u32,
}

fn default_schema() -> String {
    DEFAULT_SCHEMA.to_string()
}
fn default_statement_timeout_ms() -> u64 {
    DEFAULT_STATEMENT_TIMEOUT_MS
}
fn default_connect_timeout_ms() -> u64 {
    DEFAULT_CONNECT_TIMEOUT_MS
}
fn default_pool_size() -> u32 {
    DEFAULT_POOL_SIZE
}
fn default_lock_pool_size() -> u32 {
    DEFAULT_LOCK_POOL_SIZE
}
fn default_plugin_lock_pool_size() -> u32 {
    DEFAULT_PLUGIN_LOCK_POOL_SIZE
}
fn default_max_rows() -> u32 {
    DEFAULT_MAX_ROWS
}
fn default_max_result_mib() -> u32 {
    DEFAULT_MAX_RESULT_MIB
}

impl DatabaseGrant {
    /// Check what can be checked without connecting; the error names the setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.url.trim().is_empty() {
            return Err(
                "`url` is empty: give a libpq URL such as postgresql://warden@/warden?host=/run/postgresql"
                    .into(),
            );
        }
        if carries_password(&self.url) {
            return Err(
                "`url` carries a password: remove it and give it in `password-file` (mode 0600) or `password-env`".into(),
            );
        }
        if !is_identifier(&self.schema) {
            return Err(format!(
                "`schema` {:?} is not a plain identifier: use 1 to 63 lower-case letters, digits and `_`, not starting with a digit",
                self.schema
            ));
        }
        if self.schema == "public" || self.schema.starts_with("pg_") || self.schema == "information_schema" {
            return Err(format!(
                "`schema` {:?} is shared with everything else in the database: give the plugin a schema of its own",
                self.schema
            ));
        }
        if self.password_file.is_some() && self.password_env.is_some() {
            return Err("both `password-file` and `password-env` are set: keep one".into());
        }
        if self.locks_password_file.is_some() && self.locks_password_env.is_some() {
            return Err("both `locks-password-file` and `locks-password-env` are set: keep one".into());
        }
        if self.locks_user.is_none()
            && (self.locks_password_file.is_some() || self.locks_password_env.is_some())
        {
            return Err("a locks password is set without `locks-user`: name the role it belongs to".into());
        }
        for (name, value) in [
            ("pool-size", self.pool_size),
            ("lock-pool-size", self.lock_pool_size),
            ("plugin-lock-pool-size", self.plugin_lock_pool_size),
        ] {
            if value == 0 || value > MAX_POOL_SIZE {
                return Err(format!("`{name}` = {value}: give 1 to {MAX_POOL_SIZE} connections"));
            }
        }
        if self.statement_timeout_ms == 0 {
            return Err("`statement-timeout-ms` = 0 would let a statement run forever: give a limit".into());
        }
        if self.statement_timeout_ms > i32::MAX as u64 {
            return Err(format!("`statement-timeout-ms` is over PostgreSQL's limit of {} ms", i32::MAX));
        }
        if self.connect_timeout_ms == 0 {
            return Err(
                "`connect-timeout-ms` = 0 would wait forever for a server that does not answer".into()
            );
        }
        if self.max_rows == 0 || self.max_result_mib == 0 {
            return Err("`max-rows` and `max-result-mib` must be at least 1".into());
        }
        Ok(())
    }

    /// The URL as it may be shown: never with a password in it.
    pub fn shown_url(&self) -> String {
        shown_url(&self.url)
    }

    pub fn max_result_bytes(&self) -> usize {
        (self.max_result_mib as usize) << 20
    }
}

/// Whether a libpq URL or key=value string may hold a password: a
/// `password` parameter (`password=`, spaces allowed before `=`) anywhere, or
/// a `:` in a URL's user part (up to the last `@` of its authority). Errs on
/// the side of "yes".
pub fn carries_password(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    if lower
        .match_indices("password")
        .any(|(at, word)| lower[at + word.len()..].trim_start().starts_with('='))
    {
        return true;
    }
    let Some((_, rest)) = url.split_once("://") else { return false };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    authority.rsplit_once('@').is_some_and(|(user, _)| user.contains(':'))
}

fn shown_url(url: &str) -> String {
    if carries_password(url) { "(not shown: it carries a password)".to_string() } else { url.to_string() }
}

fn serialize_shown_url<S: serde::Serializer>(url: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&shown_url(url))
}

/// An SQL identifier that needs no quoting and no case folding.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && name.len() <= 63
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(extra: &str) -> Result<DatabaseGrant, String> {
        let text = format!("url = \"postgresql://warden@/warden?host=/run/postgresql\"\n{extra}");
        let grant: DatabaseGrant = toml::from_str(&text).map_err(|e| e.to_string())?;
        grant.validate().map(|()| grant)
    }

    #[test]
    fn a_password_in_the_url_is_never_shown() {
        for url in [
            "postgresql://r:s3cret@/d?host=/run",
            "postgresql://r:s3cret@b@/d",
            "postgresql://r@/d?host=/run&password=s3cret",
            "user=r password=s3cret host=/run dbname=d",
        ] {
            assert!(carries_password(url), "{url}");
            assert!(!shown_url(url).contains("s3cret"), "{url}");
        }
        assert!(carries_password("user=r password = s3cret dbname=d"));
        for url in [
            "postgresql://r@/d?host=/run",
            "postgresql:///d?host=/a:b",
            "user=r host=/run dbname=d",
            "postgresql://r@/password_change_1?host=/run",
        ] {
            assert!(!carries_password(url), "{url}");
            assert_eq!(shown_url(url), url);
        }
        let g = DatabaseGrant { url: "postgresql://r:s3cret@/d".into(), ..grant("").unwrap() };
        assert!(!toml::to_string(&g).unwrap().contains("s3cret"));
        assert!(g.validate().unwrap_err().contains("password-file"));
    }

    #[test]
    fn defaults_hold_and_bad_settings_are_named() {
        let g = grant("").unwrap();
        assert_eq!((g.schema.as_str(), g.pool_size, g.statement_timeout_ms), ("warden", 8, 5_000));
        for (extra, named) in [
            ("schema = \"Warden\"", "schema"),
            ("schema = \"a;drop\"", "schema"),
            ("schema = \"public\"", "schema"),
            ("pool-size = 0", "pool-size"),
            ("statement-timeout-ms = 0", "statement-timeout-ms"),
            ("password-file = \"/p\"\npassword-env = \"P\"", "password-env"),
            ("passwd = \"x\"", "passwd"),
        ] {
            let err = grant(extra).unwrap_err();
            assert!(err.contains(named), "{extra}: {err}");
        }
    }
}
