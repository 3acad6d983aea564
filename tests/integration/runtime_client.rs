//! The runtime WebSocket client (`protocol::runtime::{oauth, connection}`)
//! against a scripted server in this file, over real sockets on 127.0.0.1:
//! an axum token endpoint and a tokio-tungstenite WebSocket server whose every
//! connection reports what it received (events) and obeys commands (replies,
//! raw frames, closes). No sleeps as synchronisation: waits are channel
//! receives with timeouts; the only timed waits are the ones the policies
//! under test define (token lifetime, back-off, heartbeats, reply timeout).
//! Those tests run on a paused tokio clock (`start_paused`): client and
//! servers share one current-thread runtime and time moves only when all of
//! them wait on a timer, so the assertions on waits are exact.

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use finalping::protocol::runtime::frame;
use finalping::protocol::runtime::{
    ClientMessage, Codec, Context, GetOutcome, LimitError, OAuthConfig, OAuthError, RejectCode,
    RuntimeConnection, RuntimeError, RuntimeOptions, ServerMessage, TokenProvider, UpdateOutcome,
    UpdateRequest,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::handshake::server::{
    ErrorResponse, Request, Response as WsResponse,
};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

const CLIENT_ID: &str = "finalping-test";
const SECRET: &str = "s3cr3t-client-secret-value";
const WAIT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------- token endpoint

#[derive(Clone, Copy, Debug)]
enum TokenMode {
    Ok,
    Status(u16),
    NotJson,
    NoAccessToken,
    Hang,
}

struct TokenInner {
    requests: AtomicU64,
    mode: Mutex<TokenMode>,
    expires_in: AtomicU64,
    /// Simulates a slow endpoint (widens the window for concurrent callers).
    delay: Mutex<Duration>,
    issued: Mutex<Vec<String>>,
    revoked: Mutex<HashSet<String>>,
    last_form: Mutex<HashMap<String, String>>,
}

#[derive(Clone)]
struct Tokens(Arc<TokenInner>);

impl Tokens {
    fn requests(&self) -> u64 {
        self.0.requests.load(Ordering::SeqCst)
    }
    fn set_mode(&self, m: TokenMode) {
        *self.0.mode.lock().unwrap() = m;
    }
    fn revoke_all(&self) {
        let issued = self.0.issued.lock().unwrap().clone();
        self.0.revoked.lock().unwrap().extend(issued);
    }
    fn is_valid(&self, token: &str) -> bool {
        self.0.issued.lock().unwrap().iter().any(|t| t == token)
            && !self.0.revoked.lock().unwrap().contains(token)
    }
}

async fn token_handler(
    State(t): State<Tokens>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let n = t.0.requests.fetch_add(1, Ordering::SeqCst) + 1;
    *t.0.last_form.lock().unwrap() = form;
    let delay = *t.0.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mode = *t.0.mode.lock().unwrap();
    match mode {
        TokenMode::Ok => {
            let token = format!("tok-{n:04}-{}", "x".repeat(24));
            t.0.issued.lock().unwrap().push(token.clone());
            axum::Json(json!({
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": t.0.expires_in.load(Ordering::SeqCst),
                "scope": "runtime:execute context:write",
            }))
            .into_response()
        }
        TokenMode::Status(code) => (
            StatusCode::from_u16(code).unwrap(),
            // A careless server echoing the secret: it must still not leak.
            axum::Json(json!({"error": "invalid_client", "error_description": format!("bad secret {SECRET}")})),
        )
            .into_response(),
        TokenMode::NotJson => "<html>gateway</html>".into_response(),
        TokenMode::NoAccessToken => axum::Json(json!({"token_type": "Bearer", "expires_in": 60})).into_response(),
        TokenMode::Hang => std::future::pending().await,
    }
}

async fn token_server() -> (Tokens, String) {
    let t = Tokens(Arc::new(TokenInner {
        requests: AtomicU64::new(0),
        mode: Mutex::new(TokenMode::Ok),
        expires_in: AtomicU64::new(3600),
        delay: Mutex::new(Duration::ZERO),
        issued: Mutex::new(Vec::new()),
        revoked: Mutex::new(HashSet::new()),
        last_form: Mutex::new(HashMap::new()),
    }));
    let app = axum::Router::new()
        .route("/oauth/token", axum::routing::post(token_handler))
        .with_state(t.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (t, format!("http://{addr}/oauth/token"))
}

fn provider(url: &str) -> Arc<TokenProvider> {
    let mut c = OAuthConfig::new(url, CLIENT_ID, SECRET);
    c.timeout = Duration::from_millis(500);
    Arc::new(TokenProvider::new(c).unwrap())
}

// ---------------------------------------------------------------- WebSocket server

#[derive(Debug)]
enum Ev {
    Heartbeat(Instant),
    Request(ClientMessage),
    BadFrame,
    Closed(Option<u16>),
}

#[derive(Debug)]
enum Cmd {
    Raw(Vec<u8>),
    Text(String),
    Reply(ServerMessage),
    Close(u16),
    Auto(bool),
}

/// One accepted connection, from the test's side.
struct Conn {
    token: String,
    codec: Codec,
    events: mpsc::UnboundedReceiver<Ev>,
    cmds: mpsc::UnboundedSender<Cmd>,
}

impl Conn {
    async fn next(&mut self) -> Ev {
        tokio::time::timeout(WAIT, self.events.recv())
            .await
            .expect("server event within 5 s")
            .expect("connection task alive")
    }

    /// The next request (heartbeats skipped).
    async fn request(&mut self) -> ClientMessage {
        loop {
            match self.next().await {
                Ev::Request(m) => return m,
                Ev::Heartbeat(_) => {}
                other => panic!("expected a request, got {other:?}"),
            }
        }
    }

    fn send(&self, c: Cmd) {
        self.cmds.send(c).unwrap();
    }
}

struct WsServer {
    addr: SocketAddr,
    conns: mpsc::UnboundedReceiver<Conn>,
    acceptor: tokio::task::JoinHandle<()>,
}

impl WsServer {
    async fn conn(&mut self) -> Conn {
        tokio::time::timeout(WAIT, self.conns.recv())
            .await
            .expect("a connection within 5 s")
            .expect("acceptor alive")
    }

    fn url(&self) -> String {
        format!("ws://{}/v2/runtime", self.addr)
    }

    /// Stops accepting: later connects are refused.
    async fn stop(self) {
        self.acceptor.abort();
        let _ = self.acceptor.await;
    }
}

fn auto_reply(m: &ClientMessage) -> ServerMessage {
    match m {
        ClientMessage::UpdateContext {
            request_id,
            session_id,
            version,
            ..
        } => ServerMessage::ContextUpdated {
            request_id: request_id.clone(),
            session_id: session_id.clone(),
            version: version + 1,
            previous: Context::new(),
        },
        ClientMessage::GetContext {
            request_id,
            session_id,
        } => ServerMessage::Context {
            request_id: request_id.clone(),
            session_id: session_id.clone(),
            version: 0,
            context: Context::new(),
        },
    }
}

fn encode_reply(codec: Codec, m: &ServerMessage) -> Vec<u8> {
    frame::encode(&codec.encode(m).unwrap())
}

async fn ws_server(tokens: Tokens) -> WsServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (conn_tx, conns) = mpsc::unbounded_channel();
    let acceptor = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            // As the emulator: without it, Nagle holds back a second small
            // frame until the first is acked, which a paused clock does not wait for.
            stream.set_nodelay(true).unwrap();
            let tokens = tokens.clone();
            let conn_tx = conn_tx.clone();
            tokio::spawn(serve_one(stream, tokens, conn_tx));
        }
    });
    WsServer {
        addr,
        conns,
        acceptor,
    }
}

