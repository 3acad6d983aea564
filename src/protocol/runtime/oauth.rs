//! OAuth 2.0 client credentials for the runtime WebSocket (docs/protocol.md §2.1):
//! one [`TokenProvider`] per process (shared as `Arc<TokenProvider>` by all
//! VUs) fetches, caches and refreshes the access token.
//!
//! Rules:
//! - **Single flight**: callers arriving while a fetch runs wait for that fetch
//!   and get its result (token or error); only one request is in flight at a
//!   time, so a dead endpoint is not asked once per waiting VU.
//! - **Refresh before expiry**: a token is refreshed once less than
//!   `min(10 % of its lifetime, 30 s)` of it is left (a 3600 s token at 3570 s,
//!   a 10 s token at 9 s), counted from when its request was sent, on the
//!   `tokio::time` clock. If that refresh fails while the old token is still
//!   valid, the old token is returned (the failure is counted).
//!   A response without `expires_in` is taken to last [`DEFAULT_LIFETIME`].
//! - **Invalidate** after close 4001/4002 or HTTP 401 at the handshake: the
//!   cached token is dropped only if it is still the one the caller used, so
//!   a storm of 4001s costs one refresh.
//! - **Redaction**: [`AccessToken`] prints redacted (`crate::secret::redact`);
//!   the raw value is only reachable through [`AccessToken::expose`]. Errors
//!   never contain the client secret or a token.

use crate::secret::{redact, scrub};
use serde::Deserialize;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// The scope the runtime WebSocket needs.
pub const DEFAULT_SCOPE: &str = "runtime:execute context:write";
/// Limit for one token request (connect, send, read).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Lifetime assumed when the response has no `expires_in`.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);
/// Largest token response read.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// Longest part of an error body quoted in a message.
const MAX_QUOTE_CHARS: usize = 200;

/// Where and as whom to ask for tokens.
#[derive(Clone)]
pub struct OAuthConfig {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
    /// Space-separated scopes; default [`DEFAULT_SCOPE`].
    pub scope: String,
    /// Limit for one token request; default [`DEFAULT_TIMEOUT`].
    pub timeout: Duration,
}

