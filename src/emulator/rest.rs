//! The emulator's REST side (docs/protocol.md §3 and §4): the REST Endpoint
//! (`POST /{token}`, `POST /test/{token}`) and the session context API
//! (`POST /new/v2.0/sessions/{sessionId}/context/inject`, also without `/new`).
//! Context lives in the [`ContextStore`](super::ContextStore) shared with the
//! Socket.IO turn and the runtime WebSocket: an inject bumps the session's
//! version, and the next bot output of that session (on any transport) carries
//! `data.contextVersion`.
//!
//! **REST Endpoint.** Body: `userId` and `sessionId` (non-empty strings), and
//! `text` (string) and/or `data` (object). Unknown token (when `url_tokens` is
//! set) → 404. A turn waits `delay` (+ the `stall` window, as over Socket.IO),
//! then answers `outputs` entries separated by `output_gap`:
//! `{"text","data","outputStack":[{"text":"You said: …","data":{"echo":…,
//! "contextVersion":N?},"traceId","disableSensitiveLogging":false,"source":"bot"}],
//! "userId","sessionId"}` (top-level `text` = the outputs' texts joined by a
//! newline, `data` = the last output's data). Turns of one session run one at
//! a time, in arrival order. Errors of the endpoint are *defined by us*:
//! `{"status":<code>,"error":"<kind>","message":"…"}` with kinds
//! `bad_request` (400), `unknown_url_token` (404), `rate_limited` (429, with
//! `Retry-After`), `injected_fault` (500). The token is never echoed.
//!
//! **Context API.** Auth: `X-API-Key: <key>`, `?api_key=<key>` or
//! `Authorization: Bearer <token from /oauth/token>`. Body `{"userId",
//! "context": {…}}`. The `context` object is the session's **`session`
//! scope** in the shared store. `merge: true` (default) merges it key by key;
//! `merge: false` replaces it (keys not in the new context are set to `null` in
//! the store, since the store only merges; the reply shows the new context
//! only). 200 → the resulting context object. Errors are RFC 7807
//! (`application/problem+json`, `{type,title,status,detail,traceId}`): 400 bad
//! body, 401 missing/unknown key, 413 body over `max_inject_bytes`, 429, 500.
//!
//! Settings: `emulator_config::rest` (the `rest:` block).

use super::config::Stall;
use super::runtime::RuntimeState;
use super::Shared;
use crate::protocol::runtime::{Context, ScopeVars};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use rand::rngs::StdRng;
use rand::SeedableRng;

use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use crate::emulator_config::rest::{
    RateLimit, RestEmulatorConfig, DEFAULT_API_KEY, INJECT_SCOPE,
};

/// How often an inject retries against concurrent writers before a 409.
const APPLY_ATTEMPTS: usize = 32;

/// Counters of the REST side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestStats {
    /// Turns answered with 200.
    pub turns: u64,
    /// `outputStack` entries sent (internal entries not counted).
    pub outputs: u64,
    /// Turn requests refused with 400.
    pub bad_requests: u64,
    /// Turn requests refused with 404 (unknown URL token).
    pub unknown_tokens: u64,
    /// Requests (turns and injects) refused with 429.
    pub rate_limited: u64,
    /// Injected 500s.
    pub faults_5xx: u64,
    /// Requests held by `stall_every`.
    pub stalls: u64,
    /// Injects answered with 200.
    pub injects_ok: u64,
    /// Injects refused: 401 / 400 / 413.
    pub inject_unauthorized: u64,
    pub inject_bad_requests: u64,
    pub inject_too_large: u64,
}