// tungstenite's handshake callback type fixes the large error variant.
#[allow(clippy::result_large_err)]
async fn serve_one(
    stream: tokio::net::TcpStream,
    tokens: Tokens,
    conn_tx: mpsc::UnboundedSender<Conn>,
) {
    let seen: Arc<Mutex<Option<(String, String)>>> = Arc::default();
    let seen2 = seen.clone();
    let callback = move |req: &Request, resp: WsResponse| -> Result<WsResponse, ErrorResponse> {
        let url = reqwest::Url::parse(&format!("http://x{}", req.uri())).unwrap();
        let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
        let token = q.get("token").cloned().unwrap_or_default();
        let codec = q.get("codec").cloned().unwrap_or_default();
        if !tokens.is_valid(&token) {
            let mut r = ErrorResponse::new(Some("invalid token".into()));
            *r.status_mut() = StatusCode::UNAUTHORIZED;
            return Err(r);
        }
        *seen2.lock().unwrap() = Some((token, codec));
        Ok(resp)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    let (token, codec) = seen.lock().unwrap().clone().unwrap();
    let codec = Codec::from_query(&codec).expect("codec= is msgpack or json");
    let (ev_tx, events) = mpsc::unbounded_channel();
    let (cmds, mut cmd_rx) = mpsc::unbounded_channel();
    let _ = conn_tx.send(Conn {
        token,
        codec,
        events,
        cmds,
    });
    let mut auto = true;
    let mut cmds_open = true;
    loop {
        tokio::select! {
            cmd = cmd_rx.recv(), if cmds_open => {
                let r = match cmd {
                    None => { cmds_open = false; Ok(()) }
                    Some(Cmd::Raw(b)) => ws.send(Message::Binary(b.into())).await,
                    Some(Cmd::Text(t)) => ws.send(Message::text(t)).await,
                    Some(Cmd::Reply(m)) => ws.send(Message::Binary(encode_reply(codec, &m).into())).await,
                    Some(Cmd::Close(code)) => ws.close(Some(CloseFrame { code: CloseCode::from(code), reason: "scripted".into() })).await,
                    Some(Cmd::Auto(a)) => { auto = a; Ok(()) }
                };
                if r.is_err() {
                    let _ = ev_tx.send(Ev::Closed(None));
                    return;
                }
            }
            msg = ws.next() => {
                let bytes = match msg {
                    Some(Ok(Message::Binary(b))) => b,
                    Some(Ok(Message::Close(f))) => {
                        let _ = ev_tx.send(Ev::Closed(f.map(|f| u16::from(f.code))));
                        // Let tungstenite finish the close handshake.
                        while let Some(Ok(_)) = ws.next().await {}
                        return;
                    }
                    Some(Ok(_)) => { let _ = ev_tx.send(Ev::BadFrame); continue }
                    None | Some(Err(_)) => { let _ = ev_tx.send(Ev::Closed(None)); return }
                };
                match frame::decode(&bytes, 4 << 20) {
                    Ok(frame::Payload::Heartbeat) => {
                        let _ = ev_tx.send(Ev::Heartbeat(Instant::now()));
                        let _ = ws.send(Message::Binary(frame::heartbeat_ack().into())).await;
                    }
                    Ok(frame::Payload::Message(body)) => match codec.decode::<ClientMessage>(body) {
                        Ok(m) => {
                            if auto {
                                let _ = ws.send(Message::Binary(encode_reply(codec, &auto_reply(&m)).into())).await;
                            }
                            let _ = ev_tx.send(Ev::Request(m));
                        }
                        Err(_) => { let _ = ev_tx.send(Ev::BadFrame); }
                    },
                    _ => { let _ = ev_tx.send(Ev::BadFrame); }
                }
            }
        }
    }
}

// ---------------------------------------------------------------- helpers

struct Setup {
    tokens: Tokens,
    provider: Arc<TokenProvider>,
    ws: WsServer,
}

async fn setup() -> Setup {
    let (tokens, token_url) = token_server().await;
    let ws = ws_server(tokens.clone()).await;
    Setup {
        provider: provider(&token_url),
        tokens,
        ws,
    }
}

fn opts(s: &Setup, codec: Codec) -> RuntimeOptions {
    let mut o = RuntimeOptions::new(s.ws.url());
    o.codec = codec;
    o.heartbeat = None;
    o.connect_timeout = Duration::from_secs(2);
    o.reply_timeout = Duration::from_secs(3);
    o.reconnect.backoff = Duration::from_millis(30);
    o
}

fn ctx(scope: &str, vars: serde_json::Value) -> Context {
    let serde_json::Value::Object(map) = vars else {
        panic!("vars must be an object")
    };
    [(scope.to_string(), map)].into_iter().collect()
}

fn req(session: &str, version: u64, context: Context) -> UpdateRequest {
    UpdateRequest {
        session_id: session.into(),
        version,
        context,
    }
}

fn request_id(m: &ClientMessage) -> &str {
    match m {
        ClientMessage::UpdateContext { request_id, .. }
        | ClientMessage::GetContext { request_id, .. } => request_id,
    }
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn both_codecs_update_and_get_context() {
    for codec in [Codec::Msgpack, Codec::Json] {
        let mut s = setup().await;
        let mut c = RuntimeConnection::connect(&opts(&s, codec), &s.provider)
            .await
            .unwrap();
        let mut conn = s.ws.conn().await;
        assert_eq!(conn.codec, codec);
        assert!(conn.token.starts_with("tok-0001-"));
        let form = s.tokens.0.last_form.lock().unwrap().clone();
        assert_eq!(
            form.get("grant_type").map(String::as_str),
            Some("client_credentials")
        );
        assert_eq!(form.get("client_id").map(String::as_str), Some(CLIENT_ID));
        assert_eq!(form.get("client_secret").map(String::as_str), Some(SECRET));
        assert_eq!(
            form.get("scope").map(String::as_str),
            Some("runtime:execute context:write")
        );

        let vars = json!({"cart": {"items": [1, 2], "total": 9.5}, "name": "Ada"});
        let results = c
            .update(vec![req("s-1", 4, ctx("session", vars.clone()))])
            .await;
        assert_eq!(results.len(), 1);
        let r = &results[0];
        assert!(
            matches!(&r.outcome, UpdateOutcome::Updated { version: 5, .. }),
            "{codec:?}: {r:?}"
        );
        assert!(r.round_trip().is_some());
        match conn.request().await {
            ClientMessage::UpdateContext {
                request_id,
                session_id,
                version,
                context,
            } => {
                assert_eq!(request_id, r.request_id);
                assert_eq!((session_id.as_str(), version), ("s-1", 4));
                assert_eq!(context, ctx("session", vars));
            }
            other => panic!("{other:?}"),
        }

        let g = c.get_context("s-1").await;
        assert!(
            matches!(g.outcome, GetOutcome::Context { version: 0, .. }),
            "{g:?}"
        );
        assert!(matches!(
            conn.request().await,
            ClientMessage::GetContext { .. }
        ));

        let counters = c.close().await;
        assert_eq!(counters.frames_sent, 2);
        assert_eq!(counters.frames_received, 2);
        assert_eq!(counters.protocol_errors, 0);
        assert!(counters.bytes_sent > 0 && counters.bytes_received > 0);
        assert!(matches!(conn.next().await, Ev::Closed(Some(1000))));
        assert_eq!(s.tokens.requests(), 1);
    }
}

#[tokio::test]
async fn ten_pipelined_updates_match_out_of_order_and_the_eleventh_is_not_sent() {
    let mut s = setup().await;
    let mut c = RuntimeConnection::connect(&opts(&s, Codec::Msgpack), &s.provider)
        .await
        .unwrap();
    let mut conn = s.ws.conn().await;
    conn.send(Cmd::Auto(false));
    let requests: Vec<UpdateRequest> = (0..11)
        .map(|i| req("s-pipe", i, ctx("user", json!({ "n": i }))))
        .collect();
    let server = async {
        let mut got = Vec::new();
        for _ in 0..10 {
            got.push(conn.request().await);
        }
        // Reply in reverse order; the new version tells which request it answers.
        for m in got.iter().rev() {
            let ClientMessage::UpdateContext {
                request_id,
                session_id,
                version,
                ..
            } = m
            else {
                panic!("{m:?}")
            };
            conn.send(Cmd::Reply(ServerMessage::ContextUpdated {
                request_id: request_id.clone(),
                session_id: session_id.clone(),
                version: version + 100,
                previous: Context::new(),
            }));
        }
        got
    };
    let (results, got) = tokio::join!(c.update(requests), server);
    assert_eq!(results.len(), 11);
    for (i, r) in results.iter().take(10).enumerate() {
        match &r.outcome {
            UpdateOutcome::Updated { version, .. } => assert_eq!(*version, i as u64 + 100),
            other => panic!("request {i}: {other:?}"),
        }
    }
    assert_eq!(
        results[10].outcome,
        UpdateOutcome::TooManyInFlight { max: 10 }
    );
    assert!(!results[10].outcome.was_sent());
    // Replies came last-first.
    assert!(results[9].replied_at.unwrap() <= results[0].replied_at.unwrap());
    let ids: HashSet<&str> = got.iter().map(request_id).collect();
    assert_eq!(ids.len(), 10);
    assert!(!ids.contains(results[10].request_id.as_str()));

    // The next thing the server sees is the getContext: the 11th was never sent.
    conn.send(Cmd::Auto(true));
    let g = c.get_context("s-pipe").await;
    assert!(matches!(g.outcome, GetOutcome::Context { .. }), "{g:?}");
    assert!(matches!(
        conn.request().await,
        ClientMessage::GetContext { .. }
    ));
    let counters = c.take_counters();
    assert_eq!(counters.frames_sent, 11);
    assert_eq!(counters.unmatched_replies, 0);
}

#[tokio::test]
async fn client_side_limit_errors_are_not_sent_and_server_rejections_are_reported() {
    let mut s = setup().await;
    let mut c = RuntimeConnection::connect(&opts(&s, Codec::Json), &s.provider)
        .await
        .unwrap();
    let mut conn = s.ws.conn().await;
    let many: serde_json::Map<String, serde_json::Value> =
        (0..501).map(|i| (format!("v{i}"), json!(i))).collect();
    let results = c
        .update(vec![
            req(
                "s",
                0,
                ctx("session", serde_json::Value::Object(many.clone())),
            ),
            req("s", 0, ctx("tenant", json!({"a": 1}))),
            req("s", 0, ctx("global", json!({"big": "x".repeat(1_048_576)}))),
            req("s", 0, ctx("global", json!({"ok": true}))),
        ])
        .await;
    assert!(
        matches!(
            &results[0].outcome,
            UpdateOutcome::Invalid(LimitError::TooManyVariables { count: 501, .. })
        ),
        "{:?}",
        results[0]
    );
    assert!(matches!(
        &results[1].outcome,
        UpdateOutcome::Invalid(LimitError::InvalidScope { .. })
    ));
    assert!(matches!(
        &results[2].outcome,
        UpdateOutcome::Invalid(LimitError::TooLarge { .. })
    ));
    assert!(matches!(
        &results[3].outcome,
        UpdateOutcome::Updated { version: 1, .. }
    ));
    // Only the valid one reached the server, and then the getContext marker.
    assert_eq!(request_id(&conn.request().await), results[3].request_id);
    let _ = c.get_context("s").await;
    assert!(matches!(
        conn.request().await,
        ClientMessage::GetContext { .. }
    ));
    let counters = c.take_counters();
    assert_eq!(counters.frames_sent, 2);
    assert!(counters.bytes_sent < 10_000, "{}", counters.bytes_sent);
    c.close().await;

    // With validation off the update is sent and the server's rejection surfaces.
    let mut o = opts(&s, Codec::Json);
    o.validate = false;
    let mut c = RuntimeConnection::connect(&o, &s.provider).await.unwrap();
    let mut conn = s.ws.conn().await;
    conn.send(Cmd::Auto(false));
    let server = async {
        let m = conn.request().await;
        let ClientMessage::UpdateContext {
            request_id,
            session_id,
            context,
            ..
        } = &m
        else {
            panic!("{m:?}")
        };
        assert_eq!(context.get("session").map(|v| v.len()), Some(501));
        conn.send(Cmd::Reply(ServerMessage::ContextRejected {
            request_id: request_id.clone(),
            session_id: session_id.clone(),
            code: RejectCode::LimitExceeded,
            message: "scope `session` has 501 variables".into(),
            current_version: Some(3),
        }));
    };
    let (results, ()) = tokio::join!(
        c.update(vec![req(
            "s",
            0,
            ctx("session", serde_json::Value::Object(many))
        )]),
        server
    );
    assert_eq!(
        results[0].outcome,
        UpdateOutcome::Rejected {
            code: RejectCode::LimitExceeded,
            message: "scope `session` has 501 variables".into(),
            current_version: Some(3),
        }
    );
    assert_eq!(results[0].outcome.cause(), "rejected_limit_exceeded");
}

#[tokio::test]
async fn close_4001_and_4002_cost_one_token_refresh_then_reconnect_and_update() {
    let mut s = setup().await;
    let o = opts(&s, Codec::Msgpack);
    let mut a = RuntimeConnection::connect(&o, &s.provider).await.unwrap();
    let conn_a = s.ws.conn().await;
    let mut b = RuntimeConnection::connect(&o, &s.provider).await.unwrap();
    let conn_b = s.ws.conn().await;
    assert_eq!(s.tokens.requests(), 1);
    let old = conn_a.token.clone();
    assert_eq!(conn_b.token, old);

    s.tokens.revoke_all();
    conn_a.send(Cmd::Close(4001));
    conn_b.send(Cmd::Close(4002));
    let ea = a.idle(WAIT).await.unwrap_err();
    let eb = b.idle(WAIT).await.unwrap_err();
    assert_eq!(ea, RuntimeError::TokenRejected { code: 4001 });
    assert_eq!(eb, RuntimeError::TokenRejected { code: 4002 });
    assert_eq!(ea.cause(), "token_rejected_4001");
    assert_eq!(a.failure(), Some(&ea));
    let r = a
        .update(vec![req("s", 0, ctx("session", json!({"x": 1})))])
        .await;
    assert!(matches!(r[0].outcome, UpdateOutcome::Disconnected(_)));

    a.reconnect(&s.provider, &ea).await.unwrap();
    b.reconnect(&s.provider, &eb).await.unwrap();
    assert_eq!(
        s.tokens.requests(),
        2,
        "a storm of 4001/4002 costs one refresh"
    );
    assert_eq!(s.provider.stats().refreshes, 1);
    let mut new_a = s.ws.conn().await;
    let new_b = s.ws.conn().await;
    assert_ne!(new_a.token, old);
    assert_eq!(new_a.token, new_b.token);

    let r = a
        .update(vec![req("s", 7, ctx("session", json!({"x": 1})))])
        .await;
    assert!(
        matches!(r[0].outcome, UpdateOutcome::Updated { version: 8, .. }),
        "{r:?}"
    );
    assert!(matches!(
        new_a.request().await,
        ClientMessage::UpdateContext { .. }
    ));
    let counters = a.take_counters();
    assert_eq!(counters.token_refreshes, 1);
    assert_eq!((counters.reconnect_attempts, counters.reconnects), (1, 1));
    assert_eq!(counters.closes.get(&4001), Some(&1));
    assert_eq!(b.take_counters().closes.get(&4002), Some(&1));
}

#[tokio::test]
async fn handshake_401_is_unauthorized_invalidates_the_token_and_never_shows_it() {
    let s = setup().await;
    let o = opts(&s, Codec::Json);
    let first = s.provider.token().await.unwrap();
    s.tokens.revoke_all();
    let e = RuntimeConnection::connect(&o, &s.provider)
        .await
        .unwrap_err();
    assert_eq!(e, RuntimeError::Unauthorized);
    assert!(!format!("{e} {e:?}").contains(first.expose()));
    // The rejected token was dropped: the next connect fetches a fresh one.
    let mut c = RuntimeConnection::connect(&o, &s.provider).await.unwrap();
    assert_eq!(s.tokens.requests(), 2);
    assert!(!format!("{c:?}").contains("xxxxxxxx"), "{c:?}");
    let r = c
        .update(vec![req("s", 0, ctx("user", json!({"a": 1})))])
        .await;
    assert!(matches!(r[0].outcome, UpdateOutcome::Updated { .. }));
}

#[tokio::test(start_paused = true)]
async fn token_is_cached_across_50_concurrent_calls_and_refreshed_before_expiry() {
    let (tokens, url) = token_server().await;
    *tokens.0.delay.lock().unwrap() = Duration::from_millis(50);
    tokens.0.expires_in.store(1, Ordering::SeqCst);
    let p = provider(&url);
    // The one fetch starts now (no time passes before it is sent).
    let fetched_at = Instant::now();
    let calls: Vec<_> = (0..50)
        .map(|_| {
            let p = p.clone();
            tokio::spawn(async move { p.token().await })
        })
        .collect();
    let mut got = HashSet::new();
    for call in calls {
        got.insert(call.await.unwrap().unwrap().expose().to_string());
    }
    assert_eq!(got.len(), 1);
    assert_eq!(tokens.requests(), 1);
    let first = p.token().await.unwrap();
    assert_eq!(tokens.requests(), 1);

    // Invalidating a token that is no longer cached changes nothing.
    p.invalidate(&finalping::protocol::runtime::AccessToken::new(
        "some-other-token",
    ));
    assert_eq!(p.token().await.unwrap(), first);
    assert_eq!(tokens.requests(), 1);

    // expires_in = 1 s, counted from the request → refreshed once less than
    // 0.1 s is left: still cached 1 ms before 0.9 s, fetched again at 0.9 s.
    *tokens.0.delay.lock().unwrap() = Duration::ZERO;
    tokio::time::sleep_until(fetched_at + Duration::from_millis(899)).await;
    assert_eq!(p.token().await.unwrap(), first);
    assert_eq!(tokens.requests(), 1);
    tokio::time::sleep_until(fetched_at + Duration::from_millis(900)).await;
    let second = p.token().await.unwrap();
    assert_ne!(second, first);
    assert_eq!(tokens.requests(), 2);
    assert_eq!(p.stats().refreshes, 1);
    assert_eq!(p.stats().failures, 0);
    assert!(!format!("{second} {second:?}").contains("xxxxxxxx"));
}

#[tokio::test(start_paused = true)]
async fn token_endpoint_errors_have_stable_causes_and_never_show_the_secret() {
    let (tokens, url) = token_server().await;
    let cases = [
        (TokenMode::Status(401), "token_http_401"),
        (TokenMode::Status(403), "token_http_403"),
        (TokenMode::Status(400), "token_http_4xx"),
        (TokenMode::Status(500), "token_http_5xx"),
        (TokenMode::Status(503), "token_http_5xx"),
        (TokenMode::NotJson, "token_malformed"),
        (TokenMode::NoAccessToken, "token_malformed"),
        (TokenMode::Hang, "token_timeout"),
    ];
    let p = provider(&url);
    for (i, (mode, cause)) in cases.iter().enumerate() {
        tokens.set_mode(*mode);
        let e = p.token().await.unwrap_err();
        assert_eq!(e.cause(), *cause, "{mode:?}: {e}");
        let text = format!("{e} | {e:?}");
        assert!(
            !text.contains(SECRET) && !text.contains("client-secret"),
            "{text}"
        );
        assert!(text.contains("/oauth/token"), "names the endpoint: {text}");
        assert_eq!(p.stats().failures, i as u64 + 1);
    }
    // Callers waiting for a failing fetch share its error: one request.
    tokens.set_mode(TokenMode::Hang);
    let before = tokens.requests();
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let p = p.clone();
            tokio::spawn(async move { p.token().await })
        })
        .collect();
    let started = Instant::now();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap_err().cause(), "token_timeout");
    }
    // One request, bounded by the provider's 500 ms timeout.
    assert_eq!(started.elapsed(), Duration::from_millis(500));
    assert_eq!(tokens.requests(), before + 1);

    // The 401 message quotes the server's error with the secret scrubbed.
    tokens.set_mode(TokenMode::Status(401));
    let e = p.token().await.unwrap_err();
    assert!(e.to_string().contains("invalid_client"), "{e}");

    // Through connect, the error keeps its cause.
    let ws = ws_server(tokens.clone()).await;
    let mut o = RuntimeOptions::new(ws.url());
    o.heartbeat = None;
    let e = RuntimeConnection::connect(&o, &p).await.unwrap_err();
    assert_eq!(e.cause(), "oauth_http_401");
    assert!(!format!("{e:?}").contains(SECRET));

    // Nothing listening: refused.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let p = provider(&format!("http://127.0.0.1:{port}/oauth/token"));
    let e = p.token().await.unwrap_err();
    assert_eq!(e.cause(), "token_refused", "{e}");
    assert!(matches!(e, OAuthError::Refused { .. }));
}