impl OAuthConfig {
    /// A config with the default scope and timeout.
    pub fn new(
        token_url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> OAuthConfig {
        OAuthConfig {
            token_url: token_url.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            scope: DEFAULT_SCOPE.to_string(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl fmt::Debug for OAuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthConfig")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &redact(&self.client_secret))
            .field("scope", &self.scope)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// An access token. `Debug` and `Display` are redacted; use [`expose`](Self::expose)
/// only where the raw value must go on the wire.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(Arc<str>);

impl AccessToken {
    pub fn new(raw: impl Into<Arc<str>>) -> AccessToken {
        AccessToken(raw.into())
    }

    /// The raw token, for the `token=` query parameter. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccessToken({})", redact(&self.0))
    }
}

impl fmt::Display for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

/// Why no token could be had. Messages name the token URL and what to check;
/// they never contain the client secret or a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    #[error("token endpoint {url} refused the client credentials (HTTP {status}){detail}: check client_id, client_secret and scope")]
    BadCredentials {
        url: String,
        status: u16,
        detail: String,
    },
    #[error("token endpoint {url} rejected the request (HTTP {status}){detail}")]
    ClientError {
        url: String,
        status: u16,
        detail: String,
    },
    #[error("token endpoint {url} failed (HTTP {status}){detail}")]
    ServerError {
        url: String,
        status: u16,
        detail: String,
    },
    #[error("token endpoint {url} answered HTTP {status}, expected 200")]
    UnexpectedStatus { url: String, status: u16 },
    #[error("token endpoint {url} did not answer within {after:?}")]
    Timeout { url: String, after: Duration },
    #[error("token endpoint {url} refused the connection: {reason}")]
    Refused { url: String, reason: String },
    #[error("token endpoint {url} could not be reached: {reason}")]
    Network { url: String, reason: String },
    #[error("token endpoint {url} sent an unusable response: {reason}")]
    Malformed { url: String, reason: String },
    #[error("OAuth settings are not usable: {0}")]
    Config(String),
}

impl OAuthError {
    /// Stable name for reports.
    pub fn cause(&self) -> &'static str {
        match self {
            OAuthError::BadCredentials { status: 403, .. } => "token_http_403",
            OAuthError::BadCredentials { .. } => "token_http_401",
            OAuthError::ClientError { .. } => "token_http_4xx",
            OAuthError::ServerError { .. } => "token_http_5xx",
            OAuthError::UnexpectedStatus { .. } => "token_http_other",
            OAuthError::Timeout { .. } => "token_timeout",
            OAuthError::Refused { .. } => "token_refused",
            OAuthError::Network { .. } => "token_network",
            OAuthError::Malformed { .. } => "token_malformed",
            OAuthError::Config(_) => "token_config",
        }
    }
}

/// Counters of one provider; all monotonic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenStats {
    /// HTTP requests sent to the token endpoint.
    pub requests: u64,
    /// Successful fetches that replaced an earlier token (expiry or invalidation).
    pub refreshes: u64,
    /// Requests that produced no token.
    pub failures: u64,
}

/// The cached token and when to refresh it.
#[derive(Clone)]
struct Cached {
    token: AccessToken,
    refresh_at: Instant,
    expires_at: Instant,
}

/// The `expires_in` based refresh rule: refresh once less than
/// `min(lifetime / 10, 30 s)` is left. Returns the delay after the fetch.
pub fn refresh_after(lifetime: Duration) -> Duration {
    let margin = (lifetime / 10).min(Duration::from_secs(30));
    lifetime.saturating_sub(margin)
}

/// Fetches and caches the access token for the whole process.
pub struct TokenProvider {
    config: OAuthConfig,
    client: reqwest::Client,
    cache: Mutex<Option<Cached>>,
    /// Held for the duration of one fetch (single flight).
    fetch_gate: tokio::sync::Mutex<()>,
    /// Set once any token was fetched, to tell first fetches from refreshes.
    fetched_once: std::sync::atomic::AtomicBool,
    /// Completed fetches, and the error of the last one if it failed.
    fetches_done: AtomicU64,
    last_error: Mutex<Option<OAuthError>>,
    requests: AtomicU64,
    refreshes: AtomicU64,
    failures: AtomicU64,
}

impl fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenProvider")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    token_type: Option<String>,
    expires_in: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: Option<String>,
    error_description: Option<String>,
}

