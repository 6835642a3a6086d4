//! One granted database: the operator's [`DatabaseGrant`] turned into two
//! connection pools (transactions; advisory locks, one connection per held
//! lock) driven by a small runtime of their own, and the one place where
//! the host waits on the server: never past the call's deadline nor after
//! its cancellation, but for the at most 2 s it then gives the server to
//! cancel the statement.

use std::future::Future;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;
use warden_permissions::DatabaseGrant;

use crate::control::{Interruption, Waiter};

/// Bounds on one query's result.
#[derive(Clone, Copy, Debug)]
pub struct ResultCaps {
    pub rows: usize,
    pub bytes: usize,
}

pub struct Database {
    /// Where the plugin works (its `search_path`); also scopes the host's lock keys.
    pub schema: String,
    pub caps: ResultCaps,
    pub statement_timeout: Duration,
    transactions: Pool,
    locks: Pool,
    plugin_locks: Pool,
    tls: MakeRustlsConnect,
    /// The database as logs name it (no credentials).
    pub target: String,
    /// The role holding advisory locks.
    pub locks_user: String,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").field("target", &self.target).field("schema", &self.schema).finish()
    }
}

/// How long a call waits for a free connection of a full pool.
const POOL_WAIT: Duration = Duration::from_secs(2);

/// The runtime that drives every database connection (one worker: the
/// connections only move bytes; plugin calls block on it from their own threads).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("warden-sql")
            .enable_all()
            .build()
            .expect("the database runtime starts")
    })
}

impl Database {
    /// Pools for `grant` (no connection is opened yet); the error names the setting at fault.
    pub fn open(grant: &DatabaseGrant, section: &str) -> anyhow::Result<Arc<Self>> {
        grant.validate().map_err(|e| anyhow::anyhow!("[{section}]: {e}"))?;
        let mut config: tokio_postgres::Config = grant.url.parse().map_err(|e: tokio_postgres::Error| {
            anyhow::anyhow!(
                "[{section}] url is not a libpq connection string or URL: {}",
                super::errors::error_chain(&e)
            )
        })?;
        if config.get_password().is_some() {
            anyhow::bail!(
                "[{section}] url carries a password: remove it and give it in `password-file` (mode 0600) or `password-env`"
            );
        }
        let main = PasswordSource {
            file: grant.password_file.as_deref(),
            env: grant.password_env.as_deref(),
            setting: "password",
        };
        if let Some(password) = password(main, section)? {
            config.password(password);
        }
        let timeout = grant.statement_timeout_ms;
        // Every connection starts in the plugin's schema and with the statement
        // timeout; the pool's cleaning (RESET ALL) brings both back before reuse.
        config.options(format!(
            "-c search_path={schema} -c statement_timeout={timeout} -c idle_in_transaction_session_timeout={idle} -c lock_timeout={timeout}",
            schema = grant.schema,
            idle = timeout.max(60_000),
        ));
        config.application_name("warden");
        config.connect_timeout(Duration::from_millis(grant.connect_timeout_ms));
        // A peer that vanishes (a partition) is noticed in a minute, not after TCP's two hours.
        config.keepalives_idle(Duration::from_secs(30));
        let over_tcp = config.get_hosts().iter().any(|h| matches!(h, tokio_postgres::config::Host::Tcp(_)));
        if over_tcp && !grant.url.to_ascii_lowercase().contains("sslmode") {
            // `prefer` (libpq's default) lets an attacker on the path answer "no TLS":
            // over TCP, Warden requires TLS unless the operator says otherwise.
            config.ssl_mode(SslMode::Require);
        }
        let target = describe_target(&config);
        let tls = tls(grant, &config, section)?;
        let mut locks_config = config.clone();
        // Only the host runs statements on lock connections; nothing of the plugin's schema may
        // resolve a name there (it could define its own pg_try_advisory_lock).
        locks_config.options(format!("-c search_path=pg_catalog -c statement_timeout={timeout}"));
        match &grant.locks_user {
            Some(user) => {
                locks_config.user(user);
                let locks = PasswordSource {
                    file: grant.locks_password_file.as_deref(),
                    env: grant.locks_password_env.as_deref(),
                    setting: "locks-password",
                };
                let password = password(locks, section)?;
                match password {
                    Some(password) => locks_config.password(password),
                    None => locks_config.password(Vec::new()),
                };
            }
            None => tracing::warn!(database = %target,
                "advisory locks (one turn per session across hosts) are held as the plugin's own role, which can \
                 end them: set locks-user under [{section}] (docs/postgres-setup.md)"),
        }
        let pool = |config: &tokio_postgres::Config, size: u32, recycling| {
            let manager = Manager::from_config(
                config.clone(),
                tls.clone(),
                ManagerConfig { recycling_method: recycling },
            );
            Pool::builder(manager)
                .max_size(size as usize)
                // A full pool answers `busy` naming its size rather than waiting out the call.
                .wait_timeout(Some(POOL_WAIT))
                .create_timeout(Some(Duration::from_millis(grant.connect_timeout_ms)))
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .build()
                .map_err(|e| anyhow::anyhow!("[{section}]: cannot make the connection pool: {e}"))
        };
        Ok(Arc::new(Self {
            schema: grant.schema.clone(),
            caps: ResultCaps { rows: grant.max_rows as usize, bytes: grant.max_result_bytes() },
            statement_timeout: Duration::from_millis(timeout),
            // Cleaned when its transaction ends (sql::CLEAN); the pool only checks it is open.
            transactions: pool(&config, grant.pool_size, RecyclingMethod::Fast)?,
            // Only the host runs statements on these.
            locks: pool(&locks_config, grant.lock_pool_size, RecyclingMethod::Fast)?,
            plugin_locks: pool(&locks_config, grant.plugin_lock_pool_size, RecyclingMethod::Fast)?,
            locks_user: locks_config.get_user().unwrap_or("?").to_string(),
            tls,
            target,
        }))
    }