#[tokio::test(start_paused = true)]
async fn heartbeats_every_100ms_are_seen_by_the_server_and_timed() {
    let mut s = setup().await;
    let mut o = opts(&s, Codec::Msgpack);
    o.heartbeat = Some(Duration::from_millis(100));
    let connected = Instant::now();
    let mut c = RuntimeConnection::connect(&o, &s.provider).await.unwrap();
    let mut conn = s.ws.conn().await;
    c.idle(Duration::from_millis(550)).await.unwrap();
    assert_eq!(connected.elapsed(), Duration::from_millis(550));
    // At 100, 200, …, 500 ms; each answered at once (no time passes while
    // only sockets are waited on), so every round trip is zero.
    let counters = c.take_counters();
    assert_eq!(counters.heartbeats_sent, 5, "{counters:?}");
    assert_eq!(counters.heartbeat_acks, 5, "{counters:?}");
    assert_eq!(counters.heartbeat_rtts, vec![Duration::ZERO; 5]);
    let mut at = Vec::new();
    while at.len() < 5 {
        match conn.next().await {
            Ev::Heartbeat(t) => at.push(t.duration_since(connected)),
            other => panic!("{other:?}"),
        }
    }
    let want: Vec<Duration> = (1..=5).map(|i| Duration::from_millis(100 * i)).collect();
    assert_eq!(at, want, "heartbeats seen by the server");

    // Heartbeats off: none is sent while idle; the next frame is the request.
    let mut o = opts(&s, Codec::Msgpack);
    o.heartbeat = None;
    let mut c = RuntimeConnection::connect(&o, &s.provider).await.unwrap();
    let mut conn = s.ws.conn().await;
    c.idle(Duration::from_millis(250)).await.unwrap();
    let _ = c.get_context("s").await;
    assert!(matches!(
        conn.next().await,
        Ev::Request(ClientMessage::GetContext { .. })
    ));
    assert_eq!(c.take_counters().heartbeats_sent, 0);
}

