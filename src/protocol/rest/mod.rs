//! HTTP clients of the vendor's REST interfaces (docs/protocol.md §3 and §4) and the
//! shared-SaaS guard. Owns the wire side only: [`endpoint`] (chat turns over the
//! REST Endpoint, outputs counted from `outputStack`), [`inject`] (the session
//! context-inject API with RFC 7807 errors and a client-side size limit) and
//! [`guard`] (refuses load on the vendor's shared SaaS hosts above their
//! documented per-IP limits; a pure function, no network). Like the other
//! protocol modules: no metrics, no scenario types; callers get timestamps,
//! outcomes and stable `cause()` strings back and record them themselves.
//!
//! Secrets (the URL token, the API key) never appear in an error, a `Display`
//! or a `Debug` string: they are scrubbed with [`crate::secret::scrub`].
//!
//! Both clients hold one `reqwest::Client` (keep-alive pool, HTTP/1.1, HTTP/2
//! by ALPN over TLS or by prior knowledge over plain HTTP); build one client
//! per run and share it (`&self` methods, `Clone` is cheap).

use std::time::{Duration, Instant};

pub mod endpoint;
pub mod guard;
pub mod inject;

pub use endpoint::{RestEndpoint, RestOptions, RestOutcome, RestOutput, RestTurn};
pub use guard::{
    is_shared_saas_host, saas_guard, GuardError, ACK_FLAG, SAAS_DOMAINS, SAAS_IP_LIMIT_PER_SECOND,
    SAAS_TEST_MODE_LIMIT_PER_SECOND,
};
pub use inject::{
    ContextInject, InjectOptions, InjectOutcome, InjectResult, DEFAULT_MAX_REQUEST_BYTES,
};

/// Largest response body read (bigger → `invalid_body`), so a broken server
/// cannot make a VU buffer without bound.
pub const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// Why a client could not be built (bad option); the message names the option.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    #[error("invalid `{field}`: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// One HTTP client with the settings both REST clients share.
pub(crate) fn build_client(
    timeout: Duration,
    http2_prior_knowledge: bool,
) -> Result<reqwest::Client, RestError> {
    if timeout.is_zero() {
        return Err(RestError::Invalid {
            field: "timeout",
            message: "must be greater than zero, e.g. `10s`".into(),
        });
    }
    let mut builder = crate::tls::http_client_builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("finalping/", env!("CARGO_PKG_VERSION")));
    if http2_prior_knowledge {
        builder = builder.http2_prior_knowledge();
    }
    builder
        .build()
        .map_err(|e| RestError::Client(error_chain(&e)))
}

/// Parses an `http(s)` base URL; the error names `field` and never echoes
/// `secrets`.
pub(crate) fn parse_base(
    field: &'static str,
    url: &str,
    secrets: &[&str],
) -> Result<reqwest::Url, RestError> {
    let invalid = |message: String| RestError::Invalid {
        field,
        message: crate::secret::scrub_text(&message, secrets),
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| {
        invalid(format!(
            "`{url}` is not a URL ({e}); e.g. `https://endpoint.example.com`"
        ))
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid(format!(
            "`{url}` must start with http:// or https://"
        )));
    }
    if parsed.cannot_be_a_base() || parsed.host_str().is_none() {
        return Err(invalid(format!("`{url}` has no host")));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(invalid(format!(
            "`{url}` must not carry a query or fragment"
        )));
    }
    Ok(parsed)
}

/// `base` with `segments` appended as percent-encoded path segments.
pub(crate) fn join_segments(base: &reqwest::Url, segments: &[&str]) -> reqwest::Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty();
        path.extend(segments);
    }
    url
}

/// An error with its sources, URL removed (reqwest puts it in `Display`).
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    let mut depth = 0;
    while let Some(s) = source {
        if depth >= 8 {
            break;
        }
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
        depth += 1;
    }
    text
}

/// How one HTTP request ended, as both REST clients need it.
pub(crate) enum Exchange {
    /// A complete reply (any status), read at `at`.
    Reply {
        status: u16,
        body: Vec<u8>,
        at: Instant,
    },
    /// The reply body exceeded [`MAX_RESPONSE_BYTES`].
    TooLarge { status: u16, at: Instant },
    /// Timeout or a transport error; `status` when the headers had arrived.
    Failed {
        status: Option<u16>,
        failure: Failure,
    },
}

/// Sends `request` and reads the whole reply, within `timeout` (reqwest's own
/// timeout covers the body too; this outer bound is a backstop). Error texts
/// are scrubbed of `secrets`.
pub(crate) async fn exchange(
    request: reqwest::RequestBuilder,
    timeout: Duration,
    secrets: &[&str],
) -> Exchange {
    let backstop = timeout.saturating_add(Duration::from_secs(1));
    let send = async {
        let response = request.send().await?;
        let status = response.status().as_u16();
        Ok::<_, reqwest::Error>((status, read_body(response).await))
    };
    let failed = |status, failure| Exchange::Failed { status, failure };
    match tokio::time::timeout(backstop, send).await {
        Err(_) => failed(None, Failure::Timeout),
        Ok(Err(e)) => failed(None, classify(e, secrets)),
        Ok(Ok((status, Ok(body)))) => Exchange::Reply {
            status,
            body,
            at: Instant::now(),
        },
        Ok(Ok((status, Err(BodyError::TooLarge)))) => Exchange::TooLarge {
            status,
            at: Instant::now(),
        },
        Ok(Ok((status, Err(BodyError::Http(e))))) => failed(Some(status), classify(e, secrets)),
    }
}

/// Reads a response body, at most [`MAX_RESPONSE_BYTES`].
async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len().saturating_add(chunk.len()) > MAX_RESPONSE_BYTES {
                    return Err(BodyError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(BodyError::Http(e)),
        }
    }
}

enum BodyError {
    TooLarge,
    Http(reqwest::Error),
}

/// How a transport error is reported: timeout or a scrubbed network message.
pub(crate) enum Failure {
    Timeout,
    Network(String),
}

pub(crate) fn classify(e: reqwest::Error, secrets: &[&str]) -> Failure {
    if e.is_timeout() {
        return Failure::Timeout;
    }
    let e = e.without_url();
    let chain = error_chain(&e);
    crate::fdlimit::note_text(&chain);
    Failure::Network(crate::secret::scrub(&chain, secrets))
}

/// The stable cause of an HTTP status: `http_400`, `http_429`, `http_4xx`,
/// `http_5xx`, … (a fixed set, fit for counter names).
pub fn status_cause(status: u16) -> &'static str {
    match status {
        400..=499 => match status {
            400 => "http_400",
            401 => "http_401",
            403 => "http_403",
            404 => "http_404",
            408 => "http_408",
            409 => "http_409",
            413 => "http_413",
            429 => "http_429",
            _ => "http_4xx",
        },
        500..=599 => "http_5xx",
        _ => "http_other",
    }
}