#[derive(Default)]
struct Counters {
    turns: AtomicU64,
    outputs: AtomicU64,
    bad_requests: AtomicU64,
    unknown_tokens: AtomicU64,
    rate_limited: AtomicU64,
    faults_5xx: AtomicU64,
    stalls: AtomicU64,
    injects_ok: AtomicU64,
    inject_unauthorized: AtomicU64,
    inject_bad_requests: AtomicU64,
    inject_too_large: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// State of the REST side.
pub(crate) struct RestState {
    shared: Arc<Shared>,
    runtime: Arc<RuntimeState>,
    /// Per-session turn lock and delay RNG (serialises a session's turns).
    sessions: Mutex<HashMap<String, Arc<tokio::sync::Mutex<StdRng>>>>,
    turn_requests: AtomicU64,
    inject_requests: AtomicU64,
    /// Start and count of the current rate-limit window.
    window: Mutex<(Instant, u64)>,
    counters: Counters,
}

impl RestState {
    pub fn new(shared: Arc<Shared>, runtime: Arc<RuntimeState>) -> Self {
        RestState {
            shared,
            runtime,
            sessions: Mutex::default(),
            turn_requests: AtomicU64::new(0),
            inject_requests: AtomicU64::new(0),
            window: Mutex::new((Instant::now(), 0)),
            counters: Counters::default(),
        }
    }

    fn config(&self) -> &RestEmulatorConfig {
        &self.shared.config.rest
    }

    pub fn stats(&self) -> RestStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RestStats {
            turns: get(&c.turns),
            outputs: get(&c.outputs),
            bad_requests: get(&c.bad_requests),
            unknown_tokens: get(&c.unknown_tokens),
            rate_limited: get(&c.rate_limited),
            faults_5xx: get(&c.faults_5xx),
            stalls: get(&c.stalls),
            injects_ok: get(&c.injects_ok),
            inject_unauthorized: get(&c.inject_unauthorized),
            inject_bad_requests: get(&c.inject_bad_requests),
            inject_too_large: get(&c.inject_too_large),
        }
    }

    /// True when this request is over the rate limit (and counts it).
    fn over_rate_limit(&self) -> bool {
        let Some(limit) = self.config().rate_limit else {
            return false;
        };
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if now.duration_since(window.0) >= limit.per.0 {
            *window = (now, 0);
        }
        window.1 = window.1.saturating_add(1);
        let over = window.1 > limit.requests;
        if over {
            bump(&self.counters.rate_limited);
        }
        over
    }

    /// The fault for the n-th request of a kind: 5xx, stall, or none.
    fn fault(&self, counter: &AtomicU64) -> Fault {
        let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
        let config = self.config();
        if config.fail_5xx_every.is_some_and(|k| n.is_multiple_of(k)) {
            bump(&self.counters.faults_5xx);
            Fault::Fail
        } else if config.stall_every.is_some_and(|k| n.is_multiple_of(k)) {
            bump(&self.counters.stalls);
            Fault::Stall(config.stall_for.0)
        } else {
            Fault::None
        }
    }

    /// Waits `d`, or less if the emulator stops; false if it stopped.
    async fn pause(&self, d: Duration) -> bool {
        if d.is_zero() {
            return true;
        }
        tokio::select! {
            _ = self.runtime.stop.cancelled() => false,
            _ = tokio::time::sleep(d) => true,
        }
    }

    fn session_lock(&self, session_id: &str) -> Arc<tokio::sync::Mutex<StdRng>> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions
            .entry(session_id.to_string())
            .or_insert_with(|| {
                let index = self.shared.next_session.fetch_add(1, Ordering::Relaxed);
                let seed = self
                    .shared
                    .config
                    .seed
                    .wrapping_add(index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                Arc::new(tokio::sync::Mutex::new(StdRng::seed_from_u64(seed)))
            })
            .clone()
    }
}

enum Fault {
    None,
    Fail,
    Stall(Duration),
}

/// The routes of the REST side.
pub(crate) fn router(state: Arc<RestState>) -> Router {
    Router::new()
        .route("/{token}", post(turn))
        .route("/test/{token}", post(turn))
        .route(
            "/new/v2.0/sessions/{session_id}/context/inject",
            post(inject),
        )
        .route("/v2.0/sessions/{session_id}/context/inject", post(inject))
        .with_state(state)
}

/// `{"status","error","message"}`: the REST Endpoint's error body (defined by us).
fn endpoint_error(status: StatusCode, error: &str, message: &str) -> Response {
    let body = json!({"status": status.as_u16(), "error": error, "message": message});
    let mut response = (status, Json(body)).into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    response
}

