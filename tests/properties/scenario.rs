//! Scenario text: `Template::parse` never panics; text without `{{`/`${`
//! renders verbatim; templates built from known parts render to the expected
//! substitution. The YAML loader never panics on arbitrary text or on
//! mutations of `tests/fixtures/scenarios/valid.yaml`, and every error it
//! returns names the origin (`fuzz.yaml`) and carries a `hint:`.

use super::support::{any_text, config};
use finalping::scenario::{load_str_with_env, template, Template, TemplateCtx};
use proptest::prelude::*;
use std::collections::BTreeMap;

const VALID: &str = include_str!("../fixtures/scenarios/valid.yaml");
const ORIGIN: &str = "fuzz.yaml";

/// Parses with an empty environment override, so `${env:…}` never reads the
/// process environment.
fn parse_isolated(s: &str) -> Result<Template, finalping::scenario::TemplateError> {
    template::with_env(&BTreeMap::new(), || Template::parse(s))
}

/// One piece of a generated template.
#[derive(Debug, Clone)]
enum Piece {
    /// Literal text without `{` (so no `{{` can form across pieces).
    Lit(String),
    Vu(String, String),
    Iteration(String, String),
    Uuid(String, String),
    /// `${env:NAME}` with its value.
    Env(String, String),
}

fn blanks() -> impl Strategy<Value = String> {
    "[ \t]{0,2}"
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        3 => proptest::string::string_regex("[^{]{1,12}").expect("valid regex").prop_map(Piece::Lit),
        1 => (blanks(), blanks()).prop_map(|(a, b)| Piece::Vu(a, b)),
        1 => (blanks(), blanks()).prop_map(|(a, b)| Piece::Iteration(a, b)),
        1 => (blanks(), blanks()).prop_map(|(a, b)| Piece::Uuid(a, b)),
        // Env values are inserted literally, even when they look like templates.
        1 => ("[A-Z_][A-Z0-9_]{0,8}", prop_oneof![any_text(10), Just("{{vu}}".to_string())])
            .prop_filter("env values are non-empty", |(_, v)| !v.is_empty())
            .prop_map(|(n, v)| Piece::Env(n, v)),
    ]
}

/// Consumes `want` from the front of `rest`, or fails the case.
fn eat<'a>(rest: &'a str, want: &str, rendered: &str) -> Result<&'a str, TestCaseError> {
    rest.strip_prefix(want).ok_or_else(|| {
        TestCaseError::fail(format!("expected {want:?} at {rest:?} in {rendered:?}"))
    })
}

