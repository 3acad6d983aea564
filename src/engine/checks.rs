//! Judging a finished turn against its `send` step: the `expect` checks
//! (output count, text contains / matches, `data` at JSON Pointers) and the
//! step's captures (values for `{{captured.name}}` in later steps). Each
//! failed check has its own cause; a capture that finds nothing is
//! `capture_missing`. Pure functions over a [`Turn`]; Socket.IO and REST
//! turns are judged alike. A step without `expect`/`capture` costs nothing.

use crate::pattern::Pattern;
use crate::protocol::socketio::{Output, Turn};
use crate::scenario::{Capture, CaptureFrom, DataCheck, SendStep, TemplateCtx};
use serde_json::Value;
use std::borrow::Cow;
use std::sync::Arc;

/// A capture's result for the iteration's store: a value, or `None` (unset).
pub(super) type CaptureUpdate = (Arc<str>, Option<String>);

/// The cause of the first failed check (or missing capture), if any; the
/// step's capture results are appended to `captures`.
pub(super) fn judge(
    turn: &Turn,
    send: &SendStep,
    ctx: &TemplateCtx,
    captures: &mut Vec<CaptureUpdate>,
) -> Option<&'static str> {
    let failure = expectation_failure(turn, send, ctx);
    if send.capture.is_empty() {
        return failure;
    }
    let mut missing = false;
    for (name, capture) in &send.capture {
        let value = turn.outputs.iter().find_map(|o| capture_one(capture, o));
        missing |= value.is_none();
        captures.push((name.0.clone(), value));
    }
    failure.or(missing.then_some("capture_missing"))
}

/// The cause name of the first failed `expect` check, if any.
fn expectation_failure(turn: &Turn, send: &SendStep, ctx: &TemplateCtx) -> Option<&'static str> {
    let expect = send.expect.as_ref()?;
    let count = turn.outputs.len() as u64;
    let range = expect.outputs.unwrap_or(crate::scenario::OutputRange {
        min: None,
        max: None,
    });
    let min = expect.min_outputs.max(range.min);
    if min.is_some_and(|min| count < u64::from(min)) {
        return Some("expect_min_outputs");
    }
    if range.max.is_some_and(|max| count > u64::from(max)) {
        return Some("expect_max_outputs");
    }
    if let Some(needle) = &expect.text_contains {
        let needle = needle.render(ctx);
        if !texts(turn).any(|t| t.contains(&needle)) {
            return Some("expect_text_contains");
        }
    }
    if let Some(pattern) = &expect.text_matches {
        if !texts(turn).any(|t| pattern.is_match(t)) {
            return Some("expect_text_matches");
        }
    }
    if !expect.data.iter().all(|c| data_check_holds(c, turn, ctx)) {
        return Some("expect_data");
    }
    None
}

fn texts(turn: &Turn) -> impl Iterator<Item = &str> {
    turn.outputs.iter().filter_map(|o| o.text.as_deref())
}

/// Whether some output's data satisfies the check (`exists: false`: none has the path).
fn data_check_holds(check: &DataCheck, turn: &Turn, ctx: &TemplateCtx) -> bool {
    let mut values = turn
        .outputs
        .iter()
        .filter_map(|o| o.data.as_ref()?.pointer(&check.path.0));
    if check.exists == Some(false) {
        return values.next().is_none();
    }
    let expected = check.equals.as_ref().map(|e| e.render(ctx));
    values.any(|v| {
        expected.as_ref().is_none_or(|e| e == v)
            && check
                .matches
                .as_ref()
                .is_none_or(|p| p.is_match(&value_text(v)))
    })
}

/// What one output yields for a capture.
fn capture_one(capture: &Capture, output: &Output) -> Option<String> {
    match capture.from {
        CaptureFrom::Output => extract(capture.regex.as_ref()?, output.text.as_deref()?),
        CaptureFrom::Data => {
            let value = output.data.as_ref()?.pointer(&capture.path.as_ref()?.0)?;
            let text = value_text(value);
            match &capture.regex {
                Some(p) => extract(p, &text),
                None => Some(text.into_owned()),
            }
        }
    }
}

fn extract(pattern: &Pattern, text: &str) -> Option<String> {
    pattern.extract(text).map(str::to_owned)
}

