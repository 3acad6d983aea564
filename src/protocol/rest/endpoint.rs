//! The REST Endpoint client (docs/protocol.md §3): one `POST <url>/<URLToken>` (or
//! `<url>/test/<URLToken>` in test mode) per user input; the reply arrives when
//! the flow has finished, so request → response is the whole turn. Outputs are
//! counted from `outputStack`, internal `_cognigy` entries skipped, string
//! `data` parsed. The URL token is the credential: it is never shown.

use super::{build_client, exchange, join_segments, parse_base, Exchange, Failure, RestError};
use crate::protocol::socketio::OutputLimits;
use serde_json::{Map, Value};
use std::fmt;
use std::time::{Duration, Instant};

/// Settings of a [`RestEndpoint`].
#[derive(Clone)]
pub struct RestOptions {
    /// Base URL of the endpoint, e.g. `https://endpoint-app.example.com`
    /// (a path is kept: `https://h/rest` → `https://h/rest/<URLToken>`).
    pub url: String,
    /// The Endpoint's URL token (a secret).
    pub url_token: String,
    /// Post to `/test/<URLToken>` (the vendor's non-billable, rate-capped mode).
    pub test_mode: bool,
    /// Per-request timeout: connect, send and the whole response body.
    pub timeout: Duration,
    /// Speak HTTP/2 without negotiation (h2c over plain HTTP). Over TLS,
    /// HTTP/2 is used anyway when the server offers it by ALPN.
    pub http2_prior_knowledge: bool,
    /// How many outputs of one reply are kept (more end the turn as
    /// [`RestOutcome::OutputsOverflow`]).
    pub output_limits: OutputLimits,
}

impl fmt::Debug for RestOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestOptions")
            .field("url", &crate::secret::scrub(&self.url, &[&self.url_token]))
            .field("url_token", &crate::secret::redact(&self.url_token))
            .field("test_mode", &self.test_mode)
            .field("timeout", &self.timeout)
            .field("http2_prior_knowledge", &self.http2_prior_knowledge)
            .field("output_limits", &self.output_limits)
            .finish()
    }
}

/// A REST Endpoint client; cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct RestEndpoint {
    client: reqwest::Client,
    /// The full turn URL (contains the token: never print it).
    turn_url: reqwest::Url,
    url_token: String,
    timeout: Duration,
    output_limits: OutputLimits,
}

impl fmt::Debug for RestEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestEndpoint")
            .field("turn_url", &self.display_url())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// One bot output from `outputStack`.
#[derive(Debug, Clone, PartialEq)]
pub struct RestOutput {
    pub text: Option<String>,
    /// `data`, parsed when it arrived as a JSON string (kept as a string if
    /// that string is not JSON).
    pub data: Option<Value>,
    /// `data.contextVersion`, which the emulator adds for sessions with context.
    pub context_version: Option<u64>,
}

/// How a turn ended.
#[derive(Debug, Clone, PartialEq)]
pub enum RestOutcome {
    /// 2xx with a readable body and an `outputStack` array.
    Ok,
    /// A non-2xx status (body ignored).
    HttpStatus(u16),
    /// No complete response within the timeout.
    Timeout,
    /// 2xx but the body is not JSON, not an object, has no `outputStack`
    /// array, or is too large. The message says which (never the token).
    InvalidBody(String),
    /// Connect, TLS or transfer error (message scrubbed of the token).
    Network(String),
    /// The reply held more outputs (or output text) than
    /// [`RestOptions::output_limits`] allow; those beyond were not kept.
    OutputsOverflow(String),
}