/// An RFC 7807 problem.
fn problem(st: &RestState, status: StatusCode, detail: &str) -> Response {
    let n = st.shared.next_trace.fetch_add(1, Ordering::Relaxed) + 1;
    let body = json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
        "traceId": format!("trace-{n}"),
    });
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    response
}

/// A valid turn request.
struct TurnInput {
    user_id: String,
    session_id: String,
    text: Option<String>,
    data: Option<Value>,
}

fn parse_turn(body: &[u8]) -> Result<TurnInput, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        format!("body is not JSON ({e}): send {{\"userId\",\"sessionId\",\"text\"}}")
    })?;
    let map = value
        .as_object()
        .ok_or("body must be a JSON object with userId, sessionId and text and/or data")?;
    let id = |key: &str| match map.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(_) => Err(format!("`{key}` must be a non-empty string")),
        None => Err(format!("`{key}` is required (a non-empty string)")),
    };
    let user_id = id("userId")?;
    let session_id = id("sessionId")?;
    let text = match map.get("text") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err("`text` must be a string".into()),
    };
    let data = match map.get("data") {
        None | Some(Value::Null) => None,
        Some(d @ Value::Object(_)) => Some(d.clone()),
        Some(_) => return Err("`data` must be an object".into()),
    };
    if text.is_none() && data.is_none() {
        return Err("give `text` and/or `data`".into());
    }
    Ok(TurnInput {
        user_id,
        session_id,
        text,
        data,
    })
}

/// `POST /{token}` and `POST /test/{token}`.
async fn turn(
    State(st): State<Arc<RestState>>,
    Path(token): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if !st.shared.token_allowed(&token) {
        bump(&st.counters.unknown_tokens);
        return endpoint_error(
            StatusCode::NOT_FOUND,
            "unknown_url_token",
            "no endpoint with this URL token (not in the emulator's `url_tokens`)",
        );
    }
    if st.over_rate_limit() {
        return endpoint_error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests in this window (emulator `rest.rate_limit`)",
        );
    }
    let input = match body.map_err(|e| e.body_text()).and_then(|b| parse_turn(&b)) {
        Ok(input) => input,
        Err(message) => {
            bump(&st.counters.bad_requests);
            return endpoint_error(StatusCode::BAD_REQUEST, "bad_request", &message);
        }
    };
    match st.fault(&st.turn_requests) {
        Fault::Fail => {
            return endpoint_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "injected_fault",
                "injected 5xx (emulator `rest.fail_5xx_every`)",
            )
        }
        Fault::Stall(d) => {
            if !st.pause(d).await {
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
        }
        Fault::None => {}
    }
    let lock = st.session_lock(&input.session_id);
    let mut rng = tokio::select! {
        _ = st.runtime.stop.cancelled() => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
        rng = lock.lock() => rng,
    };
    match run_turn(&st, &input, &mut rng).await {
        Some(reply) => {
            bump(&st.counters.turns);
            Json(reply).into_response()
        }
        None => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

/// The scripted turn; `None` if the emulator stopped meanwhile.
async fn run_turn(st: &RestState, input: &TurnInput, rng: &mut StdRng) -> Option<Value> {
    let config = &st.shared.config;
    let delay = stall_wait(config.stall, st.shared.started.elapsed()) + config.delay.sample(rng);
    if let Ok(mut h) = st.shared.injected.lock() {
        h.saturating_record(u64::try_from(delay.as_micros()).unwrap_or(u64::MAX).max(1));
    }
    if !st.pause(delay).await {
        return None;
    }
    let rest = st.config();
    let text = input.text.as_deref().unwrap_or("");
    let echo = input.data.clone().unwrap_or(Value::Null);
    let mut stack = Vec::new();
    let mut texts = Vec::new();
    let mut last_data = Value::Null;
    for i in 0..config.outputs {
        if i > 0 && !st.pause(config.output_gap.sample(rng)).await {
            return None;
        }
        let n = st.shared.next_trace.fetch_add(1, Ordering::Relaxed) + 1;
        let mut data = Map::new();
        data.insert("echo".into(), echo.clone());
        if let Some(v) = st.shared.contexts.version_of(&input.session_id) {
            data.insert("contextVersion".into(), Value::from(v));
        }
        let data = Value::Object(data);
        let out_text = format!("You said: {text}");
        let wire_data = if rest.string_data {
            Value::String(data.to_string())
        } else {
            data.clone()
        };
        stack.push(json!({
            "text": out_text,
            "data": wire_data,
            "traceId": format!("trace-{n}"),
            "disableSensitiveLogging": false,
            "source": "bot",
        }));
        texts.push(out_text);
        last_data = data;
        bump(&st.counters.outputs);
    }
    if rest.internal_entries {
        let n = st.shared.next_trace.fetch_add(1, Ordering::Relaxed) + 1;
        stack.push(json!({
            "text": null,
            "data": {"_cognigy": {"_messageId": format!("msg-{n}")}},
            "traceId": format!("trace-{n}"),
            "disableSensitiveLogging": false,
            "source": "bot",
        }));
    }
    Some(json!({
        "text": texts.join("\n"),
        "data": last_data,
        "outputStack": stack,
        "userId": input.user_id,
        "sessionId": input.session_id,
    }))
}

/// What is left of the `stall` window at `since` (emulator start origin).
fn stall_wait(stall: Option<Stall>, since: Duration) -> Duration {
    stall.map_or(Duration::ZERO, |stall| {
        let end = stall.at.as_duration() + stall.duration.as_duration();
        if since >= stall.at.as_duration() && since < end {
            end - since
        } else {
            Duration::ZERO
        }
    })
}

/// The API key (or bearer token) of a request, if any.
fn credential(headers: &HeaderMap, query: Option<&str>) -> Option<Credential> {
    if let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(Credential::Key(key.to_string()));
    }
    if let Some(key) = query.and_then(|q| super::session::query_param(q, "api_key")) {
        return Some(Credential::Key(key));
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))?;
    Some(Credential::Bearer(bearer.trim().to_string()))
}