    /// A connection for a transaction.
    pub fn transaction_connection(&self, waiter: &Waiter) -> Result<Result<Object, PoolError>, Interruption> {
        self.block(waiter, self.transactions.get())
    }

    /// A connection to hold one of the host's advisory locks on (`for_plugin`: one of the plugin's).
    pub fn lock_connection(
        &self,
        waiter: &Waiter,
        for_plugin: bool,
    ) -> Result<Result<Object, PoolError>, Interruption> {
        let pool = if for_plugin { &self.plugin_locks } else { &self.locks };
        self.block(waiter, pool.get())
    }

    /// The sizes of the pools: transactions, the host's locks, the plugin's locks.
    pub fn pool_sizes(&self) -> [usize; 3] {
        [&self.transactions, &self.locks, &self.plugin_locks].map(|pool| pool.status().max_size)
    }

    /// Run `work` on the database runtime and wait for it, at most until
    /// `waiter`'s deadline or cancellation; `cancel_with` then has the server
    /// stop what that connection runs.
    pub fn block<T>(&self, waiter: &Waiter, work: impl Future<Output = T>) -> Result<T, Interruption> {
        self.block_cancelling(waiter, work, None)
    }

    pub fn block_cancelling<T>(
        &self,
        waiter: &Waiter,
        work: impl Future<Output = T>,
        cancel_with: Option<tokio_postgres::CancelToken>,
    ) -> Result<T, Interruption> {
        if let Some(interruption) = waiter.interrupted() {
            return Err(interruption);
        }
        let remaining = waiter.remaining();
        let cancelled = waiter.cancel_flag().waker().ok().and_then(|fd| fd.try_clone_to_owned().ok());
        runtime().block_on(async {
            tokio::select! {
                done = work => Ok(done),
                () = interruption(remaining, cancelled) => {
                    if let Some(token) = cancel_with {
                        // Best effort: the connection is dropped with its transaction anyway.
                        let _ = tokio::time::timeout(Duration::from_secs(2), token.cancel_query(self.tls.clone())).await;
                    }
                    Err(waiter.interrupted().unwrap_or(Interruption::Cancelled))
                }
            }
        })
    }

