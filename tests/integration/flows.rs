//! Real bot flows end to end: `expect` checks, `capture:` and `if:` against
//! the emulator's scripted replies (embedded and `serve --config`); connect
//! diagnostics; the shared CLI flags, `--json` and completions; the JSON
//! Schema of scenario files checked with an independent validator.

use crate::common;

use common::python;
use common::*;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

/// The emulator answers "order for vu N" with an order id made from N
/// (text and data) and "status of A-N" with "shipped"; anything else
/// gets the echo. Each VU captures its own id and asks for its status.
const EMULATOR_REPLIES: &str = r#"
    delay: 1ms
    typing: false
    replies:
      - when: '^order for vu (\d+)$'
        text: 'Order A-$1 placed'
        data: { order: { id: 'A-$1', status: open }, intent: order }
      - when: '^status of (A-\d+)$'
        text: '$1 shipped'
        data: { order: { id: '$1', status: shipped } }
        outputs: 2
"#;

fn flow_scenario(extra_steps: &str) -> String {
    format!(
        r#"name: flow
load: {{ vus: 3, iterations: 2 }}
emulator:{EMULATOR_REPLIES}
steps:
  - connect
  - send:
      name: order
      text: "order for vu {{{{vu}}}}"
      expect:
        text_matches: '^Order A-\d+ placed$'
        data:
          - {{ path: /order/status, equals: open }}
          - {{ path: /order/id, matches: '^A-\d+$' }}
          - {{ path: /ticket, exists: false }}
      capture:
        order: {{ from: output, regex: 'Order (A-\d+)' }}
        intent: {{ from: data, path: /intent }}
  - if: {{ captured: intent, equals: order }}
    send:
      name: status
      text: "status of {{{{captured.order}}}}"
      expect:
        outputs: {{ min: 2, max: 2 }}
        text_contains: "{{{{captured.order}}}} shipped"
        data: [{{ path: /order/id, equals: "A-{{{{vu}}}}" }}]
{extra_steps}  - disconnect
"#
    )
}

#[test]
fn a_capture_feeds_the_next_turn_and_the_scripted_reply_checks_it() {
    let (out, s, _w) = run_yaml(&flow_scenario(""), &[], LIMIT);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // 3 VUs × 2 iterations × 2 turns, every check passed.
    assert_eq!(counter(&s, "turns_sent"), 12, "{s}");
    assert_eq!(counter(&s, "turns_ok"), 12, "{s}");
    assert_eq!(counter(&s, "turns_error"), 0, "{s}");
    // The status turn got the scripted 2 outputs, so its text held the captured id.
    assert_eq!(counter(&s, "outputs"), 6 + 12, "{s}");
}

#[test]
fn an_if_skips_the_step_and_a_missing_capture_fails_the_turn() {
    let yaml = flow_scenario("").replace(
        "intent: { from: data, path: /intent }",
        "intent: { from: data, path: /intent }\n        ticket: { regex: 'ticket (T-\\d+)' }",
    );
    let yaml = yaml.replace(
        "  - disconnect\n",
        "  - if: { captured: ticket }\n    send: { text: \"never sent {{captured.ticket}}\" }\n  - disconnect\n",
    );
    let (out, s, _w) = run_yaml(&yaml, &[], LIMIT);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    // The order turns fail with `capture_missing` (no ticket), the status
    // turns still run (their own condition holds), the ticket step never does.
    assert_eq!(counter(&s, "turns_sent"), 12, "{s}");
    assert_eq!(counter(&s, "turns_ok"), 6, "{s}");
    assert_eq!(s["errors"]["capture_missing"], 6, "{s}");
}

