//! MCP over Streamable HTTP (`warden serve --http <addr:port>`): the MCP
//! endpoint at `/mcp` (rmcp's Streamable HTTP service: the stateless
//! 2026-07-28 protocol and the earlier session-based one, SSE for progress),
//! `/healthz` and `/readyz`, behind bearer-token authentication.
//!
//! - Loopback by default; a non-loopback address without `[[auth.tokens]]`
//!   is refused at start-up.
//! - `Host` is checked against loopback names, the bound address and
//!   `[http] allowed-hosts` (DNS rebinding); a browser `Origin` must be in
//!   `[http] allowed-origins` (none by default).
//! - Tokens are configured as SHA-256 digests, each naming a principal; a
//!   request to `/mcp` without a valid `Authorization: Bearer` gets 401 with
//!   a `WWW-Authenticate` challenge. The principal goes with the request
//!   to every call, which sees only that principal's sessions.
//! - With `[http.tls]` (a PEM certificate chain and key) it speaks HTTPS
//!   (rustls); otherwise plain HTTP, for loopback or behind a proxy.
//! - SIGTERM or SIGINT stops accepting connections, lets running calls and
//!   tasks go on for `[http] shutdown-grace-secs` (default 30), then cancels
//!   them as a client cancel would.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::header;
use axum_server::Handle;
use axum_server::accept::NoDelayAcceptor;
use axum_server::tls_rustls::RustlsConfig;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use super::server::{WardenServer, spawn_expiry_sweeper};
use crate::auth::Authenticator;
use crate::config::HttpConfig;
use crate::sessions::Sessions;
use gate::{Gate, METADATA_PATH, authenticate, resource_metadata};

mod gate;

const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
const LOOPBACK_HOSTS: &[&str] = &["localhost", "127.0.0.1", "[::1]", "::1"];

/// Refuse to serve a non-loopback address without authentication.
pub fn check_bind(addr: SocketAddr, auth: &Authenticator) -> anyhow::Result<()> {
    if !addr.ip().is_loopback() && auth.is_open() {
        anyhow::bail!(
            "refusing to serve MCP on {addr} without authentication: anyone who can reach it could run \
             agents as this user. Add [[auth.tokens]] entries (`principal` and the `sha256` of each token) \
             or an [auth.jwt] section to the configuration, or bind a loopback address (127.0.0.1:<port>)"
        );
    }
    Ok(())
}

/// The `Host` values accepted on `addr`.
fn allowed_hosts(addr: SocketAddr, http: &HttpConfig) -> Vec<String> {
    let mut hosts: Vec<String> = LOOPBACK_HOSTS.iter().map(|h| h.to_string()).collect();
    hosts.push(addr.ip().to_string());
    hosts.push(addr.to_string());
    hosts.extend(http.allowed_hosts.iter().cloned());
    hosts
}