    /// Hand `work` to the database runtime without waiting (a rollback or an
    /// unlock when a resource is dropped).
    pub fn detach(work: impl Future<Output = ()> + Send + 'static) {
        runtime().spawn(work);
    }
}

/// Resolves when the deadline passes or the cancellation fd becomes readable.
async fn interruption(remaining: Option<Duration>, cancelled: Option<OwnedFd>) {
    let deadline = async {
        match remaining {
            Some(left) => tokio::time::sleep(left).await,
            None => std::future::pending().await,
        }
    };
    let cancel = async {
        // SAFETY: the AsyncFd owns the descriptor, so it stays open and the same until it is dropped.
        let registered =
            cancelled.and_then(|fd| unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.ok());
        match registered {
            Some(fd) => {
                let _ = fd.readable().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = deadline => {}
        () = cancel => {}
    }
}

/// Where a password comes from, and the settings that said so (named in errors).
struct PasswordSource<'a> {
    file: Option<&'a Path>,
    env: Option<&'a str>,
    /// `password` or `locks-password`.
    setting: &'a str,
}

fn password(source: PasswordSource<'_>, section: &str) -> anyhow::Result<Option<String>> {
    let setting = source.setting;
    if let Some(name) = source.env {
        return match std::env::var(name) {
            Ok(value) if !value.is_empty() => Ok(Some(value)),
            _ => anyhow::bail!(
                "[{section}] {setting}-env names {name}, which is not set in Warden's environment"
            ),
        };
    }
    let Some(path) = source.file else { return Ok(None) };
    let failed = |e: std::io::Error| anyhow::anyhow!("[{section}] {setting}-file {}: {e}", path.display());
    refuse_shared(path).map_err(|e| match e {
        Some(e) => failed(e),
        None => anyhow::anyhow!(
            "[{section}] {setting}-file {} is readable by other users: `chmod 600` it",
            path.display()
        ),
    })?;
    let text = std::fs::read_to_string(path).map_err(failed)?;
    let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if line.is_empty() {
        anyhow::bail!("[{section}] {setting}-file {} is empty", path.display());
    }
    Ok(Some(line.to_string()))
}

/// A password file others can read is a leaked password: `Err(None)` then,
/// `Err(Some(e))` if it cannot be looked at.
fn refuse_shared(path: &Path) -> Result<(), Option<std::io::Error>> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(Some)?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(None);
    }
    Ok(())
}

/// TLS for TCP connections whose `sslmode` asks for it (`prefer`, the
/// default, and `require`), verified against `ca-file` or the public web roots.
fn tls(
    grant: &DatabaseGrant,
    config: &tokio_postgres::Config,
    section: &str,
) -> anyhow::Result<MakeRustlsConnect> {
    let mut roots = rustls::RootCertStore::empty();
    match &grant.ca_file {
        Some(path) if config.get_ssl_mode() != SslMode::Disable => {
            use rustls::pki_types::CertificateDer;
            use rustls::pki_types::pem::PemObject;
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| anyhow::anyhow!("[{section}] ca-file {}: {e}", path.display()))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                anyhow::bail!("[{section}] ca-file {} holds no usable certificate", path.display());
            }
        }
        _ => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow::anyhow!("[{section}]: TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(client))
}

/// `role@host/dbname`, for logs and errors.
fn describe_target(config: &tokio_postgres::Config) -> String {
    let host = config.get_hosts().first().map_or_else(String::new, |host| match host {
        tokio_postgres::config::Host::Tcp(name) => name.clone(),
        tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
    });
    format!("{}@{}/{}", config.get_user().unwrap_or("?"), host, config.get_dbname().unwrap_or("?"))
}