#[test]
fn each_failed_check_has_its_own_cause() {
    let yaml = r#"name: checks
load: { vus: 1, iterations: 1 }
emulator:
  delay: 1ms
  replies:
    - { when: '^a$', text: 'reply one', data: { n: 1 } }
steps:
  - send: { text: a, expect: { text_matches: '^two' } }
  - send: { text: a, expect: { outputs: { max: 0 } } }
  - send: { text: a, expect: { data: [{ path: /n, equals: 2 }] } }
  - send: { text: a, expect: { min_outputs: 2 } }
  - send: { text: a, expect: { text_contains: zzz } }
  - send: { text: a, expect: { data: [{ path: /n }], text_matches: 'one$', outputs: { min: 1, max: 1 } } }
"#;
    let (out, s, _w) = run_yaml(yaml, &[], LIMIT);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    for cause in [
        "expect_text_matches",
        "expect_max_outputs",
        "expect_data",
        "expect_min_outputs",
        "expect_text_contains",
    ] {
        assert_eq!(s["errors"][cause], 1, "{cause}: {s}");
    }
    assert_eq!(counter(&s, "turns_ok"), 1, "{s}");
}

#[test]
fn serve_config_scripts_replies_for_an_external_run() {
    let w = Workdir::new();
    let config = w.file(
        "emulator.yaml",
        EMULATOR_REPLIES.replace("\n    ", "\n").trim_start(),
    );
    let served = serve(&["--config", config.to_str().unwrap()]);
    let scenario = flow_scenario("")
        .replace("emulator:", "emulator_unused:")
        .replace(
            "name: flow\n",
            &format!("name: flow\ntarget: {{ url: \"{}\" }}\n", served.url),
        );
    // The `emulator:` block only configures the embedded emulator: drop it.
    let scenario = drop_block(&scenario, "emulator_unused:");
    let (out, s, _w) = run_yaml(&scenario, &[], LIMIT);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(counter(&s, "turns_ok"), 12, "{s}");
}

