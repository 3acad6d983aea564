//! Loading scenario files from tests/fixtures/scenarios/: the valid one loads with
//! every field and default in place; each broken one fails with the right
//! `file:line:col`, the offending source line with a caret under the column,
//! and a hint.

use finalping::scenario::{
    self, load, load_str_with_env, ScenarioError, Step, TemplateCtx, ThinkTime,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/scenarios")
        .join(name)
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Loads a fixture with an explicit (empty unless given) environment.
fn load_fixture_with_env(
    name: &str,
    vars: &[(&str, &str)],
) -> Result<scenario::Scenario, ScenarioError> {
    let path = fixture(name);
    let text = std::fs::read_to_string(&path).unwrap();
    load_str_with_env(&text, &path.display().to_string(), &env(vars))
}

struct Expected {
    file: &'static str,
    line: u64,
    col: u64,
    message: &'static str,
    hints: &'static [&'static str],
}

/// Asserts the whole rendered shape: header with position, source line, caret, hint.
fn assert_diagnostic(err: &ScenarioError, want: &Expected) {
    let path = fixture(want.file);
    let source = std::fs::read_to_string(&path).unwrap();
    let text = err.to_string();
    let lines: Vec<&str> = text.lines().collect();
    let ctx = format!("{}:\n{text}", want.file);

    assert_eq!(err.position(), Some((want.line, want.col)), "{ctx}");
    let header = format!("{}:{}:{}: ", path.display(), want.line, want.col);
    assert!(lines[0].starts_with(&header), "header: {ctx}");
    assert!(lines[0].contains(want.message), "message: {ctx}");

    let src_line = source.lines().nth(want.line as usize - 1).unwrap();
    let gutter = format!("{} | ", want.line);
    let at = lines
        .iter()
        .position(|l| *l == format!("{gutter}{src_line}"))
        .unwrap_or_else(|| panic!("source line missing: {ctx}"));
    let caret_line = lines[at + 1];
    let carets = &caret_line[gutter.len()..];
    assert_eq!(
        carets.find('^'),
        Some(want.col as usize - 1),
        "caret column: {ctx}"
    );
    assert!(carets.trim_start().chars().all(|c| c == '^'), "{ctx}");

    let hint = lines.last().unwrap();
    assert!(hint.starts_with("hint: "), "hint line: {ctx}");
    for h in want.hints {
        assert!(hint.contains(h), "hint should contain {h:?}: {ctx}");
    }
    assert_eq!(err.hint(), &hint["hint: ".len()..]);
}

const CASES: &[Expected] = &[
    Expected {
        file: "bad_yaml.yaml",
        line: 3,
        col: 8,
        message: "invalid YAML: mapping values are not allowed",
        hints: &["indentation"],
    },
    Expected {
        file: "unknown_field.yaml",
        line: 4,
        col: 3,
        message: "unknown field `durration`",
        hints: &[
            "did you mean `duration`?",
            "valid fields here: executor, vus, duration, iterations, ramp_up, grace, start_vus",
        ],
    },
    Expected {
        file: "wrong_type.yaml",
        line: 3,
        col: 8,
        message: "`vus` must be a positive integer, found `many`",
        hints: &["e.g. `vus: 10`"],
    },
    Expected {
        file: "bad_duration.yaml",
        line: 4,
        col: 13,
        message: "invalid duration `2 minutes`: unknown unit",
        hints: &["`250ms`", "`2m`"],
    },
    Expected {
        file: "bad_eio.yaml",
        line: 4,
        col: 8,
        message: "`eio` must be 3 or 4, found `5`",
        hints: &["`eio: 3`", "`eio: 4`"],
    },
    Expected {
        file: "bad_think.yaml",
        line: 6,
        col: 12,
        message: "think range `3s..1s` has its minimum above its maximum",
        hints: &["`1s..3s`"],
    },
    Expected {
        file: "bad_placeholder.yaml",
        line: 6,
        col: 13,
        message: "unknown placeholder `{{vuu}}`",
        hints: &[
            "did you mean `{{vu}}`?",
            "{{vu}}, {{iteration}}, {{uuid}}, ${env:NAME}",
        ],
    },
    Expected {
        file: "bad_step.yaml",
        line: 6,
        col: 5,
        message: "unknown step `sned`",
        hints: &[
            "did you mean `send`?",
            "valid steps: connect, send, think, disconnect",
        ],
    },
    Expected {
        file: "no_send.yaml",
        line: 5,
        col: 3,
        message: "`steps` has no `send`, `update_context` or `get_context` step",
        hints: &["- send:"],
    },
    Expected {
        file: "empty_steps.yaml",
        line: 4,
        col: 8,
        message: "`steps` is empty",
        hints: &["send"],
    },
    Expected {
        file: "bad_url.yaml",
        line: 3,
        col: 8,
        message: "`url` must start with http://, https://, ws:// or wss://",
        hints: &["https://"],
    },
    Expected {
        file: "zero_vus.yaml",
        line: 2,
        col: 14,
        message: "`vus` must be a positive integer, found `0`",
        hints: &[">= 1"],
    },
    Expected {
        file: "zero_iterations.yaml",
        line: 4,
        col: 15,
        message: "`iterations` must be a positive integer, found `0`",
        hints: &[">= 1"],
    },
    Expected {
        file: "zero_duration.yaml",
        line: 4,
        col: 13,
        message: "duration `0s` must be greater than zero",
        hints: &["positive duration"],
    },
];