enum Credential {
    Key(String),
    Bearer(String),
}

fn authorized(st: &RestState, credential: Option<Credential>) -> bool {
    let keys = &st.config().api_keys;
    match credential {
        _ if keys.is_empty() => true,
        Some(Credential::Key(k)) => keys.contains(&k),
        Some(Credential::Bearer(t)) => st.runtime.tokens.expiry(&t).is_some(),
        None => false,
    }
}

/// `POST [/new]/v2.0/sessions/{sessionId}/context/inject`.
async fn inject(
    State(st): State<Arc<RestState>>,
    Path(session_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if st.over_rate_limit() {
        return problem(
            &st,
            StatusCode::TOO_MANY_REQUESTS,
            "too many requests in this window (emulator `rest.rate_limit`)",
        );
    }
    if !authorized(&st, credential(&headers, query.as_deref())) {
        bump(&st.counters.inject_unauthorized);
        return problem(
            &st,
            StatusCode::UNAUTHORIZED,
            "missing or unknown API key: send it as X-API-Key (or ?api_key=)",
        );
    }
    let max = st.config().max_inject_bytes;
    let body = match body {
        Ok(body) if body.len() > max => Err((StatusCode::PAYLOAD_TOO_LARGE, body.len())),
        Ok(body) => Ok(body),
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Err((StatusCode::PAYLOAD_TOO_LARGE, 0))
        }
        Err(e) => {
            bump(&st.counters.inject_bad_requests);
            return problem(&st, StatusCode::BAD_REQUEST, &e.body_text());
        }
    };
    let body = match body {
        Ok(body) => body,
        Err((status, n)) => {
            bump(&st.counters.inject_too_large);
            let detail = format!("request body of {n} bytes is over the limit of {max} bytes");
            return problem(&st, status, &detail);
        }
    };
    if st.config().inject_faults {
        match st.fault(&st.inject_requests) {
            Fault::Fail => {
                return problem(
                    &st,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "injected 5xx (emulator `rest.fail_5xx_every`)",
                )
            }
            Fault::Stall(d) => {
                if !st.pause(d).await {
                    return StatusCode::SERVICE_UNAVAILABLE.into_response();
                }
            }
            Fault::None => {}
        }
    }
    let context = match parse_inject(&body) {
        Ok(context) => context,
        Err(message) => {
            bump(&st.counters.inject_bad_requests);
            return problem(&st, StatusCode::BAD_REQUEST, &message);
        }
    };
    let delay = {
        let lock = st.session_lock(&session_id);
        let mut rng = lock.lock().await;
        st.shared.config.runtime.update_delay.sample(&mut *rng)
    };
    if !st.pause(delay).await {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    match apply(&st, &session_id, context) {
        Some(result) => {
            bump(&st.counters.injects_ok);
            Json(Value::Object(result)).into_response()
        }
        None => problem(
            &st,
            StatusCode::CONFLICT,
            "the session's context kept changing under concurrent updates: retry",
        ),
    }
}

fn parse_inject(body: &[u8]) -> Result<ScopeVars, String> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| format!("body is not JSON ({e}): send {{\"userId\",\"context\":{{…}}}}"))?;
    let map = value
        .as_object()
        .ok_or("body must be a JSON object {\"userId\",\"context\":{…}}")?;
    match map.get("userId") {
        Some(Value::String(s)) if !s.is_empty() => {}
        _ => return Err("`userId` is required (a non-empty string)".into()),
    }
    match map.get("context") {
        Some(Value::Object(c)) => Ok(c.clone()),
        Some(_) => Err("`context` must be an object".into()),
        None => Err("`context` is required (an object)".into()),
    }
}