/// A string as it is; any other value as its JSON text.
fn value_text(v: &Value) -> Cow<'_, str> {
    match v {
        Value::String(s) => Cow::Borrowed(s),
        other => Cow::Owned(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::socketio::TurnOutcome;
    use std::time::Instant;

    fn turn(outputs: &[(&str, Value)]) -> Turn {
        let at = Instant::now();
        Turn {
            sent_at: at,
            outputs: outputs
                .iter()
                .map(|(text, data)| Output {
                    at,
                    text: Some(text.to_string()),
                    context_version: None,
                    data: (!data.is_null()).then(|| data.clone()),
                })
                .collect(),
            outputs_received: outputs.len() as u64,
            finished_at: Some(at),
            outcome: TurnOutcome::Ok,
        }
    }

    fn send(yaml: &str) -> SendStep {
        let text = format!("name: t\nload: {{vus: 1}}\nsteps:\n  - send: {yaml}\n");
        let s = crate::scenario::load_str(&text, "t.yaml").expect("scenario");
        match s.steps[0].action() {
            crate::scenario::Step::Send(send) => send.clone(),
            other => panic!("{other:?}"),
        }
    }

    fn judged(t: &Turn, yaml: &str) -> (Option<&'static str>, Vec<CaptureUpdate>) {
        let mut out = Vec::new();
        let cause = judge(t, &send(yaml), &TemplateCtx::default(), &mut out);
        (cause, out)
    }

    #[test]
    fn each_check_has_its_cause() {
        let t = turn(&[
            (
                "Order A-17 placed",
                serde_json::json!({"order": {"id": "A-17", "n": 3}}),
            ),
            ("anything else?", Value::Null),
        ]);
        let ok = [
            "{text: x, expect: {min_outputs: 2, outputs: {min: 1, max: 2}}}",
            "{text: x, expect: {text_matches: 'A-\\d+ placed'}}",
            "{text: x, expect: {data: [{path: /order/id}, {path: /order/n, equals: 3}, {path: /order/id, matches: '^A-'}, {path: /nope, exists: false}]}}",
        ];
        for yaml in ok {
            assert_eq!(judged(&t, yaml).0, None, "{yaml}");
        }
        let failing = [
            (
                "{text: x, expect: {outputs: {min: 3}}}",
                "expect_min_outputs",
            ),
            ("{text: x, expect: {min_outputs: 3}}", "expect_min_outputs"),
            (
                "{text: x, expect: {outputs: {max: 1}}}",
                "expect_max_outputs",
            ),
            (
                "{text: x, expect: {text_contains: nope}}",
                "expect_text_contains",
            ),
            (
                "{text: x, expect: {text_matches: '^B-'}}",
                "expect_text_matches",
            ),
            (
                "{text: x, expect: {data: [{path: /order/id, equals: A-18}]}}",
                "expect_data",
            ),
            (
                "{text: x, expect: {data: [{path: /order/id, exists: false}]}}",
                "expect_data",
            ),
            (
                "{text: x, expect: {data: [{path: /order/x}]}}",
                "expect_data",
            ),
        ];
        for (yaml, cause) in failing {
            assert_eq!(judged(&t, yaml).0, Some(cause), "{yaml}");
        }
    }

    #[test]
    fn captures_take_group_one_or_the_data_value() {
        let t = turn(&[
            ("Hello", Value::Null),
            (
                "Order A-17 placed",
                serde_json::json!({"order": {"id": "A-17", "n": 3}}),
            ),
        ]);
        let (cause, out) = judged(
            &t,
            "{text: x, capture: {a: {regex: 'Order (A-\\d+)'}, b: {from: data, path: /order/n}, c: {path: /order/id, regex: '\\d+'}}}",
        );
        assert_eq!(cause, None);
        let got: Vec<(String, Option<String>)> =
            out.into_iter().map(|(n, v)| (n.to_string(), v)).collect();
        assert_eq!(
            got,
            [
                ("a".to_string(), Some("A-17".to_string())),
                ("b".to_string(), Some("3".to_string())),
                ("c".to_string(), Some("17".to_string())),
            ]
        );
        let (cause, out) = judged(&t, "{text: x, capture: {a: {regex: 'Ticket (T-\\d+)'}}}");
        assert_eq!(cause, Some("capture_missing"));
        assert_eq!(out[0].1, None);
    }
}