impl RestOutcome {
    /// Stable cause for counters: `ok`, `http_429`, `http_5xx`, `http_4xx`,
    /// `http_400`…, `timeout`, `invalid_body`, `network`.
    pub fn cause(&self) -> &'static str {
        match self {
            RestOutcome::Ok => "ok",
            RestOutcome::HttpStatus(s) => super::status_cause(*s),
            RestOutcome::Timeout => "timeout",
            RestOutcome::InvalidBody(_) => "invalid_body",
            RestOutcome::Network(_) => "network",
            RestOutcome::OutputsOverflow(_) => "outputs_overflow",
        }
    }

    pub fn is_ok(&self) -> bool {
        matches!(self, RestOutcome::Ok)
    }
}

impl fmt::Display for RestOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestOutcome::Ok => write!(f, "ok"),
            RestOutcome::HttpStatus(s) => write!(f, "HTTP status {s}"),
            RestOutcome::Timeout => write!(f, "no response within the timeout"),
            RestOutcome::InvalidBody(m) => write!(f, "invalid response body: {m}"),
            RestOutcome::Network(m) => write!(f, "network error: {m}"),
            RestOutcome::OutputsOverflow(m) => write!(f, "too many outputs: {m}"),
        }
    }
}

/// The result of one turn. The turn time is `finished_at - sent_at`
/// (`finished_at` is `None` for timeouts and network errors).
#[derive(Debug, Clone)]
pub struct RestTurn {
    /// Just before the request was handed to the client.
    pub sent_at: Instant,
    /// When the whole response body had been read.
    pub finished_at: Option<Instant>,
    pub status: Option<u16>,
    /// Counted outputs (internal entries skipped) as far as kept; empty
    /// unless `Ok` or `OutputsOverflow`.
    pub outputs: Vec<RestOutput>,
    /// Every counted output of the reply, kept or not.
    pub outputs_received: u64,
    pub outcome: RestOutcome,
}

impl RestTurn {
    /// Request → response, if a response arrived.
    pub fn elapsed(&self) -> Option<Duration> {
        self.finished_at
            .map(|f| f.saturating_duration_since(self.sent_at))
    }
}

impl RestEndpoint {
    /// Checks the options and builds the client (no connection is made yet).
    pub fn new(options: RestOptions) -> Result<Self, RestError> {
        let RestOptions {
            url,
            url_token,
            test_mode,
            timeout,
            http2_prior_knowledge,
            output_limits,
        } = options;
        if url_token.trim().is_empty() {
            return Err(RestError::Invalid {
                field: "url_token",
                message: "is empty: give the Endpoint's URL token".into(),
            });
        }
        let base = parse_base("url", &url, &[&url_token])?;
        let segments: &[&str] = if test_mode {
            &["test", &url_token]
        } else {
            &[&url_token]
        };
        let turn_url = join_segments(&base, segments);
        let client = build_client(timeout, http2_prior_knowledge)?;
        Ok(RestEndpoint {
            client,
            turn_url,
            url_token,
            timeout,
            output_limits,
        })
    }

    /// The turn URL with the token redacted (for manifests and logs).
    pub fn display_url(&self) -> String {
        crate::secret::scrub(self.turn_url.as_str(), &[&self.url_token])
    }

