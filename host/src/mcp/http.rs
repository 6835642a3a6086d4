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
//!   a `WWW-Authenticate` challenge. Sessions are not yet kept apart by
//!   principal, so the tokens must all name one principal.
//! - SIGTERM or SIGINT stops accepting connections, lets running calls go on
//!   for `[http] shutdown-grace-secs` (default 30), then cancels them as a
//!   client cancel would.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::server::{WardenServer, spawn_expiry_sweeper};
use crate::config::{AuthConfig, HttpConfig};
use crate::sessions::Sessions;

const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
const LOOPBACK_HOSTS: &[&str] = &["localhost", "127.0.0.1", "[::1]", "::1"];

/// Who a valid token says the caller is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal(pub String);

/// The configured tokens, by the SHA-256 digest of the token.
#[derive(Clone, Debug, Default)]
pub struct Tokens {
    by_digest: Vec<([u8; 32], Principal)>,
}

impl Tokens {
    /// Check the configuration: well-formed digests, one principal for now.
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
            if token.principal.trim().is_empty() {
                anyhow::bail!("[[auth.tokens]]: every token names its principal (`principal = \"alice\"`)");
            }
            by_digest.push((digest, Principal(token.principal.clone())));
        }
        let principals: BTreeSet<&str> = by_digest.iter().map(|(_, p)| p.0.as_str()).collect();
        if principals.len() > 1 {
            anyhow::bail!(
                "[[auth.tokens]] name {} principals ({}); Warden does not yet keep one principal's sessions \
                 from another's, so every token must name the same principal",
                principals.len(),
                principals.into_iter().collect::<Vec<_>>().join(", ")
            );
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

/// Refuse to serve a non-loopback address without authentication.
pub fn check_bind(addr: SocketAddr, tokens: &Tokens) -> anyhow::Result<()> {
    if !addr.ip().is_loopback() && tokens.is_empty() {
        anyhow::bail!(
            "refusing to serve MCP on {addr} without authentication: anyone who can reach it could run \
             agents as this user. Add [[auth.tokens]] entries (`principal` and the `sha256` of each token) \
             to the configuration, or bind a loopback address (127.0.0.1:<port>)"
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
    tokens: Tokens,
) -> anyhow::Result<()> {
    check_bind(addr, &tokens)?;
    let stop = CancellationToken::new();
    let config = StreamableHttpServerConfig::default()
        .with_cancellation_token(stop.child_token())
        .with_allowed_hosts(allowed_hosts(addr, http))
        .with_allowed_origins(http.allowed_origins.clone())
        .enforce_origin_validation();
    let server = WardenServer::new(sessions.clone());
    let mcp = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let tokens = Arc::new(tokens);
    let router = axum::Router::new()
        .nest_service("/mcp", mcp)
        .layer(axum::middleware::from_fn_with_state(tokens.clone(), authenticate))
        .route("/healthz", axum::routing::get(|| async { "ok\n" }))
        .route("/readyz", axum::routing::get(|| async { "ready\n" }));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    let bound = listener.local_addr()?;
    tracing::info!(address = %bound, authenticated = !tokens.is_empty(),
        "serving MCP over Streamable HTTP at http://{bound}/mcp");
    let sweeper = spawn_expiry_sweeper(sessions);
    let grace = http.shutdown_grace_secs.map_or(DEFAULT_SHUTDOWN_GRACE, Duration::from_secs);
    let draining = CancellationToken::new();
    let serving = axum::serve(listener, router).with_graceful_shutdown({
        let draining = draining.clone();
        async move {
            shutdown_signal().await;
            tracing::info!(
                grace_secs = grace.as_secs(),
                "stopping: no new connections; running calls may finish"
            );
            draining.cancel();
        }
    });
    let mut serving = std::pin::pin!(serving.into_future());
    tokio::select! {
        result = &mut serving => result?,
        () = async { draining.cancelled().await; tokio::time::sleep(grace).await } => {
            tracing::warn!("the shutdown grace period ended; cancelling the calls still running");
            stop.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(5), serving).await;
        }
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

/// Let a request to `/mcp` through only with a configured bearer token (when any is configured).
async fn authenticate(State(tokens): State<Arc<Tokens>>, mut request: Request, next: Next) -> Response {
    if tokens.is_empty() {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    match presented.map(|token| tokens.principal(token)) {
        Some(Some(principal)) => {
            request.extensions_mut().insert(principal.clone());
            next.run(request).await
        }
        Some(None) => challenge("invalid_token", "the bearer token is not one Warden knows"),
        None => challenge("", "this Warden needs `Authorization: Bearer <token>`"),
    }
}

fn challenge(error: &str, message: &str) -> Response {
    let mut value = String::from("Bearer realm=\"warden\"");
    if !error.is_empty() {
        value.push_str(&format!(", error=\"{error}\""));
    }
    let mut response = (StatusCode::UNAUTHORIZED, format!("{message}\n")).into_response();
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    response
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
        Tokens::from_config(&AuthConfig { tokens })
    }

    #[test]
    fn tokens_are_matched_by_digest() {
        let tokens = tokens(&[("alice", digest("s3cret")), ("alice", digest("other"))]).unwrap();
        assert_eq!(tokens.principal("s3cret"), Some(&Principal("alice".into())));
        assert_eq!(tokens.principal("other").map(|p| p.0.as_str()), Some("alice"));
        assert_eq!(tokens.principal("s3cre"), None);
        assert_eq!(tokens.principal(&digest("s3cret")), None, "the digest is not the token");
    }

    #[test]
    fn bad_token_configuration_is_refused() {
        let err = tokens(&[("alice", "abc".into())]).unwrap_err().to_string();
        assert!(err.contains("64 hex digits") && err.contains("alice"), "{err}");
        let err = tokens(&[("", digest("x"))]).unwrap_err().to_string();
        assert!(err.contains("names its principal"), "{err}");
        let err = tokens(&[("alice", digest("a")), ("bob", digest("b"))]).unwrap_err().to_string();
        assert!(err.contains("2 principals") && err.contains("alice, bob"), "{err}");
    }

    #[test]
    fn only_loopback_may_go_without_authentication() {
        let none = Tokens::default();
        check_bind("127.0.0.1:8080".parse().unwrap(), &none).unwrap();
        check_bind("[::1]:8080".parse().unwrap(), &none).unwrap();
        let err = check_bind("0.0.0.0:8080".parse().unwrap(), &none).unwrap_err().to_string();
        assert!(err.contains("[[auth.tokens]]") && err.contains("127.0.0.1"), "{err}");
        let some = tokens(&[("alice", digest("s3cret"))]).unwrap();
        check_bind("0.0.0.0:8080".parse().unwrap(), &some).unwrap();
    }
}