/// Merges or replaces the session scope; the resulting context, or `None`
/// after too many concurrent version changes.
fn apply(st: &RestState, session_id: &str, context: ScopeVars) -> Option<ScopeVars> {
    let store = &st.shared.contexts;
    let merge = st.config().merge;
    for _ in 0..APPLY_ATTEMPTS {
        let (version, current) = store.get(session_id).unwrap_or_default();
        let mut vars = context.clone();
        if !merge {
            for key in current.get(INJECT_SCOPE).into_iter().flat_map(Map::keys) {
                vars.entry(key.clone()).or_insert(Value::Null);
            }
        }
        let update: Context = [(INJECT_SCOPE.to_string(), vars)].into_iter().collect();
        if let super::context_store::Applied::Updated { .. } =
            store.apply(session_id, version, &update)
        {
            if !merge {
                return Some(context);
            }
            let (_, now) = store.get(session_id).unwrap_or_default();
            return Some(now.get(INJECT_SCOPE).cloned().unwrap_or_default());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_bodies_are_checked() {
        assert!(parse_turn(br#"{"userId":"u","sessionId":"s","text":"hi"}"#).is_ok());
        assert!(parse_turn(br#"{"userId":"u","sessionId":"s","data":{"a":1}}"#).is_ok());
        for (body, needle) in [
            (&br#"{"sessionId":"s","text":"hi"}"#[..], "userId"),
            (br#"{"userId":"u","sessionId":5,"text":"hi"}"#, "sessionId"),
            (br#"{"userId":"u","sessionId":"s"}"#, "text"),
            (br#"{"userId":"u","sessionId":"s","data":"x"}"#, "data"),
            (b"[1]", "object"),
            (b"nope", "not JSON"),
        ] {
            let e = parse_turn(body).err().unwrap_or_default();
            assert!(e.contains(needle), "{e}");
        }
    }

    #[test]
    fn inject_bodies_are_checked() {
        assert!(parse_inject(br#"{"userId":"u","context":{"a":1}}"#).is_ok());
        assert!(parse_inject(br#"{"context":{"a":1}}"#).is_err());
        assert!(parse_inject(br#"{"userId":"u","context":[1]}"#).is_err());
    }

    #[test]
    fn config_is_validated() {
        assert!(RestEmulatorConfig::default().validate().is_ok());
        let bad = [
            RestEmulatorConfig {
                stall_every: Some(0),
                ..Default::default()
            },
            RestEmulatorConfig {
                rate_limit: Some(RateLimit {
                    requests: 0,
                    per: crate::duration::HumanDuration(Duration::from_secs(1)),
                }),
                ..Default::default()
            },
            RestEmulatorConfig {
                api_keys: vec![String::new()],
                ..Default::default()
            },
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?}");
        }
        let shown = format!("{:?}", RestEmulatorConfig::default().redacted());
        assert!(!shown.contains(DEFAULT_API_KEY), "{shown}");
    }
}