/// Mutations of a text: `(kind, position, byte)`.
fn mutate(text: &str, ops: &[(u8, usize, u8)]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for &(kind, pos, byte) in ops {
        let lines: Vec<&[u8]> = bytes.split_inclusive(|b| *b == b'\n').collect();
        let line = pos % lines.len().max(1);
        bytes = match kind % 5 {
            0 => {
                // Flip one byte.
                if let Some(b) = bytes.get_mut(pos % text.len().max(1)) {
                    *b ^= byte;
                }
                bytes
            }
            1 => lines
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != line)
                .flat_map(|(_, l)| l.iter().copied())
                .collect(),
            2 => lines
                .iter()
                .enumerate()
                .flat_map(|(i, l)| {
                    let n = if i == line { 2 } else { 1 };
                    std::iter::repeat_n(l.iter().copied(), n).flatten()
                })
                .collect(),
            3 => {
                // Insert one YAML-significant byte.
                let special = b":-{}[],#&*!|>'\" \t\n?%@`";
                let at = pos % (bytes.len() + 1);
                bytes.insert(at, special[usize::from(byte) % special.len()]);
                bytes
            }
            _ => {
                // Truncate.
                bytes.truncate(pos % (bytes.len() + 1));
                bytes
            }
        };
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn assert_error_shape(text: &str) -> Result<(), TestCaseError> {
    if let Err(e) = load_str_with_env(text, ORIGIN, &BTreeMap::new()) {
        let shown = e.to_string();
        prop_assert!(
            shown.contains(ORIGIN),
            "no origin in:\n{shown}\n--- input:\n{text}"
        );
        prop_assert!(
            shown.contains("hint:"),
            "no hint in:\n{shown}\n--- input:\n{text}"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(1500))]

    #[test]
    fn template_parse_never_panics(s in prop_oneof![
        any_text(48),
        "([^{}$]{0,4}(\\{\\{|\\}\\}|\\$\\{env:|\\$\\{|\\.|vu|uuid|iteration|[a-z]{1,3}\\.[a-z]{1,3})){0,8}",
    ]) {
        if let Ok(t) = parse_isolated(&s) {
            prop_assert_eq!(t.source(), s.as_str());
            let _ = t.render(&TemplateCtx::default());
        }
    }

    #[test]
    fn text_without_markers_renders_verbatim(s in any_text(64), vu in any::<u64>(), iteration in any::<u64>()) {
        prop_assume!(!s.contains("{{") && !s.contains("${"));
        let t = parse_isolated(&s).map_err(|e| TestCaseError::fail(format!("{s:?}: {e}")))?;
        prop_assert!(t.is_static());
        prop_assert_eq!(t.render(&TemplateCtx { vu, iteration, rows: None, captured: None }), s);
    }

    #[test]
    fn generated_templates_render_their_parts(
        pieces in proptest::collection::vec(piece(), 0..10),
        vu in any::<u64>(),
        iteration in any::<u64>(),
    ) {
        let mut source = String::new();
        let mut env = BTreeMap::new();
        for p in &pieces {
            match p {
                Piece::Lit(s) => source.push_str(s),
                Piece::Vu(a, b) => source.push_str(&format!("{{{{{a}vu{b}}}}}")),
                Piece::Iteration(a, b) => source.push_str(&format!("{{{{{a}iteration{b}}}}}")),
                Piece::Uuid(a, b) => source.push_str(&format!("{{{{{a}uuid{b}}}}}")),
                Piece::Env(name, value) => {
                    source.push_str(&format!("${{env:{name}}}"));
                    // The first value of a name wins in the expectation below.
                    env.entry(name.clone()).or_insert_with(|| value.clone());
                }
            }
        }
        let t = template::with_env(&env, || Template::parse(&source))
            .map_err(|e| TestCaseError::fail(format!("{source:?}: {e}")))?;
        prop_assert_eq!(t.source(), source.as_str());
        let rendered = t.render(&TemplateCtx { vu, iteration, rows: None, captured: None });
        let mut rest = rendered.as_str();
        for p in &pieces {
            rest = match p {
                Piece::Lit(s) => eat(rest, s, &rendered)?,
                Piece::Vu(..) => eat(rest, &vu.to_string(), &rendered)?,
                Piece::Iteration(..) => eat(rest, &iteration.to_string(), &rendered)?,
                Piece::Env(name, _) => eat(rest, env.get(name).map(String::as_str).unwrap_or_default(), &rendered)?,
                Piece::Uuid(..) => {
                    let (id, after) = rest.split_at_checked(36)
                        .ok_or_else(|| TestCaseError::fail(format!("no uuid at {rest:?}")))?;
                    let id = uuid::Uuid::parse_str(id).map_err(|e| TestCaseError::fail(format!("{id:?}: {e}")))?;
                    prop_assert_eq!(id.get_version_num(), 4);
                    after
                }
            };
        }
        prop_assert_eq!(rest, "");
    }
}

proptest! {
    #![proptest_config(config(400))]

    #[test]
    fn yaml_loader_on_arbitrary_text(text in prop_oneof![
        any_text(200),
        "[a-z_0-9:{}\\[\\],\\-\n #\"'&*!|>.]{0,200}",
    ]) {
        assert_error_shape(&text)?;
    }

    #[test]
    fn yaml_loader_on_mutated_valid_scenario(
        ops in proptest::collection::vec((any::<u8>(), any::<usize>(), 1u8..=255), 1..4),
    ) {
        assert_error_shape(&mutate(VALID, &ops))?;
    }
}

#[test]
fn the_unmutated_scenario_loads() {
    let loaded = load_str_with_env(VALID, ORIGIN, &BTreeMap::new());
    assert!(loaded.is_ok(), "{:?}", loaded.err().map(|e| e.to_string()));
}
