//! The REST clients (`protocol::rest`) against the emulator's REST side
//! (`emulator::rest`), over real sockets on 127.0.0.1: turns and outputs,
//! test mode, HTTP/2, validation, unknown tokens, faults (stall, 429, 5xx),
//! context inject (merge, replace, shared state, RFC 7807 errors, the
//! client-side size limit) and secrets kept out of every message.

use finalping::emulator::{self, EmulatorConfig, RestEmulatorConfig, RunningEmulator};
use finalping::protocol::rest::{
    ContextInject, InjectOptions, InjectOutcome, RestEndpoint, RestOptions, RestOutcome,
};
use serde_json::{json, Value};
use std::time::Duration;

const TOKEN: &str = "url-token-0123456789";
const KEY: &str = "api-key-0123456789abc";
const TIMEOUT: Duration = Duration::from_secs(10);

async fn start(
    rest: RestEmulatorConfig,
    tweak: impl FnOnce(&mut EmulatorConfig),
) -> RunningEmulator {
    let mut config = EmulatorConfig {
        url_tokens: vec![TOKEN.to_string()],
        rest: RestEmulatorConfig {
            api_keys: vec![KEY.to_string()],
            ..rest
        },
        ..Default::default()
    };
    config.delay = "5ms".parse().expect("delay");
    tweak(&mut config);
    emulator::start(config, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("emulator")
}

fn endpoint(
    emu: &RunningEmulator,
    token: &str,
    test_mode: bool,
    timeout: Duration,
) -> RestEndpoint {
    RestEndpoint::new(RestOptions {
        url: emu.url(),
        url_token: token.to_string(),
        test_mode,
        timeout,
        http2_prior_knowledge: false,
        output_limits: Default::default(),
    })
    .expect("endpoint")
}

fn injector(emu: &RunningEmulator, key: &str, max_request_bytes: usize) -> ContextInject {
    ContextInject::new(InjectOptions {
        api_base: emu.url(),
        api_key: key.to_string(),
        timeout: TIMEOUT,
        max_request_bytes,
    })
    .expect("inject client")
}

fn assert_no_secret(text: &str) {
    for secret in [TOKEN, KEY] {
        assert!(!text.contains(secret), "secret in {text}");
    }
}

#[tokio::test]
async fn turns_count_outputs_skip_internal_entries_and_parse_string_data() {
    let rest = RestEmulatorConfig {
        internal_entries: true,
        string_data: true,
        ..Default::default()
    };
    let emu = start(rest, |c| c.outputs = 3).await;
    for (test_mode, h2) in [(false, false), (true, false), (false, true)] {
        let client = RestEndpoint::new(RestOptions {
            url: emu.url(),
            url_token: TOKEN.to_string(),
            test_mode,
            timeout: TIMEOUT,
            http2_prior_knowledge: h2,
            output_limits: Default::default(),
        })
        .expect("endpoint");
        let data = json!({"k": 1});
        let turn = client.turn("u1", "s-turns", "hello", Some(&data)).await;
        assert_eq!(
            turn.outcome,
            RestOutcome::Ok,
            "test_mode {test_mode} h2 {h2}"
        );
        assert_eq!(turn.status, Some(200));
        assert_eq!(turn.outputs.len(), 3, "{:?}", turn.outputs);
        let first = &turn.outputs[0];
        assert_eq!(first.text.as_deref(), Some("You said: hello"));
        assert_eq!(first.data.as_ref().and_then(|d| d.get("echo")), Some(&data));
        assert_eq!(first.context_version, None);
        let elapsed = turn.elapsed().expect("finished");
        assert!(elapsed >= Duration::from_millis(5), "{elapsed:?}");
    }
    // data only, no text.
    let client = endpoint(&emu, TOKEN, false, TIMEOUT);
    let turn = client
        .turn("u1", "s-data", "", Some(&json!({"a": true})))
        .await;
    assert!(turn.outcome.is_ok(), "{:?}", turn.outcome);
    let stats = emu.rest_stats();
    assert_eq!(stats.turns, 4);
    assert_eq!(stats.outputs, 12);
    emu.shutdown().await;
}

#[tokio::test]
async fn bad_bodies_get_400_and_unknown_tokens_404() {
    let emu = start(RestEmulatorConfig::default(), |_| {}).await;
    let http = reqwest::Client::new();
    let url = format!("{}/{TOKEN}", emu.url());
    for body in [
        json!({"sessionId": "s", "text": "x"}),
        json!({"userId": "u", "sessionId": "s"}),
        json!({"userId": "u", "sessionId": "s", "data": "str"}),
    ] {
        let response = http.post(&url).json(&body).send().await.expect("send");
        assert_eq!(response.status().as_u16(), 400);
        let error: Value = response.json().await.expect("json error");
        assert_eq!(error["status"], 400);
        assert_eq!(error["error"], "bad_request");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let client = endpoint(&emu, "wrong-token-abcdefgh", false, TIMEOUT);
    let turn = client.turn("u", "s", "hi", None).await;
    assert_eq!(turn.outcome, RestOutcome::HttpStatus(404));
    assert_eq!(turn.outcome.cause(), "http_404");
    assert!(turn.outputs.is_empty());
    let shown = format!(
        "{client:?} {} {:?} {}",
        client.display_url(),
        turn,
        turn.outcome
    );
    assert!(!shown.contains("wrong-token-abcdefgh"), "{shown}");
    let stats = emu.rest_stats();
    assert_eq!(
        (stats.bad_requests, stats.unknown_tokens, stats.turns),
        (3, 1, 0)
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn a_stall_times_out_and_the_emulator_still_stops() {
    let rest = RestEmulatorConfig {
        stall_every: Some(2),
        stall_for: "30s".parse().expect("duration"),
        ..Default::default()
    };
    let emu = start(rest, |_| {}).await;
    let client = endpoint(&emu, TOKEN, false, Duration::from_millis(400));
    assert!(client.turn("u", "s", "1", None).await.outcome.is_ok());
    // Timeout, not Ok 30 s later: the client's 400 ms timeout ended the stall.
    let turn = client.turn("u", "s2", "2", None).await;
    assert_eq!(turn.outcome, RestOutcome::Timeout);
    assert_eq!(turn.outcome.cause(), "timeout");
    assert!(turn.finished_at.is_none() && turn.status.is_none());
    assert_eq!(emu.rest_stats().stalls, 1);
    // The stalled request (30 s) must not hold the shutdown up.
    tokio::time::timeout(Duration::from_secs(10), emu.shutdown())
        .await
        .expect("shutdown waited for the stalled request");
}

#[tokio::test]
async fn rate_limit_gives_429_and_faults_give_5xx() {
    let rest = RestEmulatorConfig {
        rate_limit: Some(
            serde_json::from_value(json!({"requests": 2, "per": "60s"})).expect("limit"),
        ),
        ..Default::default()
    };
    let emu = start(rest, |_| {}).await;
    let client = endpoint(&emu, TOKEN, false, TIMEOUT);
    let mut causes = Vec::new();
    for i in 0..4 {
        causes.push(
            client
                .turn("u", "s", &i.to_string(), None)
                .await
                .outcome
                .cause(),
        );
    }
    assert_eq!(causes, ["ok", "ok", "http_429", "http_429"]);
    assert_eq!(emu.rest_stats().rate_limited, 2);
    emu.shutdown().await;

    let rest = RestEmulatorConfig {
        fail_5xx_every: Some(2),
        ..Default::default()
    };
    let emu = start(rest, |_| {}).await;
    let client = endpoint(&emu, TOKEN, true, TIMEOUT);
    let mut outcomes = Vec::new();
    for i in 0..4 {
        outcomes.push(client.turn("u", "s", &i.to_string(), None).await.outcome);
    }
    assert_eq!(
        outcomes,
        [
            RestOutcome::Ok,
            RestOutcome::HttpStatus(500),
            RestOutcome::Ok,
            RestOutcome::HttpStatus(500)
        ]
    );
    assert_eq!(outcomes[1].cause(), "http_5xx");
    assert_eq!(emu.rest_stats().faults_5xx, 2);
    emu.shutdown().await;
}

#[tokio::test]
async fn inject_merges_and_the_next_turn_sees_the_version() {
    let emu = start(RestEmulatorConfig::default(), |_| {}).await;
    let inject = injector(&emu, KEY, 60_000);
    let result = inject.inject("s-ctx", "u", &json!({"a": 1})).await;
    assert_eq!(
        result.outcome,
        InjectOutcome::Ok {
            context: json!({"a": 1})
        }
    );
    assert!(result.elapsed().is_some());
    let result = inject.inject("s-ctx", "u", &json!({"b": "x"})).await;
    assert_eq!(
        result.outcome,
        InjectOutcome::Ok {
            context: json!({"a": 1, "b": "x"})
        }
    );
    let (version, context) = emu.context_of("s-ctx").expect("stored");
    assert_eq!(version, 2);
    assert_eq!(
        context.get("session").and_then(|s| s.get("b")),
        Some(&json!("x"))
    );

    let turn = endpoint(&emu, TOKEN, false, TIMEOUT)
        .turn("u", "s-ctx", "hi", None)
        .await;
    assert!(turn.outcome.is_ok(), "{:?}", turn.outcome);
    assert_eq!(
        turn.outputs.first().and_then(|o| o.context_version),
        Some(2)
    );

    // Without `/new`, key in the query.
    let url = format!(
        "{}/v2.0/sessions/s-q/context/inject?api_key={KEY}",
        emu.url()
    );
    let response = reqwest::Client::new()
        .post(url)
        .json(&json!({"userId": "u", "context": {"z": 0}}))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(emu.rest_stats().injects_ok, 3);
    emu.shutdown().await;
}

#[tokio::test]
async fn inject_replace_mode_drops_old_keys() {
    let rest = RestEmulatorConfig {
        merge: false,
        ..Default::default()
    };
    let emu = start(rest, |_| {}).await;
    let inject = injector(&emu, KEY, 60_000);
    assert!(inject
        .inject("s", "u", &json!({"a": 1}))
        .await
        .outcome
        .is_ok());
    let result = inject.inject("s", "u", &json!({"b": 2})).await;
    assert_eq!(
        result.outcome,
        InjectOutcome::Ok {
            context: json!({"b": 2})
        }
    );
    assert_eq!(emu.context_of("s").map(|(v, _)| v), Some(2));
    emu.shutdown().await;
}

#[tokio::test]
async fn inject_errors_are_parsed_and_secrets_never_shown() {
    let rest = RestEmulatorConfig {
        max_inject_bytes: 1_000,
        ..Default::default()
    };
    let emu = start(rest, |_| {}).await;

    let wrong = "wrong-key-abcdefghijkl";
    let bad = injector(&emu, wrong, 60_000);
    let result = bad.inject("s", "u", &json!({"a": 1})).await;
    match &result.outcome {
        InjectOutcome::Problem {
            status,
            title,
            detail,
        } => {
            assert_eq!((*status, title.as_str()), (401, "Unauthorized"));
            assert!(detail.contains("X-API-Key"), "{detail}");
        }
        other => panic!("expected a 401 problem, got {other:?}"),
    }
    assert_eq!(result.outcome.cause(), "problem_401");
    let shown = format!("{bad:?} {result:?} {}", result.outcome);
    assert!(!shown.contains(wrong), "{shown}");
    assert_no_secret(&shown);

    // Over the client's own limit: refused before sending.
    let small = injector(&emu, KEY, 300);
    let big = json!({"blob": "x".repeat(2_000)});
    let result = small.inject("s", "u", &big).await;
    assert!(
        matches!(result.outcome, InjectOutcome::TooLarge { max: 300, bytes } if bytes > 2_000),
        "{:?}",
        result.outcome
    );
    assert_eq!(result.outcome.cause(), "too_large");
    assert!(result.finished_at.is_none());
    let stats = emu.rest_stats();
    assert_eq!(
        (
            stats.inject_too_large,
            stats.injects_ok,
            stats.inject_unauthorized
        ),
        (0, 0, 1),
        "nothing was sent"
    );

    // Over the emulator's limit: a 413 problem.
    let result = injector(&emu, KEY, 60_000).inject("s", "u", &big).await;
    assert!(
        matches!(result.outcome, InjectOutcome::Problem { status: 413, .. }),
        "{:?}",
        result.outcome
    );
    assert_eq!(result.outcome.cause(), "problem_413");

    // A 400 problem for a body without userId.
    let url = format!("{}/new/v2.0/sessions/s/context/inject", emu.url());
    let response = reqwest::Client::new()
        .post(url)
        .header("X-API-Key", KEY)
        .json(&json!({"context": {}}))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    let problem: Value = response.json().await.expect("problem");
    for field in ["type", "title", "status", "detail", "traceId"] {
        assert!(problem.get(field).is_some(), "{field} missing in {problem}");
    }
    assert!(emu.context_of("s").is_none());
    emu.shutdown().await;
}

#[tokio::test]
async fn network_errors_never_show_the_token() {
    // A port nobody listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let client = RestEndpoint::new(RestOptions {
        url: format!("http://127.0.0.1:{port}"),
        url_token: TOKEN.to_string(),
        test_mode: false,
        timeout: Duration::from_secs(2),
        http2_prior_knowledge: false,
        output_limits: Default::default(),
    })
    .expect("endpoint");
    let turn = client.turn("u", "s", "hi", None).await;
    assert!(
        matches!(turn.outcome, RestOutcome::Network(_)),
        "{:?}",
        turn.outcome
    );
    assert_eq!(turn.outcome.cause(), "network");
    assert_no_secret(&format!("{turn:?} {}", turn.outcome));
}