/// Serve MCP on `addr` until SIGTERM or SIGINT.
pub async fn serve_http(
    sessions: Arc<Sessions>,
    addr: SocketAddr,
    http: &HttpConfig,
    auth: Authenticator,
) -> anyhow::Result<()> {
    check_bind(addr, &auth)?;
    let stop = CancellationToken::new();
    let config = StreamableHttpServerConfig::default()
        .with_cancellation_token(stop.child_token())
        .with_allowed_hosts(allowed_hosts(addr, http))
        .with_allowed_origins(http.allowed_origins.clone())
        .enforce_origin_validation();
    let server = WardenServer::new(sessions.clone());
    let tasks = server.tasks().clone();
    let mcp = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let listener =
        std::net::TcpListener::bind(addr).map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let tls = match &http.tls {
        Some(tls) => Some(RustlsConfig::from_pem_file(&tls.cert, &tls.key).await.map_err(|e| {
            anyhow::anyhow!(
                "[http.tls]: cannot use the certificate {} and key {}: {e}; give PEM files (the full chain, \
                 then an unencrypted PKCS#8, PKCS#1 or SEC1 key)",
                tls.cert.display(),
                tls.key.display()
            )
        })?),
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let base = http.public_url.clone().unwrap_or_else(|| format!("{scheme}://{bound}"));
    let metadata = resource_metadata(&auth, &base);
    let authenticated = !auth.is_open();
    let gate = Arc::new(Gate { auth, metadata: metadata.clone() });
    let mut router = axum::Router::new()
        .nest_service("/mcp", mcp)
        .layer(axum::middleware::from_fn_with_state(gate, authenticate))
        .route("/healthz", axum::routing::get(|| async { "ok\n" }))
        .route("/readyz", axum::routing::get(|| async { "ready\n" }));
    if let Some((_, document)) = metadata {
        let serve = move || {
            let document = document.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], document.to_string()) }
        };
        router = router
            .route(METADATA_PATH, axum::routing::get(serve.clone()))
            .route(&format!("{METADATA_PATH}/mcp"), axum::routing::get(serve));
    }
    tracing::info!(address = %bound, authenticated, tls = tls.is_some(),
        "serving MCP over Streamable HTTP at {scheme}://{bound}/mcp");
    let sweeper = spawn_expiry_sweeper(sessions, tasks.clone());
    let grace = http.shutdown_grace_secs.map_or(DEFAULT_SHUTDOWN_GRACE, Duration::from_secs);
    let draining = CancellationToken::new();
    let handle: Handle<SocketAddr> = Handle::new();
    let app = router.into_make_service();
    // TCP_NODELAY: a response is written in pieces (headers, then each event),
    // and Nagle's algorithm would hold each piece for the client's delayed ACK.
    let serving: std::pin::Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>> = match tls {
        Some(config) => Box::pin(
            axum_server::from_tcp_rustls(listener, config)?
                .map(|tls| tls.acceptor(NoDelayAcceptor::new()))
                .handle(handle.clone())
                .serve(app),
        ),
        None => Box::pin(
            axum_server::from_tcp(listener)?
                .acceptor(NoDelayAcceptor::new())
                .handle(handle.clone())
                .serve(app),
        ),
    };
    tokio::spawn({
        let (draining, handle) = (draining.clone(), handle.clone());
        async move {
            shutdown_signal().await;
            tracing::info!(
                grace_secs = grace.as_secs(),
                "stopping: no new connections; running calls may finish"
            );
            draining.cancel();
            handle.graceful_shutdown(None);
        }
    });
    let mut serving = serving;
    let grace_over = async {
        draining.cancelled().await;
        tokio::time::sleep(grace).await
    };
    let mut grace_over = std::pin::pin!(grace_over);
    let connections_closed = tokio::select! {
        result = &mut serving => { result?; true }
        () = &mut grace_over => false,
    };
    // Tasks outlive their connections: they may run on until the grace period ends.
    let tasks_done = connections_closed
        && tokio::select! {
            () = tasks.wait_idle() => true,
            () = &mut grace_over => false,
        };
    if !tasks_done {
        tracing::warn!("the shutdown grace period ended; cancelling the calls and tasks still running");
        stop.cancel();
        tasks.cancel_all();
        if !connections_closed {
            handle.shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), serving).await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), tasks.wait_idle()).await;
    }
    stop.cancel();
    sweeper.abort();
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("a SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AuthConfig, TokenConfig};
    use sha2::{Digest, Sha256};

    #[test]
    fn only_loopback_may_go_without_authentication() {
        let none = Authenticator::from_config(&AuthConfig::default()).unwrap();
        check_bind("127.0.0.1:8080".parse().unwrap(), &none).unwrap();
        check_bind("[::1]:8080".parse().unwrap(), &none).unwrap();
        let err = check_bind("0.0.0.0:8080".parse().unwrap(), &none).unwrap_err().to_string();
        assert!(err.contains("[[auth.tokens]]") && err.contains("127.0.0.1"), "{err}");
        let digest = hex::encode(Sha256::digest(b"s3cret"));
        let tokens = vec![TokenConfig { principal: "alice".into(), sha256: digest }];
        let some = Authenticator::from_config(&AuthConfig { tokens, ..AuthConfig::default() }).unwrap();
        check_bind("0.0.0.0:8080".parse().unwrap(), &some).unwrap();
    }
}