#[test]
fn each_broken_fixture_reports_position_snippet_and_hint() {
    for case in CASES {
        let err = match load(&fixture(case.file)) {
            Ok(_) => panic!("{} loaded but must fail", case.file),
            Err(e) => e,
        };
        assert_diagnostic(&err, case);
    }
}

#[test]
fn wrong_type_renders_exactly() {
    let path = fixture("wrong_type.yaml");
    let err = load(&path).unwrap_err();
    let want = format!(
        "{}:3:8: `vus` must be a positive integer, found `many`\n  |\n3 |   vus: many\n  |        ^^^^\nhint: `vus` is the number of concurrent virtual users: a whole number >= 1, e.g. `vus: 10`",
        path.display()
    );
    assert_eq!(err.to_string(), want);
}

#[test]
fn missing_env_var_names_it_and_says_export() {
    let err = load_fixture_with_env("missing_env.yaml", &[]).unwrap_err();
    assert_diagnostic(
        &err,
        &Expected {
            file: "missing_env.yaml",
            line: 4,
            col: 14,
            message: "environment variable `COGNIGY_URL_TOKEN` is not set",
            hints: &["export COGNIGY_URL_TOKEN=..."],
        },
    );
}

#[test]
fn env_override_does_not_fall_back_to_process_env() {
    // PATH is set in every test process; the explicit environment must win.
    assert!(std::env::var_os("PATH").is_some());
    let yaml = "name: p\ntarget: { url_token: \"${env:PATH}\" }\nload: { vus: 1 }\nsteps: [ { send: { text: hi } } ]\n";
    let err = load_str_with_env(yaml, "inline.yaml", &env(&[])).unwrap_err();
    assert_eq!(err.position(), Some((2, 22)), "{err}");
    assert!(err.to_string().contains("`PATH` is not set"), "{err}");
}

#[test]
fn missing_steps_is_reported_with_a_position_and_hint() {
    let err = load(&fixture("missing_steps.yaml")).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("has no `steps`"), "{text}");
    assert_eq!(err.position(), Some((1, 1)), "{text}");
    assert!(err.hint().contains("steps: ["), "{text}");
}

