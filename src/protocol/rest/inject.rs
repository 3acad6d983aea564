//! The session context-inject client (docs/protocol.md §4):
//! `POST {api_base}/new/v2.0/sessions/{sessionId}/context/inject` with
//! `X-API-Key` and `{userId, context}` → 200 with the resulting context, or an
//! RFC 7807 problem. The JSON request size is checked before sending. The API
//! key is never shown (`Debug` redacts it, errors are scrubbed).

use super::{build_client, exchange, join_segments, parse_base, Exchange, Failure, RestError};
use serde_json::{json, Value};
use std::fmt;
use std::time::{Duration, Instant};

/// The vendor's documented limit on the JSON request (docs/protocol.md §4).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 60_000;

/// Settings of a [`ContextInject`] client.
#[derive(Clone)]
pub struct InjectOptions {
    /// The API base, e.g. `https://api-app.example.com` (a path is kept).
    pub api_base: String,
    /// Sent as `X-API-Key` (a secret).
    pub api_key: String,
    /// Per-request timeout: connect, send and the whole response body.
    pub timeout: Duration,
    /// Largest JSON request sent; larger ones are refused before sending
    /// (default [`DEFAULT_MAX_REQUEST_BYTES`]).
    pub max_request_bytes: usize,
}

impl InjectOptions {
    /// Options with the default request limit.
    pub fn new(api_base: impl Into<String>, api_key: impl Into<String>, timeout: Duration) -> Self {
        InjectOptions {
            api_base: api_base.into(),
            api_key: api_key.into(),
            timeout,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
        }
    }
}

impl fmt::Debug for InjectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InjectOptions")
            .field(
                "api_base",
                &crate::secret::scrub(&self.api_base, &[&self.api_key]),
            )
            .field("api_key", &crate::secret::redact(&self.api_key))
            .field("timeout", &self.timeout)
            .field("max_request_bytes", &self.max_request_bytes)
            .finish()
    }
}

/// A context-inject client; cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct ContextInject {
    client: reqwest::Client,
    base: reqwest::Url,
    api_key: String,
    max_request_bytes: usize,
    timeout: Duration,
}

impl fmt::Debug for ContextInject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContextInject")
            .field(
                "base",
                &crate::secret::scrub(self.base.as_str(), &[&self.api_key]),
            )
            .field("api_key", &crate::secret::redact(&self.api_key))
            .field("max_request_bytes", &self.max_request_bytes)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// How an inject ended.
#[derive(Debug, Clone, PartialEq)]
pub enum InjectOutcome {
    /// 200: the resulting context object.
    Ok { context: Value },
    /// The JSON request is larger than `max_request_bytes`: nothing was sent.
    TooLarge { bytes: usize, max: usize },
    /// A non-2xx reply with an RFC 7807 body (`title`/`detail` may be empty
    /// when the body omits them).
    Problem {
        status: u16,
        title: String,
        detail: String,
    },
    /// A non-2xx reply whose body is not an RFC 7807 problem.
    HttpStatus(u16),
    /// No complete response within the timeout.
    Timeout,
    /// A 2xx reply whose body is not a JSON object (or is too large).
    InvalidBody(String),
    /// Connect, TLS or transfer error (message scrubbed of the key).
    Network(String),
}

impl InjectOutcome {
    /// Stable cause for counters: `ok`, `too_large`, `problem_401`,
    /// `problem_4xx`, `problem_5xx`, `http_…` (as for turns), `timeout`,
    /// `invalid_body`, `network`.
    pub fn cause(&self) -> &'static str {
        match self {
            InjectOutcome::Ok { .. } => "ok",
            InjectOutcome::TooLarge { .. } => "too_large",
            InjectOutcome::Problem { status, .. } => problem_cause(*status),
            InjectOutcome::HttpStatus(s) => super::status_cause(*s),
            InjectOutcome::Timeout => "timeout",
            InjectOutcome::InvalidBody(_) => "invalid_body",
            InjectOutcome::Network(_) => "network",
        }
    }

    pub fn is_ok(&self) -> bool {
        matches!(self, InjectOutcome::Ok { .. })
    }
}