#[tokio::test(start_paused = true)]
async fn stray_replies_are_counted_and_skipped() {
    for codec in [Codec::Msgpack, Codec::Json] {
        let mut s = setup().await;
        let mut o = opts(&s, codec);
        o.reply_timeout = Duration::from_secs(3);
        let mut c = RuntimeConnection::connect(&o, &s.provider).await.unwrap();
        let mut conn = s.ws.conn().await;
        conn.send(Cmd::Auto(false));
        let server = async {
            let m = conn.request().await;
            let id = request_id(&m).to_string();
            conn.send(Cmd::Raw(frame::heartbeat_ack())); // unsolicited answer: ignored
            conn.send(Cmd::Reply(ServerMessage::ContextUpdated {
                request_id: "nobody-asked".into(),
                session_id: "s".into(),
                version: 1,
                previous: Context::new(),
            }));
            conn.send(Cmd::Reply(ServerMessage::Context {
                request_id: id.clone(),
                session_id: "s".into(),
                version: 1,
                context: Context::new(),
            })); // wrong kind for an update
            conn.send(Cmd::Reply(ServerMessage::ContextUpdated {
                request_id: id,
                session_id: "s".into(),
                version: 2,
                previous: Context::new(),
            }));
        };
        let (r, ()) = tokio::join!(
            c.update(vec![req("s", 1, ctx("session", json!({"a": 1})))]),
            server
        );
        assert!(
            matches!(r[0].outcome, UpdateOutcome::Updated { version: 2, .. }),
            "{codec:?} {r:?} {:?} {:?}",
            c.counters(),
            c.failure()
        );
        let counters = c.take_counters();
        assert_eq!(counters.protocol_errors, 1, "{codec:?} {counters:?}");
        assert_eq!(counters.unmatched_replies, 1);
        assert!(c.failure().is_none());

        // No reply: the request times out; a late reply is counted unmatched.
        let mut o = opts(&s, codec);
        o.reply_timeout = Duration::from_millis(300);
        let mut c = RuntimeConnection::connect(&o, &s.provider).await.unwrap();
        let mut conn = s.ws.conn().await;
        conn.send(Cmd::Auto(false));
        let started = Instant::now();
        let (r, m) = tokio::join!(
            c.update(vec![req("s", 1, ctx("session", json!({"a": 1})))]),
            conn.request()
        );
        assert_eq!(r[0].outcome, UpdateOutcome::Timeout);
        assert_eq!(started.elapsed(), o.reply_timeout);
        conn.send(Cmd::Reply(auto_reply(&m)));
        conn.send(Cmd::Reply(auto_reply(&ClientMessage::GetContext {
            request_id: "marker".into(),
            session_id: "s".into(),
        })));
        // Drive the connection until both late replies were read.
        let deadline = Instant::now() + WAIT;
        while c.counters().unmatched_replies < 2 && Instant::now() < deadline {
            c.idle(Duration::from_millis(20)).await.unwrap();
        }
        let counters = c.take_counters();
        assert_eq!(counters.protocol_errors, 0);
        assert_eq!(counters.unmatched_replies, 2);
    }
}