/// `yaml` without the top-level block starting with `key`.
fn drop_block(yaml: &str, key: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in yaml.lines() {
        if line.starts_with(key) {
            skipping = true;
            continue;
        }
        if skipping && (line.starts_with(' ') || line.is_empty()) {
            continue;
        }
        skipping = false;
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[test]
fn captures_are_checked_when_the_file_is_loaded() {
    let cases = [
        (
            "  - send: { text: \"{{captured.order}}\" }\n",
            "no earlier step captures `order`",
        ),
        (
            "  - send: { text: hi, capture: { order: { regex: '(' } } }\n",
            "invalid regular expression",
        ),
        (
            "  - send: { text: hi, capture: { order: { from: data } } }\n",
            "needs a `path`",
        ),
        (
            "  - if: { captured: nope }\n    send: { text: hi }\n",
            "no earlier step captures `nope`",
        ),
        (
            "  - send: { text: hi, expect: { outputs: { min: 3, max: 1 } } }\n",
            "above `max: 1`",
        ),
        (
            "  - send: { text: hi, expect: { data: [{ path: order }] } }\n",
            "not a JSON Pointer",
        ),
    ];
    for (steps, want) in cases {
        let yaml = format!("name: bad\nload: {{ vus: 1 }}\nsteps:\n{steps}");
        let w = Workdir::new();
        let p = w.file("s.yaml", &yaml);
        let out = run_finalping(&["validate", p.to_str().unwrap()], LIMIT);
        assert_eq!(out.status.code(), Some(3), "{yaml}\n{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{yaml}\nwant `{want}` in\n{err}");
        assert!(err.contains("s.yaml:"), "{err}");
    }
}

// ---- diagnostics ------------------------------------------------------------

const ONE_TURN: &str = "name: one\nload: { vus: 1, iterations: 1 }\ntarget: { connect_timeout: 5s, reconnect: { max_attempts: 0 } }\nsteps:\n  - send: { text: hi }\n";

fn run_one(extra: &[&str]) -> (std::process::Output, serde_json::Value, Workdir) {
    run_yaml(ONE_TURN, extra, LIMIT)
}

#[test]
fn a_trailing_url_token_is_the_token_and_never_shown() {
    let served = serve(&["--url-token", "tok-trailing-77"]);
    let target = format!("{}/tok-trailing-77", served.url);
    let (out, s, w) = run_one(&["--target", &target]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(counter(&s, "turns_ok"), 1, "{s}");
    assert!(!text(&out).contains("tok-trailing-77"), "{}", text(&out));
    for entry in std::fs::read_dir(w.path("r")).unwrap() {
        let body = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!String::from_utf8_lossy(&body).contains("tok-trailing-77"));
    }
}

#[test]
fn url_token_flag_and_env_reach_the_endpoint() {
    let served = serve(&["--url-token", "tok-flag-88"]);
    let (out, s, _w) = run_one(&["--target", &served.url, "--url-token", "tok-flag-88"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(counter(&s, "turns_ok"), 1, "{s}");
    let w = Workdir::new();
    let p = w.file("s.yaml", ONE_TURN);
    let out_dir = w.path("r");
    let out = run_finalping_env(
        &[
            "run",
            p.to_str().unwrap(),
            "--target",
            &served.url,
            "--out",
            out_dir.to_str().unwrap(),
        ],
        &[("FINALPING_URL_TOKEN", "tok-flag-88")],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn connect_failures_carry_the_http_status_and_a_hint() {
    let served = serve(&["--url-token", "tok-good"]);
    // Wrong token: the emulator refuses the upgrade with 403.
    let (out, s, _w) = run_one(&["--target", &served.url, "--url-token", "tok-bad"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(s["errors"]["connect_http_403"], 1, "{s}");
    let hints = s["hints"].as_array().expect("hints in summary.json");
    assert!(hints[0].as_str().unwrap().contains("URL token"), "{s}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("hint: connect_http_401/403"), "{stdout}");
    // Wrong path prefix: 404, and `-vv` logs the reason, without colour codes.
    let target = format!("{}/no/such/prefix/tok-good", served.url);
    let (out, s, _w) = run_one(&["--target", &target, "-vv"]);
    assert_eq!(s["errors"]["connect_http_404"], 1, "{s}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("connect failed: server answered the WebSocket upgrade with HTTP 404"),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes in piped logs: {stderr}"
    );
    assert!(!stderr.contains("tok-good"), "{stderr}");
    // `--log-format json`: one JSON object per log line.
    let (out, _s, _w) = run_one(&["--target", &target, "-vv", "--log-format", "json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.contains("connect failed"))
        .unwrap_or_else(|| panic!("{stderr}"));
    let v: serde_json::Value = serde_json::from_str(line).expect("a JSON log line");
    assert_eq!(v["level"], "DEBUG", "{v}");
}

// ---- one CLI ------------------------------------------------------------------

#[test]
fn json_prints_the_summary_on_stdout() {
    let (out, s, _w) = run_one(&["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let printed: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    assert_eq!(printed, s);
}

#[test]
fn target_flags_are_shared_and_only_where_they_apply() {
    let help = |cmd: &str| {
        let out = run_finalping(&[cmd, "--help"], LIMIT);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    for cmd in ["run", "sweep", "capacity"] {
        let h = help(cmd);
        for flag in ["--target", "--url-token", "--set", "--seed", "--insecure"] {
            assert!(h.contains(flag), "`{cmd}` lacks {flag}:\n{h}");
        }
    }
    for cmd in ["validate", "compare", "report", "merge", "serve"] {
        assert!(
            !help(cmd).contains("--insecure"),
            "`{cmd}` offers --insecure"
        );
    }
    let w = Workdir::new();
    let p = w.file("s.yaml", ONE_TURN);
    let out = run_finalping(&["validate", p.to_str().unwrap(), "--insecure"], LIMIT);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
}

#[test]
fn capacity_takes_the_target_and_settings_of_run() {
    let served = serve(&[]);
    let w = Workdir::new();
    let p = w.file("s.yaml", ONE_TURN);
    let out_dir = w.path("cap");
    let out = run_finalping(
        &[
            "capacity",
            p.to_str().unwrap(),
            "--slo",
            "final_ping.p99 < 10s",
            "--start",
            "1",
            "--step",
            "1",
            "--max",
            "2",
            "--hold",
            "1s",
            "--refine",
            "0",
            "--self-check",
            "warn",
            "--target",
            &served.url,
            "--seed",
            "7",
            "--set",
            "target.eio=4",
            "--out",
            out_dir.to_str().unwrap(),
        ],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let step = read_json(&out_dir.join("step-1").join("summary.json"));
    assert_eq!(
        step["manifest"]["target"]["embedded_emulator"], false,
        "{step}"
    );
    assert_eq!(step["manifest"]["target"]["eio"], 4, "{step}");
    assert_eq!(step["manifest"]["seed"], 7, "{step}");
}

#[test]
fn completions_generate_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = run_finalping(&["completions", shell], LIMIT);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", text(&out));
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains("finalping"), "{shell}");
        assert!(script.contains("url-token"), "{shell}: flags missing");
    }
    let out = run_finalping(&["completions", "tcsh"], LIMIT);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
}

// ---- JSON Schema ----------------------------------------------------------------

#[test]
fn the_schema_copy_in_docs_is_current() {
    let out = run_finalping(&["schema"], LIMIT);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    let kept = std::fs::read_to_string(repo_path("docs/scenario.schema.json")).unwrap();
    assert_eq!(
        printed.trim_end(),
        kept.trim_end(),
        "docs/scenario.schema.json is stale: run `finalping schema > docs/scenario.schema.json`"
    );
    let schema: serde_json::Value = serde_json::from_str(&kept).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
}

/// The shipped files the loader accepts, and broken ones it rejects with a
/// mistake a schema can express.
#[test]
fn shipped_scenarios_match_the_schema_and_broken_ones_do_not() {
    let python = match python::venv_python("tests/python/requirements-schema.txt", "schema") {
        Ok(py) => py,
        Err(e) => panic!("{e}"),
    };
    let mut valid: Vec<std::path::PathBuf> = Vec::new();
    for dir in ["scenarios", "examples", "tests/fixtures/scenarios"] {
        for entry in std::fs::read_dir(repo_path(dir)).unwrap() {
            let p = entry.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            let shipped = dir != "tests/fixtures/scenarios" || name.starts_with("valid");
            if shipped && name.ends_with(".yaml") && is_scenario(&p) {
                valid.push(p);
            }
        }
    }
    assert!(valid.len() >= 4, "{valid:?}");
    let w = Workdir::new();
    valid.push(w.file("flow.yaml", &flow_scenario("")));
    let mut broken: Vec<std::path::PathBuf> =
        ["unknown_field", "wrong_type", "bad_eio", "bad_step"]
            .iter()
            .map(|n| repo_path(&format!("tests/fixtures/scenarios/{n}.yaml")))
            .collect();
    let base = "name: b\nload: { vus: 1 }\nsteps:\n";
    for (i, steps) in [
        "  - send: { text: hi, bogus: 1 }\n",
        "  - send: { text: hi, capture: { a: { from: output } } }\n",
        "  - if: { captured: a }\n",
        "  - send: { text: hi, expect: { outputs: { min: x } } }\n",
        "  - connect: { now: true }\n",
    ]
    .iter()
    .enumerate()
    {
        broken.push(w.file(&format!("broken{i}.yaml"), &format!("{base}{steps}")));
    }
    let schema = repo_path("docs/scenario.schema.json");
    // The loader agrees: the valid ones load, the broken ones do not.
    for p in &valid {
        let out = run_finalping(&["validate", p.to_str().unwrap()], LIMIT);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            p.display(),
            text(&out)
        );
    }
    for p in &broken {
        let out = run_finalping(&["validate", p.to_str().unwrap()], LIMIT);
        assert_eq!(
            out.status.code(),
            Some(3),
            "{}: {}",
            p.display(),
            text(&out)
        );
    }
    let mut cmd = std::process::Command::new(&python);
    cmd.arg(repo_path("tests/python/check_schema.py"))
        .arg(&schema);
    cmd.args(valid.iter().chain(&broken));
    let out = python::run(&mut cmd, "check_schema.py", Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}"));
    let report = String::from_utf8_lossy(&out.stdout).to_string();
    for p in &valid {
        assert!(report.contains(&format!("ok {}", p.display())), "{report}");
    }
    for p in &broken {
        assert!(
            report.contains(&format!("invalid {}:", p.display())),
            "{report}"
        );
    }
}

/// Scenario files (examples/ also holds CI workflow files).
fn is_scenario(p: &std::path::Path) -> bool {
    let text = std::fs::read_to_string(p).unwrap_or_default();
    text.lines()
        .any(|l| l.starts_with("steps:") || l.starts_with("scenarios:"))
}
