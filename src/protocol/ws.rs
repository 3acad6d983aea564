//! The one WebSocket transport under both wire clients (`socketio` and
//! `runtime`): URL parsing ([`parse`], with the `url` crate), TCP connect with
//! TCP_NODELAY, TLS (rustls, honouring `--insecure` through `crate::tls`), the
//! WebSocket upgrade with one small-buffer configuration ([`ws_config`]), and
//! the mapping of connect, upgrade and read/write errors into
//! protocol-neutral values ([`OpenError`], [`Failure`]) with secrets scrubbed.
//! Also the deadline helper every timer of the clients goes through
//! ([`deadline_in`], on `tokio::time` so tests can pause the clock).
//!
//! It knows nothing of Engine.IO, Socket.IO or runtime frames: each client
//! builds its own URL from a parsed [`Endpoint`], opens it with [`open_ws`],
//! and turns [`OpenError`] / [`Failure`] into its own error types and cause
//! names.

use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, protocol::WebSocketConfig};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};
use url::Url;

/// An open WebSocket, plain or TLS.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// tungstenite read buffer per connection: small, thousands of connections
/// are open at once (the 128 KiB default costs ~140 KiB per VU). tungstenite
/// zero-fills it before every read attempt, so its size is a per-turn cost
/// too: 1 KiB holds a usual chat frame and took a turn against the Node
/// reference server from 38.3k to 34.8k instructions (4 KiB before). A
/// larger message is read in 1 KiB steps into a buffer reserved for it.
const READ_BUFFER_BYTES: usize = 1024;
/// Bytes of frames written without a flush that tungstenite keeps until the
/// flush (more are written out at once). Every send flushes; only the
/// Socket.IO client's queued acks wait, so this holds a handful of them.
const WRITE_BATCH_BYTES: usize = 4 << 10;
/// Bytes that may wait to be written beyond one largest message.
pub const WRITE_SLACK_BYTES: usize = 64 << 10;
/// Used instead of a deadline that would overflow `Instant`.
const FAR_FUTURE: Duration = Duration::from_secs(30 * 24 * 3600);

/// A WebSocket URL as parsed by [`parse`]: scheme normalised to `ws`/`wss`,
/// and the TCP peer it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub url: Url,
    /// Host name or address, without the brackets of an IPv6 literal.
    pub host: String,
    /// The explicit port, else 443 (`wss`) or 80 (`ws`).
    pub port: u16,
    pub tls: bool,
}

/// Parses a WebSocket URL as users write it: `ws`, `wss`, `http` or `https`
/// (`http(s)` become `ws(s)`), a host, an optional port; no credentials, no
/// fragment. The error is the reason only; callers add the URL (scrubbed)
/// and what they expected.
pub fn parse(raw: &str) -> Result<Endpoint, String> {
    let raw = raw.trim();
    let mut url = Url::parse(raw).map_err(|e| match e {
        url::ParseError::RelativeUrlWithoutBase => "no scheme".to_string(),
        e => e.to_string(),
    })?;
    let tls = match url.scheme() {
        "ws" | "http" => false,
        "wss" | "https" => true,
        other => return Err(format!("scheme {other:?} is not ws, wss, http or https")),
    };
    // `https:///x` is read as host `x` by the URL standard: reject it.
    if raw
        .split_once("://")
        .is_none_or(|(_, rest)| rest.starts_with('/'))
    {
        return Err("no host".into());
    }
    if url.fragment().is_some() {
        return Err("remove the #fragment".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials in the URL are not supported".into());
    }
    if url.set_scheme(if tls { "wss" } else { "ws" }).is_err() {
        return Err("cannot use it as a WebSocket URL".into());
    }
    let host = match url.host_str() {
        Some(h) if !h.is_empty() => h.trim_start_matches('[').trim_end_matches(']').to_string(),
        _ => return Err("no host".into()),
    };
    let port = url
        .port_or_known_default()
        .unwrap_or(if tls { 443 } else { 80 });
    Ok(Endpoint {
        url,
        host,
        port,
        tls,
    })
}

/// Where [`open_ws`] connects: the full URL of the upgrade request and its
/// TCP peer.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub url: &'a str,
    pub host: &'a str,
    pub port: u16,
    pub tls: bool,
}

