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
//! - SIGTERM or SIGINT stops accepting connections, lets running calls go on
//!   for `[http] shutdown-grace-secs` (default 30), then cancels them as a
//!   client cancel would.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use super::server::{WardenServer, spawn_expiry_sweeper};
use crate::auth::Authenticator;
use crate::auth::jwt::Rejection;
use crate::config::HttpConfig;
use crate::sessions::Sessions;

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

/// What the authentication layer needs: how to check a token, and where
/// the protected resource metadata is (RFC 9728) when JWTs are accepted.
struct Gate {
    auth: Authenticator,
    metadata: Option<(String, serde_json::Value)>,
}

/// The resource's identifier and its metadata URL and document (RFC 9728),
/// when an authorization server issues its tokens.
fn resource_metadata(auth: &Authenticator, base: &str) -> Option<(String, serde_json::Value)> {
    let jwt = auth.jwt()?;
    let base = base.trim_end_matches('/');
    let document = serde_json::json!({
        "resource": format!("{base}/mcp"),
        "authorization_servers": [jwt.issuer()],
        "scopes_supported": jwt.scopes(),
        "bearer_methods_supported": ["header"],
        "resource_name": "Warden",
    });
    Some((format!("{base}{METADATA_PATH}/mcp"), document))
}

/// Where RFC 9728 puts the metadata of a resource (the resource's path follows).
const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

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
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    let bound = listener.local_addr()?;
    let base = http.public_url.clone().unwrap_or_else(|| format!("http://{bound}"));
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
    tracing::info!(address = %bound, authenticated, "serving MCP over Streamable HTTP at http://{bound}/mcp");
    let sweeper = spawn_expiry_sweeper(sessions, tasks.clone());
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

/// Let a request to `/mcp` through only with a bearer token that proves a
/// principal (when authentication is configured); the principal goes with
/// the request to the tool call.
async fn authenticate(State(gate): State<Arc<Gate>>, mut request: Request, next: Next) -> Response {
    if gate.auth.is_open() {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let metadata = gate.metadata.as_ref().map(|(url, _)| url.as_str());
    let Some(token) = presented else {
        return challenge(
            StatusCode::UNAUTHORIZED,
            None,
            "this Warden needs `Authorization: Bearer <token>`",
            metadata,
        );
    };
    match gate.auth.principal(token) {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(Rejection::Invalid(why)) => {
            tracing::info!(reason = %why, "refused a bearer token");
            challenge(StatusCode::UNAUTHORIZED, Some("invalid_token"), &why, metadata)
        }
        Err(Rejection::InsufficientScope(why)) => {
            tracing::info!(reason = %why, "refused a bearer token");
            challenge(StatusCode::FORBIDDEN, Some("insufficient_scope"), &why, metadata)
        }
    }
}

/// A refusal with its `WWW-Authenticate` challenge (RFC 6750, and RFC 9728's `resource_metadata`).
fn challenge(status: StatusCode, error: Option<&str>, message: &str, metadata: Option<&str>) -> Response {
    let mut value = String::from("Bearer realm=\"warden\"");
    if let Some(url) = metadata {
        value.push_str(&format!(", resource_metadata=\"{url}\""));
    }
    if let Some(error) = error {
        let description: String =
            message.chars().filter(|c| *c != '"' && *c != '\\' && !c.is_control()).collect();
        value.push_str(&format!(", error=\"{error}\", error_description=\"{description}\""));
    }
    let mut response = (status, format!("{message}\n")).into_response();
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    response
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