impl TokenProvider {
    /// Builds the provider and its HTTP client (rustls, one per provider).
    pub fn new(config: OAuthConfig) -> Result<TokenProvider, OAuthError> {
        let url = reqwest::Url::parse(&config.token_url).map_err(|e| {
            OAuthError::Config(format!(
                "token_url {:?} is not a URL ({e}): give http(s)://host/path",
                config.token_url
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(OAuthError::Config(format!(
                "token_url {:?} must use http or https",
                config.token_url
            )));
        }
        if config.timeout.is_zero() {
            return Err(OAuthError::Config(
                "the token request timeout must be more than 0".into(),
            ));
        }
        let client = crate::tls::http_client_builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .build()
            .map_err(|e| OAuthError::Config(format!("building the HTTP client: {e}")))?;
        Ok(TokenProvider {
            config,
            client,
            cache: Mutex::new(None),
            fetch_gate: tokio::sync::Mutex::new(()),
            fetched_once: std::sync::atomic::AtomicBool::new(false),
            fetches_done: AtomicU64::new(0),
            last_error: Mutex::new(None),
            requests: AtomicU64::new(0),
            refreshes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        })
    }

    pub fn config(&self) -> &OAuthConfig {
        &self.config
    }

    /// The cached token, or a fresh one (see the module rules).
    pub async fn token(&self) -> Result<AccessToken, OAuthError> {
        if let Some(token) = self.fresh_cached(Instant::now()) {
            return Ok(token);
        }
        // Single flight: one fetch at a time; callers that waited for a fetch
        // get its result, token or error, instead of fetching again.
        let seen = self.fetches_done.load(Ordering::Acquire);
        let _gate = self.fetch_gate.lock().await;
        if let Some(token) = self.fresh_cached(Instant::now()) {
            return Ok(token);
        }
        if self.fetches_done.load(Ordering::Acquire) != seen {
            if let Some(e) = self
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
            {
                return Err(e);
            }
        }
        let fetched = self.fetch().await;
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) =
            fetched.as_ref().err().cloned();
        self.fetches_done.fetch_add(1, Ordering::Release);
        match fetched {
            Ok(cached) => {
                let token = cached.token.clone();
                if self.fetched_once.swap(true, Ordering::Relaxed) {
                    self.refreshes.fetch_add(1, Ordering::Relaxed);
                }
                *self.lock_cache() = Some(cached);
                Ok(token)
            }
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(cause = e.cause(), error = %e, "token request failed");
                // A failed early refresh keeps the still-valid old token.
                match self.lock_cache().as_ref() {
                    Some(c) if Instant::now() < c.expires_at => Ok(c.token.clone()),
                    _ => Err(e),
                }
            }
        }
    }

    /// Drops the cached token if it is still `token` (after close 4001/4002 or
    /// HTTP 401 at the handshake); a newer token is kept.
    pub fn invalidate(&self, token: &AccessToken) {
        let mut cache = self.lock_cache();
        if cache.as_ref().is_some_and(|c| &c.token == token) {
            *cache = None;
        }
    }

    pub fn stats(&self) -> TokenStats {
        TokenStats {
            requests: self.requests.load(Ordering::Relaxed),
            refreshes: self.refreshes.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
        }
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, Option<Cached>> {
        // The cache holds plain data; a panic elsewhere cannot leave it inconsistent.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fresh_cached(&self, now: Instant) -> Option<AccessToken> {
        self.lock_cache()
            .as_ref()
            .filter(|c| now < c.refresh_at)
            .map(|c| c.token.clone())
    }

    fn scrubbed(&self, text: &str) -> String {
        scrub(text, &[self.config.client_secret.as_str()])
    }

    async fn fetch(&self) -> Result<Cached, OAuthError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let url = self.config.token_url.clone();
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.config.client_id.as_str()),
            ("client_secret", self.config.client_secret.as_str()),
            ("scope", self.config.scope.as_str()),
        ];
        let after = self.config.timeout;
        let started = Instant::now();
        let exchange = async {
            let resp = self.client.post(&url).form(&form).send().await?;
            let status = resp.status().as_u16();
            let body = resp.bytes().await?;
            Ok::<_, reqwest::Error>((status, body))
        };
        // reqwest enforces the timeout too; this bounds the whole exchange.
        let (status, body) = match tokio::time::timeout(after, exchange).await {
            Err(_) => return Err(OAuthError::Timeout { url, after }),
            Ok(Err(e)) => return Err(self.transport_error(url, after, &e)),
            Ok(Ok(x)) => x,
        };
        let detail = || self.error_detail(&body);
        match status {
            200 => {}
            401 | 403 => {
                return Err(OAuthError::BadCredentials {
                    url,
                    status,
                    detail: detail(),
                })
            }
            400..=499 => {
                return Err(OAuthError::ClientError {
                    url,
                    status,
                    detail: detail(),
                })
            }
            500..=599 => {
                return Err(OAuthError::ServerError {
                    url,
                    status,
                    detail: detail(),
                })
            }
            _ => return Err(OAuthError::UnexpectedStatus { url, status }),
        }
        let malformed = |reason: String| OAuthError::Malformed {
            url: url.clone(),
            reason,
        };
        if body.len() > MAX_BODY_BYTES {
            return Err(malformed(format!(
                "{} bytes, more than {MAX_BODY_BYTES}",
                body.len()
            )));
        }
        // serde_json messages quote no input text, only positions.
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| malformed(format!("not a JSON token response ({e})")))?;
        let token = match parsed.access_token {
            Some(t) if !t.is_empty() => t,
            _ => return Err(malformed("no `access_token`".into())),
        };
        if let Some(kind) = &parsed.token_type {
            if !kind.eq_ignore_ascii_case("bearer") {
                return Err(malformed(format!(
                    "`token_type` is {:?}, expected Bearer",
                    scrub(kind, &[token.as_str()])
                )));
            }
        }
        let lifetime = match &parsed.expires_in {
            None | Some(serde_json::Value::Null) => DEFAULT_LIFETIME,
            Some(v) => expires_in(v).ok_or_else(|| {
                malformed("`expires_in` is not a non-negative number of seconds".into())
            })?,
        };
        Ok(Cached {
            token: AccessToken::new(token),
            refresh_at: started + refresh_after(lifetime),
            expires_at: started + lifetime,
        })
    }

    fn transport_error(&self, url: String, after: Duration, e: &reqwest::Error) -> OAuthError {
        if e.is_timeout() {
            return OAuthError::Timeout { url, after };
        }
        let reason = self.scrubbed(&error_chain(e));
        if e.is_connect() && is_refused(e) {
            return OAuthError::Refused { url, reason };
        }
        OAuthError::Network { url, reason }
    }

    /// ` (error: description)` from an OAuth error body, shortened and scrubbed.
    fn error_detail(&self, body: &[u8]) -> String {
        let Ok(err) = serde_json::from_slice::<ErrorResponse>(body) else {
            return String::new();
        };
        let text = match (err.error, err.error_description) {
            (Some(e), Some(d)) => format!("{e}: {d}"),
            (Some(e), None) => e,
            (None, Some(d)) => d,
            (None, None) => return String::new(),
        };
        let short: String = text.chars().take(MAX_QUOTE_CHARS).collect();
        format!(" ({})", self.scrubbed(&short))
    }
}