/// The WebSocket configuration of every client connection: messages and
/// frames up to `max_message` bytes (larger ones fail the connection from
/// their header), a small read buffer, frames written without a flush kept
/// until the flush (up to [`WRITE_BATCH_BYTES`]: the Socket.IO client's
/// queued acks), and at most one largest message plus [`WRITE_SLACK_BYTES`]
/// waiting to be written, so a server that stops reading fails the
/// connection instead of growing it.
pub fn ws_config(max_message: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BATCH_BYTES)
        .max_write_buffer_size(max_message.saturating_add(WRITE_SLACK_BYTES))
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
}

/// Why [`open_ws`] failed. Every text is scrubbed of the secrets passed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// TCP connect failed (`host:port: error`); `fd_exhausted` when this
    /// process is out of file descriptors (EMFILE/ENFILE, also counted in
    /// `crate::fdlimit`).
    Unreachable { detail: String, fd_exhausted: bool },
    /// TCP_NODELAY could not be set (`setting TCP_NODELAY: error`).
    NoDelay(String),
    /// TLS configuration or handshake.
    Tls(String),
    /// The server answered the upgrade with this HTTP status.
    Http { status: u16 },
    /// The connection closed or failed during the upgrade.
    Closed(String),
    /// tungstenite refused the URL or request.
    BadUrl(String),
    /// Anything else wrong with the upgrade (`WebSocket upgrade: …`).
    Protocol(String),
}

/// TCP connect (TCP_NODELAY), TLS when `target.tls`, WebSocket upgrade with
/// `config`. Unbounded in time: callers wrap it in their connect timeout.
pub async fn open_ws(
    target: Target<'_>,
    config: WebSocketConfig,
    secrets: &[&str],
) -> Result<Ws, OpenError> {
    let clean = |s: String| crate::secret::scrub(&s, secrets);
    let tcp = TcpStream::connect((target.host, target.port))
        .await
        .map_err(|e| OpenError::Unreachable {
            fd_exhausted: crate::fdlimit::note_io(&e),
            detail: clean(format!("{}:{}: {e}", target.host, target.port)),
        })?;
    tcp.set_nodelay(true)
        .map_err(|e| OpenError::NoDelay(format!("setting TCP_NODELAY: {e}")))?;
    let connector = if target.tls {
        Connector::Rustls(crate::tls::client_config().map_err(OpenError::Tls)?)
    } else {
        Connector::Plain
    };
    let (ws, _response) = tokio_tungstenite::client_async_tls_with_config(
        target.url,
        tcp,
        Some(config),
        Some(connector),
    )
    .await
    .map_err(|e| upgrade_error(e, secrets))?;
    Ok(ws)
}

fn upgrade_error(e: tungstenite::Error, secrets: &[&str]) -> OpenError {
    use tungstenite::Error as E;
    let clean = |s: String| crate::secret::scrub(&s, secrets);
    match e {
        E::Http(resp) => OpenError::Http {
            status: resp.status().as_u16(),
        },
        E::Tls(e) => OpenError::Tls(clean(e.to_string())),
        E::Io(e) if e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) => {
            OpenError::Tls(clean(e.to_string()))
        }
        E::Io(e) => OpenError::Closed(clean(format!("during the WebSocket upgrade: {e}"))),
        E::Url(e) => OpenError::BadUrl(clean(e.to_string())),
        E::HttpFormat(e) => OpenError::BadUrl(clean(e.to_string())),
        E::ConnectionClosed | E::AlreadyClosed => {
            OpenError::Closed("during the WebSocket upgrade".into())
        }
        other => OpenError::Protocol(clean(format!("WebSocket upgrade: {other}"))),
    }
}

/// What kind of read/write failure a [`Failure`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The WebSocket was already closed.
    Closed,
    /// An I/O error on the socket.
    Io,
    /// The server closed the TCP connection without a close frame.
    Reset,
    /// More than the write-buffer cap waits to be written (server not reading).
    WriteBufferFull,
    /// A message or frame above the configured limit.
    TooLarge,
    /// Any other WebSocket protocol violation.
    Other,
}

/// A tungstenite read/write error, sorted for the clients, with secrets
/// scrubbed from both texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    /// In our words: `connection closed`, `io error: …`, the reset
    /// explanation, the size limit broken, or tungstenite's text.
    pub detail: String,
    /// tungstenite's own text of the error.
    pub text: String,
}