impl fmt::Display for InjectOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InjectOutcome::Ok { .. } => write!(f, "ok"),
            InjectOutcome::TooLarge { bytes, max } => write!(
                f,
                "request of {bytes} bytes is over the limit of {max} bytes: not sent (shrink the context or raise max_request_bytes)"
            ),
            InjectOutcome::Problem {
                status,
                title,
                detail,
            } => write!(f, "HTTP {status} {title}: {detail}"),
            InjectOutcome::HttpStatus(s) => write!(f, "HTTP status {s}"),
            InjectOutcome::Timeout => write!(f, "no response within the timeout"),
            InjectOutcome::InvalidBody(m) => write!(f, "invalid response body: {m}"),
            InjectOutcome::Network(m) => write!(f, "network error: {m}"),
        }
    }
}

fn problem_cause(status: u16) -> &'static str {
    match status {
        400..=499 => match status {
            400 => "problem_400",
            401 => "problem_401",
            403 => "problem_403",
            404 => "problem_404",
            409 => "problem_409",
            413 => "problem_413",
            429 => "problem_429",
            _ => "problem_4xx",
        },
        500..=599 => "problem_5xx",
        _ => "problem_other",
    }
}

/// The result of one inject; the round trip is `finished_at - sent_at`
/// (`finished_at` is `None` when nothing was sent or no response arrived).
#[derive(Debug, Clone)]
pub struct InjectResult {
    pub sent_at: Instant,
    pub finished_at: Option<Instant>,
    pub outcome: InjectOutcome,
}

impl InjectResult {
    /// Request → response, if a response arrived.
    pub fn elapsed(&self) -> Option<Duration> {
        self.finished_at
            .map(|f| f.saturating_duration_since(self.sent_at))
    }
}

impl ContextInject {
    /// Checks the options and builds the client (no connection is made yet).
    pub fn new(options: InjectOptions) -> Result<Self, RestError> {
        if options.api_key.trim().is_empty() {
            return Err(RestError::Invalid {
                field: "api_key",
                message: "is empty: give the API key (e.g. `${env:COGNIGY_API_KEY}`)".into(),
            });
        }
        if options.max_request_bytes == 0 {
            return Err(RestError::Invalid {
                field: "max_request_bytes",
                message: format!("must be at least 1 (default {DEFAULT_MAX_REQUEST_BYTES})"),
            });
        }
        let base = parse_base("api_base", &options.api_base, &[&options.api_key])?;
        let client = build_client(options.timeout, false)?;
        Ok(ContextInject {
            client,
            base,
            api_key: options.api_key,
            max_request_bytes: options.max_request_bytes,
            timeout: options.timeout,
        })
    }

    /// The inject URL of a session (no secret in it).
    pub fn inject_url(&self, session_id: &str) -> reqwest::Url {
        join_segments(
            &self.base,
            &["new", "v2.0", "sessions", session_id, "context", "inject"],
        )
    }