    /// Sends one input (`text` and/or `data`: an empty `text` is left out when
    /// `data` is given; the `data` key is absent when `None`)
    /// and reads the whole reply. Never panics, never waits past the timeout.
    pub async fn turn(
        &self,
        user_id: &str,
        session_id: &str,
        text: &str,
        data: Option<&Value>,
    ) -> RestTurn {
        let mut body = Map::new();
        body.insert("userId".into(), Value::from(user_id));
        body.insert("sessionId".into(), Value::from(session_id));
        // `text` and/or `data`: an empty text is left out when data is sent.
        if !text.is_empty() || data.is_none() {
            body.insert("text".into(), Value::from(text));
        }
        if let Some(data) = data {
            body.insert("data".into(), data.clone());
        }
        let request = self.client.post(self.turn_url.clone()).json(&body);
        let mut turn = RestTurn {
            sent_at: Instant::now(),
            finished_at: None,
            status: None,
            outputs: Vec::new(),
            outputs_received: 0,
            outcome: RestOutcome::Timeout,
        };
        match exchange(request, self.timeout, &[&self.url_token]).await {
            Exchange::Failed { status, failure } => {
                turn.status = status;
                turn.outcome = match failure {
                    Failure::Timeout => RestOutcome::Timeout,
                    Failure::Network(m) => RestOutcome::Network(m),
                };
            }
            Exchange::TooLarge { status, at } => {
                turn.status = Some(status);
                turn.finished_at = Some(at);
                turn.outcome = RestOutcome::InvalidBody(format!(
                    "larger than {} bytes",
                    super::MAX_RESPONSE_BYTES
                ));
            }
            Exchange::Reply { status, body, at } => {
                turn.status = Some(status);
                turn.finished_at = Some(at);
                turn.outcome = if !(200..300).contains(&status) {
                    RestOutcome::HttpStatus(status)
                } else {
                    match parse_reply(&body, self.output_limits) {
                        Ok(reply) => {
                            turn.outputs = reply.outputs;
                            turn.outputs_received = reply.received;
                            if turn.outputs_received > turn.outputs.len() as u64 {
                                RestOutcome::OutputsOverflow(format!(
                                    "{} outputs in one reply, more than {} or {} bytes of text",
                                    turn.outputs_received,
                                    self.output_limits.max_count,
                                    self.output_limits.max_bytes
                                ))
                            } else {
                                RestOutcome::Ok
                            }
                        }
                        Err(message) => RestOutcome::InvalidBody(message),
                    }
                };
            }
        }
        turn
    }
}

/// The counted outputs of a reply: those kept and how many there were.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedReply {
    /// The first outputs, as far as `limits` admit them.
    pub outputs: Vec<RestOutput>,
    /// Every counted output (`received > outputs.len()` = overflow).
    pub received: u64,
}

/// The counted outputs of a 2xx reply body, kept within `limits`.
pub fn parse_reply(body: &[u8], limits: OutputLimits) -> Result<ParsedReply, String> {
    let reply: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON ({e})"))?;
    let stack = reply
        .get("outputStack")
        .ok_or("no `outputStack` field")?
        .as_array()
        .ok_or("`outputStack` is not an array")?;
    let mut parsed = ParsedReply {
        outputs: Vec::new(),
        received: 0,
    };
    let mut kept_bytes = 0usize;
    let mut full = false;
    for output in stack.iter().filter_map(parse_entry) {
        parsed.received += 1;
        let bytes = output.text.as_ref().map_or(0, String::len);
        full = full || !limits.admits(parsed.outputs.len(), kept_bytes, bytes);
        if !full {
            kept_bytes += bytes;
            parsed.outputs.push(output);
        }
    }
    Ok(parsed)
}

/// One `outputStack` entry, `None` for internal entries (and non-objects).
fn parse_entry(entry: &Value) -> Option<RestOutput> {
    let entry = entry.as_object()?;
    let text = entry
        .get("text")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    let data = match entry.get("data") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(serde_json::from_str(s).unwrap_or(Value::String(s.clone()))),
        Some(other) => Some(other.clone()),
    };
    if text.is_none() && data.as_ref().is_some_and(is_internal) {
        return None;
    }
    let context_version = data
        .as_ref()
        .and_then(|d| d.get("contextVersion"))
        .and_then(Value::as_u64);
    Some(RestOutput {
        text,
        data,
        context_version,
    })
}

