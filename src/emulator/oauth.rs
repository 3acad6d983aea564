//! The emulator's OAuth 2.0 token endpoint (`POST /oauth/token`, client
//! credentials, docs/protocol.md §2.1) and the tokens it issued: random, each
//! remembered with its expiry, looked up by the runtime WebSocket. The
//! `token_*` fault modes (`runtime_faults`) act before any check.

use super::runtime::RuntimeState;
use super::runtime_faults::TokenFault;
use super::stats::bump;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use rand::Rng;
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// Scopes a runtime token must ask for.
pub const REQUIRED_SCOPES: [&str; 2] = ["runtime:execute", "context:write"];

/// Issued tokens and their expiry.
#[derive(Debug, Default)]
pub struct TokenStore {
    tokens: Mutex<HashMap<String, Instant>>,
}

impl TokenStore {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Instant>> {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh random token (64 hex digits) valid for `lifetime`. Expired
    /// tokens are forgotten here, so the map stays as small as the live set.
    pub fn issue(&self, lifetime: Duration) -> String {
        let bytes: [u8; 32] = rand::rng().random();
        let mut token = String::with_capacity(64);
        for b in bytes {
            let _ = write!(token, "{b:02x}");
        }
        let now = Instant::now();
        let mut tokens = self.lock();
        tokens.retain(|_, expiry| *expiry > now);
        tokens.insert(token.clone(), now + lifetime);
        token
    }

    /// When `token` expires; `None` if it is unknown or already expired.
    pub fn expiry(&self, token: &str) -> Option<Instant> {
        let expiry = *self.lock().get(token)?;
        (expiry > Instant::now()).then_some(expiry)
    }
}

/// The form of a client-credentials request; every field optional so that a
/// missing one gets an OAuth error rather than a generic 422.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenRequest {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    scope: Option<String>,
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// `POST /oauth/token`: grant type, then client id/secret, then scopes.
pub(crate) async fn token(
    State(rt): State<Arc<RuntimeState>>,
    form: Result<Form<TokenRequest>, FormRejection>,
) -> Response {
    let refuse = |status, error, description: &str| {
        bump(&rt.counters.oauth_errors);
        oauth_error(status, error, description)
    };
    match rt.faults.on_token_request(&rt.stop).await {
        Some(TokenFault::Error500) => {
            return oauth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "token endpoint failure (fault injection: runtime.faults.token_error)",
            )
        }
        Some(TokenFault::Malformed) => {
            return (
                StatusCode::OK,
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                "{\"token\": [\"this is not a token response\"",
            )
                .into_response()
        }
        None => {}
    }
    let Ok(Form(req)) = form else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "send an application/x-www-form-urlencoded body with grant_type, client_id, client_secret and scope",
        );
    };
    if req.grant_type.as_deref() != Some("client_credentials") {
        return refuse(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only grant_type=client_credentials is supported",
        );
    }
    let config = &rt.config;
    if req.client_id.as_deref() != Some(config.client_id.as_str())
        || req.client_secret.as_deref() != Some(config.client_secret.as_str())
    {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client_id or wrong client_secret",
        );
    }
    let scope = req.scope.unwrap_or_default();
    let asked: Vec<&str> = scope.split_whitespace().collect();
    if !REQUIRED_SCOPES.iter().all(|s| asked.contains(s)) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "scope must contain `runtime:execute context:write`",
        );
    }
    let lifetime = config.token_lifetime.0;
    let access_token = rt.tokens.issue(lifetime);
    bump(&rt.counters.tokens_issued);
    // Whole seconds, rounded down: never promise more than the token has.
    Json(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": lifetime.as_secs(),
        "scope": REQUIRED_SCOPES.join(" "),
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tokens_are_random_and_expire() {
        let s = TokenStore::default();
        let a = s.issue(Duration::from_secs(60));
        let b = s.issue(Duration::from_secs(60));
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(s.expiry(&a).is_some());
        assert!(s.expiry("nope").is_none());
        let gone = s.issue(Duration::ZERO);
        assert!(
            s.expiry(&gone).is_none(),
            "a zero lifetime is already expired"
        );
        s.issue(Duration::from_secs(1));
        assert!(!s.lock().contains_key(&gone), "expired tokens are pruned");
    }
}