    /// Injects `context` into the session. Never panics, never waits past the timeout.
    pub async fn inject(&self, session_id: &str, user_id: &str, context: &Value) -> InjectResult {
        let mut result = InjectResult {
            sent_at: Instant::now(),
            finished_at: None,
            outcome: InjectOutcome::Timeout,
        };
        let body = match serde_json::to_vec(&json!({"userId": user_id, "context": context})) {
            Ok(body) => body,
            Err(e) => {
                result.outcome =
                    InjectOutcome::InvalidBody(format!("cannot encode the request: {e}"));
                return result;
            }
        };
        if body.len() > self.max_request_bytes {
            result.outcome = InjectOutcome::TooLarge {
                bytes: body.len(),
                max: self.max_request_bytes,
            };
            return result;
        }
        let request = self
            .client
            .post(self.inject_url(session_id))
            .header("X-API-Key", &self.api_key)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body);
        result.sent_at = Instant::now();
        match exchange(request, self.timeout, &[&self.api_key]).await {
            Exchange::Failed { failure, .. } => {
                result.outcome = match failure {
                    Failure::Timeout => InjectOutcome::Timeout,
                    Failure::Network(m) => InjectOutcome::Network(m),
                };
            }
            Exchange::TooLarge { at, .. } => {
                result.finished_at = Some(at);
                result.outcome = InjectOutcome::InvalidBody(format!(
                    "larger than {} bytes",
                    super::MAX_RESPONSE_BYTES
                ));
            }
            Exchange::Reply { status, body, at } => {
                result.finished_at = Some(at);
                result.outcome = self.interpret(status, &body);
            }
        }
        result
    }

    fn interpret(&self, status: u16, body: &[u8]) -> InjectOutcome {
        let parsed = serde_json::from_slice::<Value>(body);
        if (200..300).contains(&status) {
            return match parsed {
                Ok(context @ Value::Object(_)) => InjectOutcome::Ok { context },
                Ok(_) => InjectOutcome::InvalidBody("not a JSON object".into()),
                Err(e) => InjectOutcome::InvalidBody(format!("not JSON ({e})")),
            };
        }
        match parsed.ok().as_ref().and_then(parse_problem) {
            Some((title, detail)) => InjectOutcome::Problem {
                status,
                title: crate::secret::scrub(&title, &[&self.api_key]),
                detail: crate::secret::scrub(&detail, &[&self.api_key]),
            },
            None => InjectOutcome::HttpStatus(status),
        }
    }
}

/// `(title, detail)` of an RFC 7807 body: an object with at least a string
/// `title`, `detail` or `type`, or a numeric `status`.
fn parse_problem(body: &Value) -> Option<(String, String)> {
    let map = body.as_object()?;
    let text = |k: &str| map.get(k).and_then(Value::as_str).map(str::to_string);
    let (title, detail, kind) = (text("title"), text("detail"), text("type"));
    let has_status = map.get("status").is_some_and(Value::is_u64);
    if title.is_none() && detail.is_none() && kind.is_none() && !has_status {
        return None;
    }
    Some((title.unwrap_or_default(), detail.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(key: &str) -> ContextInject {
        ContextInject::new(InjectOptions::new(
            "http://127.0.0.1:9/api/",
            key,
            Duration::from_secs(1),
        ))
        .unwrap()
    }

    #[test]
    fn url_has_the_new_prefix_and_an_encoded_session() {
        let c = client("k-1234567890");
        assert_eq!(
            c.inject_url("s 1/x").as_str(),
            "http://127.0.0.1:9/api/new/v2.0/sessions/s%201%2Fx/context/inject"
        );
    }

    #[test]
    fn problems_and_statuses_are_told_apart() {
        let c = client("k-1234567890");
        let problem = br#"{"type":"about:blank","title":"Unauthorized","status":401,"detail":"bad key k-1234567890","traceId":"t"}"#;
        match c.interpret(401, problem) {
            InjectOutcome::Problem {
                status,
                title,
                detail,
            } => {
                assert_eq!((status, title.as_str()), (401, "Unauthorized"));
                assert!(!detail.contains("k-1234567890"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(c.interpret(502, b"<html>"), InjectOutcome::HttpStatus(502));
        assert_eq!(c.interpret(502, b"<html>").cause(), "http_5xx");
        assert_eq!(c.interpret(200, b"[]").cause(), "invalid_body");
        assert!(c.interpret(200, br#"{"a":1}"#).is_ok());
        assert_eq!(
            InjectOutcome::Problem {
                status: 401,
                title: String::new(),
                detail: String::new()
            }
            .cause(),
            "problem_401"
        );
    }

    #[test]
    fn the_key_is_never_shown() {
        let key = "very-secret-api-key";
        let shown = format!(
            "{:?} {:?}",
            client(key),
            InjectOptions::new("http://h", key, Duration::from_secs(1))
        );
        assert!(!shown.contains(key), "{shown}");
        assert!(
            ContextInject::new(InjectOptions::new("http://h", "", Duration::from_secs(1))).is_err()
        );
    }
}