#[test]
fn valid_fixture_loads_every_field() {
    let s = load(&fixture("valid.yaml")).unwrap();
    assert_eq!(s.name, "smoke");
    assert_eq!(s.seed, Some(42));

    let t = &s.target;
    assert_eq!(
        t.url.as_ref().map(|u| u.source()),
        Some("http://127.0.0.1:9")
    );
    assert_eq!(t.url_token.source(), "fixture-token");
    assert_eq!(t.eio, finalping::protocol::socketio::Eio::V4);
    assert!(!t.emit_with_ack);
    assert_eq!(t.connect_timeout.as_duration(), Duration::from_secs(5));
    let ctx = TemplateCtx {
        vu: 2,
        iteration: 5,
        ..TemplateCtx::default()
    };
    assert_eq!(t.user_id.render(&ctx), "user-2");
    assert_eq!(t.channel, "finalping", "default kept");

    let l = &s.load;
    assert_eq!(l.vus, 3);
    assert_eq!(
        l.duration.map(|d| d.as_duration()),
        Some(Duration::from_secs(120))
    );
    assert_eq!(l.iterations, Some(4));
    assert_eq!(l.ramp_up.as_duration(), Duration::from_millis(1500));
    assert_eq!(
        l.grace.as_duration(),
        Duration::from_secs(10),
        "default grace"
    );

    assert_eq!(s.steps.len(), 6);
    assert!(matches!(s.steps[0], Step::Connect));
    let Step::Send(first) = &s.steps[1] else {
        panic!("step 1 is not send: {:?}", s.steps[1])
    };
    assert_eq!(first.text.render(&ctx), "hello 2");
    assert_eq!(
        first.data.as_ref().map(|d| d.render(&ctx)),
        Some(serde_json::json!({"k": "v", "n": 1}))
    );
    assert_eq!(first.timeout.as_duration(), Duration::from_secs(10));
    let expect = first.expect.as_ref().unwrap();
    assert_eq!(expect.min_outputs, Some(1));
    assert_eq!(
        expect
            .text_contains
            .as_ref()
            .map(|t| t.render(&ctx))
            .as_deref(),
        Some("hello")
    );
    let Step::Think(think) = s.steps[2] else {
        panic!("step 2 is not think")
    };
    assert_eq!(
        think,
        ThinkTime {
            min: Duration::from_secs(1),
            max: Duration::from_secs(3)
        }
    );
    let Step::Send(second) = &s.steps[3] else {
        panic!("step 3 is not send")
    };
    assert_eq!(second.name.as_deref(), Some("second"));
    assert_eq!(second.text.render(&ctx), "turn 5");
    assert!(second.reset_flow);
    assert_eq!(
        second.timeout.as_duration(),
        Duration::from_secs(30),
        "default timeout"
    );
    assert!(
        matches!(s.steps[4], Step::Think(t) if t == ThinkTime::fixed(Duration::from_millis(500)))
    );
    assert!(matches!(s.steps[5], Step::Disconnect));

    assert_eq!(s.emulator.as_ref().map(|e| e.outputs), Some(2));
}

#[test]
fn serialised_scenario_loads_back_to_the_same_thing() {
    let s = load(&fixture("valid.yaml")).unwrap();
    let yaml = serde_saphyr::to_string(&s).unwrap();
    let again = scenario::load_str(&yaml, "round-trip.yaml")
        .unwrap_or_else(|e| panic!("{e}\n--- yaml ---\n{yaml}"));
    assert_eq!(
        serde_json::to_value(&s).unwrap(),
        serde_json::to_value(&again).unwrap()
    );
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["steps"][0], "connect");
    assert_eq!(json["steps"][2]["think"], "1s..3s");
    assert_eq!(json["steps"][4]["think"], "500ms");
}

#[test]
fn secrets_from_env_render_but_never_serialise() {
    let s = load_fixture_with_env(
        "env_secrets.yaml",
        &[
            ("FP_TEST_URL", "https://endpoint.example.com/tok-123456789"),
            ("COGNIGY_URL_TOKEN", "tok-123456789"),
        ],
    )
    .unwrap();
    let ctx = TemplateCtx::default();
    assert_eq!(s.target.url_token.render(&ctx), "tok-123456789");
    assert_eq!(
        s.target.url.as_ref().map(|u| u.render(&ctx)).as_deref(),
        Some("https://endpoint.example.com/tok-123456789")
    );
    let Step::Send(send) = &s.steps[0] else {
        panic!("not send")
    };
    assert_eq!(
        send.data.as_ref().map(|d| d.render(&ctx)),
        Some(serde_json::json!({"token": "tok-123456789"}))
    );

    let manifest = serde_json::to_string(&s).unwrap();
    assert!(!manifest.contains("tok-123456789"), "{manifest}");
    assert!(manifest.contains("${env:COGNIGY_URL_TOKEN}"), "{manifest}");
    assert!(manifest.contains("${env:FP_TEST_URL}"), "{manifest}");
}

#[test]
fn env_url_is_validated_after_resolution() {
    let err = load_fixture_with_env(
        "env_secrets.yaml",
        &[
            ("FP_TEST_URL", "endpoint.example.com"),
            ("COGNIGY_URL_TOKEN", "t"),
        ],
    )
    .unwrap_err();
    assert_eq!(err.position(), Some((3, 8)), "{err}");
    let text = err.to_string();
    assert!(text.contains("must start with http://"), "{text}");
    assert!(
        text.contains("${env:FP_TEST_URL}"),
        "names the source form: {text}"
    );
}

#[test]
fn file_not_found_is_clear_without_position() {
    let path = fixture("does-not-exist.yaml");
    let err = load(&path).unwrap_err();
    assert!(matches!(err, ScenarioError::Read { .. }));
    assert_eq!(err.position(), None);
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("{}: cannot read scenario file: ", path.display())),
        "{text}"
    );
    assert!(!text.contains(".yaml:1:"), "{text}");
    assert!(
        text.lines()
            .last()
            .unwrap()
            .starts_with("hint: check the path"),
        "{text}"
    );
}