#[tokio::test(start_paused = true)]
async fn bad_frames_end_the_connection_with_1002_without_panics() {
    for codec in [Codec::Msgpack, Codec::Json] {
        let mut s = setup().await;
        let bad: Vec<(Cmd, &str)> = vec![
            (Cmd::Raw(vec![2, 2, 2, 2, 2]), "bad_frame"), // header bytes all 0x02 (too large)
            (Cmd::Raw(vec![0, 0, 0, 9, 1, 2]), "bad_frame"), // header disagrees with length
            (Cmd::Raw(vec![0, 0]), "bad_frame"),          // shorter than a header
            (Cmd::Raw(frame::encode(b"\xc1\xc1{garbage")), "undecodable"),
            (Cmd::Text("not binary".into()), "bad_frame"),
        ];
        for (cmd, cause) in bad {
            let mut o = opts(&s, codec);
            o.reply_timeout = Duration::from_secs(30);
            let mut c = RuntimeConnection::connect(&o, &s.provider).await.unwrap();
            let mut conn = s.ws.conn().await;
            conn.send(Cmd::Auto(false));
            let started = Instant::now();
            let server = async {
                let _ = conn.request().await;
                conn.send(cmd);
                // The client closes with 1002.
                loop {
                    match conn.next().await {
                        Ev::Closed(code) => return code,
                        Ev::Heartbeat(_) => {}
                        other => panic!("expected the close, got {other:?}"),
                    }
                }
            };
            let (r, closed) = tokio::join!(
                c.update(vec![req("s", 1, ctx("session", json!({"a": 1})))]),
                server
            );
            assert!(
                matches!(&r[0].outcome, UpdateOutcome::Disconnected(why) if why.contains("1002")),
                "{codec:?} {cause} {r:?}"
            );
            assert_eq!(
                started.elapsed(),
                Duration::ZERO,
                "the in-flight update must not wait for its reply timeout"
            );
            assert_eq!(closed, Some(1002), "{codec:?} {cause}");
            assert_eq!(c.failure().map(RuntimeError::cause).as_deref(), Some(cause));
            assert_eq!(c.take_counters().protocol_errors, 1);
            // Reconnects like after any abnormal close.
            let e = c.failure().cloned().unwrap();
            c.reconnect(&s.provider, &e).await.unwrap();
            let _again = s.ws.conn().await;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn reconnect_after_abnormal_close_backs_off_and_is_bounded() {
    let mut s = setup().await;
    let mut o = opts(&s, Codec::Json);
    o.reconnect.max_attempts = 3;
    o.reconnect.backoff = Duration::from_millis(40);

    // Close 1011, server still up: one try after 40 ms, same token.
    let mut c = RuntimeConnection::connect(&o, &s.provider).await.unwrap();
    let conn = s.ws.conn().await;
    conn.send(Cmd::Close(1011));
    let e = c.idle(WAIT).await.unwrap_err();
    assert_eq!(e.cause(), "closed_1011");
    let started = Instant::now();
    c.reconnect(&s.provider, &e).await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_millis(40));
    let again = s.ws.conn().await;
    assert_eq!(again.token, conn.token);
    let counters = c.take_counters();
    assert_eq!(
        (
            counters.reconnect_attempts,
            counters.reconnects,
            counters.token_refreshes
        ),
        (1, 1, 0)
    );
    assert_eq!(counters.closes.get(&1011), Some(&1));
    assert_eq!(s.tokens.requests(), 1);

    // Close 1011 again, server gone: the second loss in a row (no reply read
    // since the first) numbers its tries from 2: 3 tries after 80, 120 and
    // 160 ms, then the error.
    again.send(Cmd::Close(1011));
    let e = c.idle(WAIT).await.unwrap_err();
    s.ws.stop().await;
    let started = Instant::now();
    let last = c.reconnect(&s.provider, &e).await.unwrap_err();
    assert_eq!(started.elapsed(), Duration::from_millis(80 + 120 + 160));
    assert_eq!(last.cause(), "refused", "{last}");
    let counters = c.take_counters();
    assert_eq!((counters.reconnect_attempts, counters.reconnects), (3, 0));
    assert_eq!(c.failure(), Some(&last));
    let r = c
        .update(vec![req("s", 0, ctx("user", json!({"a": 1})))])
        .await;
    assert!(matches!(r[0].outcome, UpdateOutcome::Disconnected(_)));
}

#[tokio::test(start_paused = true)]
async fn a_4001_storm_backs_off_and_gives_up_after_max_attempts_losses_in_a_row() {
    let mut s = setup().await;
    let mut o = opts(&s, Codec::Json);
    o.reconnect.max_attempts = 3;
    o.reconnect.backoff = Duration::from_millis(60);
    let mut c = RuntimeConnection::connect(&o, &s.provider).await.unwrap();
    let mut conn = s.ws.conn().await;
    // Losses 1..=3 in a row (no reply between them): waits 0, 60, 120 ms.
    let mut waits = Vec::new();
    for _ in 0..3 {
        conn.send(Cmd::Close(4001));
        let e = c.idle(WAIT).await.unwrap_err();
        assert_eq!(e.cause(), "token_rejected_4001");
        let started = Instant::now();
        c.reconnect(&s.provider, &e).await.unwrap();
        waits.push(started.elapsed());
        conn = s.ws.conn().await;
    }
    let ms = Duration::from_millis;
    assert_eq!(waits, [ms(0), ms(60), ms(120)]);
    // The 4th loss in a row is not retried.
    conn.send(Cmd::Close(4001));
    let e = c.idle(WAIT).await.unwrap_err();
    let storm = c.reconnect(&s.provider, &e).await.unwrap_err();
    assert_eq!(storm.cause(), "storm");
    assert!(storm.to_string().contains("4 connection losses"), "{storm}");
    assert_eq!(c.failure(), Some(&storm));
    let counters = c.take_counters();
    assert_eq!((counters.reconnect_attempts, counters.reconnects), (3, 3));
    assert_eq!(counters.closes.get(&4001), Some(&4));

    // A reply read in between starts the count over: the first reconnect is immediate.
    let mut c = RuntimeConnection::connect(&o, &s.provider).await.unwrap();
    let mut conn = s.ws.conn().await;
    for _ in 0..4 {
        let r = c
            .update(vec![req("s", 0, ctx("user", json!({"a": 1})))])
            .await;
        assert!(
            matches!(r[0].outcome, UpdateOutcome::Updated { .. }),
            "{r:?}"
        );
        conn.send(Cmd::Close(4001));
        let e = c.idle(WAIT).await.unwrap_err();
        let started = Instant::now();
        c.reconnect(&s.provider, &e).await.unwrap();
        assert_eq!(started.elapsed(), Duration::ZERO);
        conn = s.ws.conn().await;
    }
}
