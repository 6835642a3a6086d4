//! The door of `/mcp`: a request gets through only with a bearer token that
//! proves a principal (when authentication is configured), and carries the
//! principal to the tool call. Refusals carry a `WWW-Authenticate`
//! challenge (RFC 6750) pointing at the protected resource metadata
//! (RFC 9728), which this module also serves when JWTs are accepted.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::Authenticator;
use crate::auth::jwt::Rejection;

/// What the authentication layer needs: how to check a token, and where
/// the protected resource metadata is (RFC 9728) when JWTs are accepted.
pub struct Gate {
    pub auth: Authenticator,
    pub metadata: Option<(String, serde_json::Value)>,
}

/// The resource's identifier and its metadata URL and document (RFC 9728),
/// when an authorization server issues its tokens.
pub fn resource_metadata(auth: &Authenticator, base: &str) -> Option<(String, serde_json::Value)> {
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
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// Let a request to `/mcp` through only with a bearer token that proves a
/// principal (when authentication is configured); the principal goes with
/// the request to the tool call.
pub async fn authenticate(State(gate): State<Arc<Gate>>, mut request: Request, next: Next) -> Response {
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
    let proved = match gate.auth.token_principal(token) {
        Some(principal) => Ok(principal),
        // A JWT naming an unknown key may re-read the key set, over the network.
        None => tokio::task::block_in_place(|| gate.auth.jwt_principal(token)),
    };
    match proved {
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