#[test]
fn directory_and_non_utf8_files_are_unreadable_with_hints() {
    let dir = tempfile::tempdir().unwrap();
    let err = load(dir.path()).unwrap_err();
    assert!(matches!(err, ScenarioError::Read { .. }), "{err}");
    assert!(
        err.to_string().contains("cannot read scenario file"),
        "{err}"
    );

    let bin = dir.path().join("latin1.yaml");
    std::fs::write(&bin, b"name: caf\xe9\n").unwrap();
    let err = load(&bin).unwrap_err();
    assert!(matches!(err, ScenarioError::Read { .. }), "{err}");
    assert!(err.hint().contains("UTF-8"), "{err}");
}

#[test]
fn empty_file_says_what_a_scenario_needs() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.yaml");
    std::fs::write(&empty, "").unwrap();
    let err = load(&empty).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("unexpected end of file"), "{text}");
    assert!(err.hint().contains("`name`, `load` and `steps`"), "{text}");
}

#[test]
fn step_forms_have_specific_errors() {
    let cases = [
        ("- send", (5, 5), "step `send` needs settings"),
        ("- think", (5, 5), "step `think` needs a duration"),
        (
            "- connect: { x: 1 }",
            (5, 5),
            "step `connect` takes no settings",
        ),
        ("- 5", (5, 5), "expected a step, found 5"),
    ];
    for (step, pos, msg) in cases {
        let yaml =
            format!("name: s\nload: {{ vus: 1 }}\nsteps:\n  - send: {{ text: hi }}\n  {step}\n");
        let err = load_str_with_env(&yaml, "s.yaml", &env(&[])).unwrap_err();
        assert_eq!(err.position(), Some(pos), "{step}: {err}");
        assert!(err.to_string().contains(msg), "{step}: {err}");
    }
}

// ---- all errors at once ----------------------------------------------------

#[test]
fn independent_errors_are_all_reported_in_file_order() {
    let yaml = "name: many\nload:\n  vus: many\n  duration: 10s\ntarget:\n  eio: 5\nsteps:\n  - connect\n  - sned: { text: x }\n  - think: 3s..1s\n  - send: { text: ok, timeout: 0s }\nmetrics:\n  interval: 2 seconds\n";
    let err = load_str_with_env(yaml, "many.yaml", &env(&[])).unwrap_err();
    let found: Vec<(u64, u64)> = err
        .diagnostics()
        .iter()
        .map(|d| (d.line, d.column))
        .collect();
    assert_eq!(
        found,
        [(3, 8), (6, 8), (9, 5), (10, 12), (11, 32), (13, 13)],
        "{err}"
    );
    assert_eq!(err.position(), Some((3, 8)));
    let text = err.to_string();
    for want in [
        "many.yaml:3:8: `vus` must be a positive integer",
        "many.yaml:6:8: `eio` must be 3 or 4",
        "many.yaml:9:5: unknown step `sned`",
        "many.yaml:10:12: think range `3s..1s`",
        "many.yaml:11:32: duration `0s` must be greater than zero",
        "many.yaml:13:13: invalid duration `2 seconds`",
        "6 problems in many.yaml",
    ] {
        assert!(text.contains(want), "want `{want}` in\n{text}");
    }
    assert_eq!(text.matches("\nhint: ").count(), 6, "{text}");
}

#[test]
fn at_most_the_cap_of_errors_is_reported() {
    let mut yaml = String::from("name: cap\nload: { vus: 1 }\nsteps:\n");
    for _ in 0..30 {
        yaml.push_str("  - send: { text: hi, timeout: 0s }\n");
    }
    let err = load_str_with_env(&yaml, "cap.yaml", &env(&[])).unwrap_err();
    assert_eq!(err.diagnostics().len(), scenario::MAX_ERRORS, "{err}");
    assert_eq!(err.diagnostics()[0].line, 4);
}

#[test]
fn malformed_yaml_reports_only_its_first_problem() {
    let yaml = "name: x\nload: { vus: 1 }\nsteps:\n  - send: { text: hi\n  bad: [\n  - sned\n";
    let err = load_str_with_env(yaml, "bad.yaml", &env(&[])).unwrap_err();
    assert_eq!(err.diagnostics().len(), 1, "{err}");
    assert!(err.to_string().contains("invalid YAML"), "{err}");
}