/// `{"_cognigy": {…}}` whose `_cognigy` holds only `_messageId`/`_finishReason`.
fn is_internal(data: &Value) -> bool {
    let Some(map) = data.as_object() else {
        return false;
    };
    if map.len() != 1 {
        return false;
    }
    map.get("_cognigy")
        .and_then(Value::as_object)
        .is_some_and(|c| c.keys().all(|k| k == "_messageId" || k == "_finishReason"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outputs_skip_internal_and_parse_string_data() {
        let body = json!({
            "text": "ignored",
            "outputStack": [
                {"text": "a", "data": {"contextVersion": 3}, "source": "bot"},
                {"text": null, "data": {"_cognigy": {"_messageId": "m1"}}},
                {"data": {"_cognigy": {"_messageId": "m2", "_finishReason": "stop"}}},
                {"text": "", "data": "{\"x\":1}"},
                {"text": "b", "data": "not json"},
                {"data": {"_cognigy": {"_messageId": "m3", "other": 1}}},
                7
            ]
        });
        let reply = parse_reply(body.to_string().as_bytes(), OutputLimits::DEFAULT).unwrap();
        assert_eq!(reply.received, 4);
        let outputs = reply.outputs;
        assert_eq!(outputs.len(), 4, "{outputs:?}");
        assert_eq!(outputs[0].context_version, Some(3));
        assert_eq!(outputs[1].data, Some(json!({"x": 1})));
        assert_eq!(outputs[2].data, Some(json!("not json")));
    }

    #[test]
    fn outputs_beyond_the_limits_are_counted_not_kept() {
        let body = json!({"outputStack": [{"text": "aaaa"}, {"text": "bbbb"}, {"text": "c"}]});
        let body = body.to_string();
        let by_count = OutputLimits {
            max_count: 2,
            max_bytes: 1 << 20,
        };
        let reply = parse_reply(body.as_bytes(), by_count).unwrap();
        assert_eq!((reply.outputs.len(), reply.received), (2, 3));
        let by_bytes = OutputLimits {
            max_count: 100,
            max_bytes: 6,
        };
        let reply = parse_reply(body.as_bytes(), by_bytes).unwrap();
        assert_eq!((reply.outputs.len(), reply.received), (1, 3));
    }

    #[test]
    fn bad_bodies_are_named() {
        let parse_reply = |b: &[u8]| parse_reply(b, OutputLimits::DEFAULT);
        assert!(parse_reply(b"<html>").unwrap_err().contains("not JSON"));
        assert!(parse_reply(b"{}").unwrap_err().contains("outputStack"));
        assert!(parse_reply(br#"{"outputStack":{}}"#)
            .unwrap_err()
            .contains("not an array"));
    }

    #[test]
    fn token_is_percent_encoded_and_redacted() {
        let endpoint = RestEndpoint::new(RestOptions {
            url: "http://127.0.0.1:9/base/".into(),
            url_token: "secret/token 123".into(),
            test_mode: true,
            timeout: Duration::from_secs(1),
            http2_prior_knowledge: false,
            output_limits: OutputLimits::DEFAULT,
        })
        .unwrap();
        assert_eq!(
            endpoint.turn_url.as_str(),
            "http://127.0.0.1:9/base/test/secret%2Ftoken%20123"
        );
        let shown = format!("{endpoint:?} {}", endpoint.display_url());
        assert!(
            !shown.contains("token%20123") && !shown.contains("token 123"),
            "{shown}"
        );
    }

    #[test]
    fn options_are_checked_without_echoing_the_token() {
        let options = |url: &str, token: &str| RestOptions {
            url: url.into(),
            url_token: token.into(),
            test_mode: false,
            timeout: Duration::from_secs(1),
            http2_prior_knowledge: false,
            output_limits: OutputLimits::DEFAULT,
        };
        let e = RestEndpoint::new(options("ftp://h/supersecrettoken", "supersecrettoken"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`url`") && !e.contains("supersecrettoken"),
            "{e}"
        );
        assert!(RestEndpoint::new(options("http://h", " ")).is_err());
        let mut zero = options("http://h", "tok");
        zero.timeout = Duration::ZERO;
        assert!(RestEndpoint::new(zero).is_err());
        let shown = format!("{:?}", options("http://h", "supersecrettoken"));
        assert!(!shown.contains("supersecrettoken"), "{shown}");
    }
}