/// `expires_in` as a number or numeric string of seconds.
fn expires_in(v: &serde_json::Value) -> Option<Duration> {
    let secs = match v {
        serde_json::Value::Number(n) => n.as_f64()?,
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    // Cap at ten years so that `Instant` arithmetic cannot overflow.
    (secs.is_finite() && secs >= 0.0)
        .then(|| Duration::from_secs_f64(secs.min(10.0 * 365.0 * 86400.0)))
}

/// The error and its sources, joined.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    let mut depth = 0;
    while let Some(s) = source {
        if depth == 8 {
            break;
        }
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
        depth += 1;
    }
    out
}

fn is_refused(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        source = s.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_rule() {
        assert_eq!(
            refresh_after(Duration::from_secs(3600)),
            Duration::from_secs(3570)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(10)),
            Duration::from_secs(9)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(300)),
            Duration::from_secs(270)
        );
        assert_eq!(refresh_after(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn token_and_config_print_redacted() {
        let t = AccessToken::new("abcdefghijklmnopqrstuvwxyz");
        assert!(!format!("{t} {t:?}").contains("efghijklmnop"));
        assert_eq!(t.expose(), "abcdefghijklmnopqrstuvwxyz");
        let c = OAuthConfig::new("http://127.0.0.1:1/token", "id", "super-secret-value");
        assert!(!format!("{c:?}").contains("secret-value"));
        assert_eq!(c.scope, DEFAULT_SCOPE);
    }

    #[test]
    fn expires_in_forms() {
        use serde_json::json;
        assert_eq!(expires_in(&json!(60)), Some(Duration::from_secs(60)));
        assert_eq!(expires_in(&json!("60")), Some(Duration::from_secs(60)));
        assert_eq!(expires_in(&json!(1.5)), Some(Duration::from_millis(1500)));
        assert_eq!(expires_in(&json!(-1)), None);
        assert_eq!(expires_in(&json!("soon")), None);
        assert_eq!(expires_in(&json!([])), None);
    }

    #[test]
    fn bad_config_is_an_error() {
        for url in ["not a url", "ftp://h/token"] {
            let e = TokenProvider::new(OAuthConfig::new(url, "id", "secret-xyz-123")).unwrap_err();
            assert_eq!(e.cause(), "token_config");
            assert!(!e.to_string().contains("secret-xyz"));
        }
    }
}
