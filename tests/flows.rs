//! Real bot flows end to end: `expect` checks, `capture:` and `if:` against
//! the emulator's scripted replies (embedded and `serve --config`); connect
//! diagnostics; the shared CLI flags, `--json` and completions; the JSON
//! Schema of scenario files checked with an independent validator.

mod common;

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