impl Failure {
    pub fn new(e: tungstenite::Error, secrets: &[&str]) -> Failure {
        use tungstenite::error::ProtocolError as P;
        use tungstenite::Error as E;
        use FailureKind as K;
        let text = crate::secret::scrub(&e.to_string(), secrets);
        let (kind, detail) = match &e {
            E::ConnectionClosed | E::AlreadyClosed => (K::Closed, "connection closed".into()),
            E::Io(e) => (K::Io, format!("io error: {e}")),
            E::Protocol(P::ResetWithoutClosingHandshake) => (
                K::Reset,
                "the server closed the TCP connection without a WebSocket close frame".into(),
            ),
            E::WriteBufferFull(_) => (K::WriteBufferFull, text.clone()),
            E::Capacity(e) => (K::TooLarge, e.to_string()),
            _ => (K::Other, text.clone()),
        };
        Failure {
            kind,
            detail: crate::secret::scrub(&detail, secrets),
            text,
        }
    }
}

/// `now + d` on the tokio clock, or about a month ahead when that would
/// overflow `Instant`.
pub fn deadline_in(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .or_else(|| now.checked_add(FAR_FUTURE))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_schemes_hosts_and_ports() {
        let e = parse(" HTTP://Example.COM/a ").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(e.url.as_str(), "ws://example.com/a");
        assert_eq!((e.host.as_str(), e.port, e.tls), ("example.com", 80, false));
        let e = parse("wss://[::1]:9000/x?q=1").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((e.host.as_str(), e.port, e.tls), ("::1", 9000, true));
        assert_eq!(e.url.query(), Some("q=1"));
        let e = parse("https://h").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((e.port, e.tls, e.url.scheme()), (443, true, "wss"));
    }

    #[test]
    fn bad_urls_say_why() {
        for (raw, why) in [
            ("", "no scheme"),
            ("h/x", "no scheme"),
            ("ftp://h/x", "is not ws, wss, http or https"),
            ("https://", "empty host"),
            ("https:///path", "no host"),
            ("https://h:notaport/", "invalid port"),
            ("https://h:99999/", "invalid port"),
            ("https://u:pw@h/", "credentials"),
            ("ws://h/x#frag", "#fragment"),
            ("https://[::1/", "IPv6"),
            ("https://[::1]x/", ""),
        ] {
            let got = parse(raw).err();
            assert!(
                got.as_ref().is_some_and(|g| g.contains(why)),
                "{raw:?}: {got:?}"
            );
        }
    }

    #[test]
    fn config_caps_messages_and_the_write_buffer() {
        let c = ws_config(1000);
        assert_eq!(c.read_buffer_size, READ_BUFFER_BYTES);
        assert_eq!(c.write_buffer_size, WRITE_BATCH_BYTES);
        assert_eq!(c.max_write_buffer_size, 1000 + WRITE_SLACK_BYTES);
        assert_eq!(
            (c.max_message_size, c.max_frame_size),
            (Some(1000), Some(1000))
        );
    }

    #[test]
    fn failures_are_sorted_and_scrubbed() {
        use tungstenite::Error as E;
        let f = Failure::new(E::ConnectionClosed, &[]);
        assert_eq!(
            (f.kind, f.detail.as_str()),
            (FailureKind::Closed, "connection closed")
        );
        let io = std::io::Error::other("token-abcdef-123 gone");
        let f = Failure::new(E::Io(io), &["token-abcdef-123"]);
        assert_eq!(f.kind, FailureKind::Io);
        assert!(f.detail.starts_with("io error: "), "{f:?}");
        assert!(!format!("{f:?}").contains("token-abcdef-123"), "{f:?}");
        let reset = E::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake);
        let f = Failure::new(reset, &[]);
        assert_eq!(f.kind, FailureKind::Reset);
        assert!(f.text.contains("without closing handshake"), "{f:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn deadlines_follow_the_tokio_clock_and_never_overflow() {
        let start = Instant::now();
        let at = deadline_in(Duration::from_secs(5));
        assert_eq!(at - start, Duration::from_secs(5));
        tokio::time::sleep_until(at).await;
        assert_eq!(Instant::now(), at);
        assert!(deadline_in(Duration::MAX) > Instant::now());
    }
}
