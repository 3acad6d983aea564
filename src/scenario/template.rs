//! Templates in scenario strings: `{{vu}}`, `{{iteration}}`, `{{uuid}}` and
//! `{{feeder.column}}` (a CSV data feeder's column, see `feeder`) are filled in
//! per render; `${env:NAME}` is resolved once, at load time, from the
//! environment (a missing variable is a load error). A [`Template`] is parsed
//! once into parts so rendering never re-parses; it keeps its source text so
//! serialising (manifests, reports) shows `${env:NAME}`, never the secret.
//! Owns parsing and rendering only; where templates appear is `model`'s business.

use super::feeder::{self, FeederRows};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The scope of `{{captured.<name>}}` (no feeder may be named so).
pub const CAPTURED: &str = "captured";

/// Placeholders accepted inside `{{...}}`, in the order hints list them.
pub const PLACEHOLDERS: [&str; 3] = ["vu", "iteration", "uuid"];

/// Values a template can refer to at render time.
#[derive(Debug, Clone, Copy, Default)]
pub struct TemplateCtx<'a> {
    /// 1-based VU number.
    pub vu: u64,
    /// 0-based iteration of that VU.
    pub iteration: u64,
    /// This iteration's feeder rows; `None` (or a feeder without a row)
    /// renders `{{feeder.column}}` as an empty string.
    pub rows: Option<&'a FeederRows>,
    /// Values captured by earlier steps of this iteration (`{{captured.name}}`;
    /// an unset one renders as an empty string).
    pub captured: Option<&'a super::Captured>,
}

/// Why a template string was rejected. `Display` says what is wrong;
/// [`TemplateError::hint`] says how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unknown placeholder `{{{{{name}}}}}`")]
    UnknownPlaceholder { name: String },
    #[error("`{{{{` is never closed with `}}}}`")]
    Unclosed,
    #[error("`${{env:` is never closed with `}}`")]
    UnclosedEnv,
    #[error("`${{env:{name}}}` is not a valid environment variable name")]
    BadEnvName { name: String },
    #[error("environment variable `{name}` is not set")]
    EnvMissing { name: String },
    #[error("environment variable `{name}` is set but empty")]
    EnvEmpty { name: String },
    #[error("environment variable `{name}` is not valid UTF-8")]
    EnvNotUnicode { name: String },
    #[error("unknown feeder `{name}` in `{{{{{name}.{column}}}}}`")]
    UnknownFeeder {
        name: String,
        column: String,
        /// The feeders the scenario declares.
        declared: Vec<String>,
    },
    /// `{{captured.name}}` where no earlier step captures `name`.
    #[error("{message}")]
    Capture { message: String, hint: String },
    #[error("feeder `{feeder}` has no column `{column}`")]
    UnknownColumn {
        feeder: String,
        column: String,
        /// The feeder's file as written in the scenario.
        file: String,
        /// Its header row.
        columns: Vec<String>,
    },
}

impl TemplateError {
    /// How to fix it, for the `hint:` line.
    pub fn hint(&self) -> String {
        let valid = valid_placeholders();
        match self {
            TemplateError::UnknownPlaceholder { name } => {
                let guess = crate::scenario::error::did_you_mean(name, &PLACEHOLDERS)
                    .map(|g| format!("did you mean `{{{{{g}}}}}`? "))
                    .unwrap_or_default();
                format!("{guess}valid placeholders: {valid}")
            }
            TemplateError::Unclosed => {
                format!("close the placeholder, e.g. `{{{{vu}}}}`; valid placeholders: {valid}")
            }
            TemplateError::UnclosedEnv | TemplateError::BadEnvName { .. } => {
                "write `${env:NAME}` with NAME made of letters, digits and `_`, e.g. `${env:COGNIGY_URL_TOKEN}`".to_string()
            }
            TemplateError::EnvMissing { name } | TemplateError::EnvEmpty { name } => {
                format!("export {name}=... before running finalping (or write the value into the scenario)")
            }
            TemplateError::EnvNotUnicode { name } => {
                format!("export {name} with a UTF-8 value")
            }
            TemplateError::Capture { hint, .. } => hint.clone(),
            TemplateError::UnknownFeeder { name, declared, .. } if declared.is_empty() => format!(
                "no feeders are declared; declare one at the top level, e.g. `feeders: {{ {name}: {{ file: data/{name}.csv }} }}` (a CSV file with a header row)"
            ),
            TemplateError::UnknownFeeder { name, declared, .. } => {
                let names: Vec<&str> = declared.iter().map(String::as_str).collect();
                crate::scenario::error::choices_hint(name, &names, "declared feeders")
            }
            TemplateError::UnknownColumn {
                column,
                file,
                columns,
                ..
            } => {
                let names: Vec<&str> = columns.iter().map(String::as_str).collect();
                crate::scenario::error::choices_hint(
                    column,
                    &names,
                    &format!("columns in the header row of `{file}`"),
                )
            }
        }
    }
}

fn valid_placeholders() -> String {
    let mut s = String::new();
    for p in PLACEHOLDERS {
        let _ = write!(s, "{{{{{p}}}}}, ");
    }
    s.push_str(
        "${env:NAME}, {{<feeder>.<column>}} (see `feeders:`), {{captured.<name>}} (see `capture:`)",
    );
    s
}

/// One pre-parsed piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Vu,
    Iteration,
    Uuid,
    /// `{{feeder.column}}`, resolved to indices at load time.
    Field(feeder::FieldRef),
    /// `{{captured.name}}`: a value an earlier step captured.
    Captured(std::sync::Arc<str>),
}

/// A parsed string template.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Template {
    /// What the scenario file said (with `${env:NAME}` unresolved).
    source: String,
    /// Pre-parsed parts; env variables are already resolved into literals.
    parts: Vec<Part>,
}

impl Template {
    /// A template that renders to `s` verbatim (no placeholders are interpreted).
    /// Its source is `s` too, so do not pass secrets here.
    pub fn literal(s: &str) -> Template {
        Template {
            source: s.to_string(),
            parts: vec![Part::Lit(s.to_string())],
        }
    }

    /// Parses `s`, resolving `${env:NAME}` from the environment (or from the
    /// override a loader installed, see [`with_env`]).
    pub fn parse(s: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = s;
        loop {
            let brace = rest.find("{{");
            let env = rest.find("${env:");
            let (at, is_env) = match (brace, env) {
                (Some(b), Some(e)) if e < b => (e, true),
                (Some(b), _) => (b, false),
                (None, Some(e)) => (e, true),
                (None, None) => break,
            };
            lit.push_str(&rest[..at]);
            rest = &rest[at..];
            if is_env {
                let body = &rest["${env:".len()..];
                let end = body.find('}').ok_or(TemplateError::UnclosedEnv)?;
                let name = &body[..end];
                if !is_env_name(name) {
                    return Err(TemplateError::BadEnvName {
                        name: name.to_string(),
                    });
                }
                lit.push_str(&lookup_env(name)?);
                rest = &body[end + 1..];
            } else {
                let body = &rest[2..];
                let end = body.find("}}").ok_or(TemplateError::Unclosed)?;
                let part = match body[..end].trim() {
                    "vu" => Part::Vu,
                    "iteration" => Part::Iteration,
                    "uuid" => Part::Uuid,
                    other => match other.split_once('.') {
                        Some((scope, name)) if scope.trim() == CAPTURED => {
                            let name = name.trim();
                            super::capture::check_declared(name).map_err(|(message, hint)| {
                                TemplateError::Capture { message, hint }
                            })?;
                            Part::Captured(std::sync::Arc::from(name))
                        }
                        Some((feeder, column)) => {
                            Part::Field(feeder::resolve(feeder.trim(), column.trim())?)
                        }
                        None => {
                            return Err(TemplateError::UnknownPlaceholder {
                                name: other.to_string(),
                            })
                        }
                    },
                };
                if !lit.is_empty() {
                    parts.push(Part::Lit(std::mem::take(&mut lit)));
                }
                parts.push(part);
                rest = &body[end + 2..];
            }
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(Template {
            source: s.to_string(),
            parts,
        })
    }

    /// The text as written in the scenario (env references unresolved).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// True when rendering gives the same string every time (no `{{...}}`).
    pub fn is_static(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Lit(_)))
    }

    /// True when the template refers to a feeder column (`{{users.email}}`).
    pub fn uses_feeders(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Field(_)))
    }

    /// True when the template refers to a captured value (`{{captured.name}}`).
    pub fn uses_captures(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Captured(_)))
    }

    /// Fills in the placeholders. `{{uuid}}` is a fresh v4 UUID on every call;
    /// `{{feeder.column}}` comes from `ctx.rows`.
    pub fn render(&self, ctx: &TemplateCtx) -> String {
        self.render_cow(ctx).into_owned()
    }

    /// [`Template::render`] without allocating when the template has no
    /// placeholders (the text as written is borrowed).
    pub fn render_cow(&self, ctx: &TemplateCtx) -> std::borrow::Cow<'_, str> {
        match self.parts.as_slice() {
            [] => return std::borrow::Cow::Borrowed(""),
            [Part::Lit(s)] => return std::borrow::Cow::Borrowed(s),
            _ => {}
        }
        let mut out = String::with_capacity(self.source.len() + 32);
        for part in &self.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Vu => {
                    let _ = write!(out, "{}", ctx.vu);
                }
                Part::Iteration => {
                    let _ = write!(out, "{}", ctx.iteration);
                }
                Part::Uuid => {
                    let mut buf = uuid::Uuid::encode_buffer();
                    out.push_str(uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf));
                }
                Part::Field(f) => {
                    if let Some(v) = ctx.rows.and_then(|r| r.value(f.feeder, f.column)) {
                        out.push_str(v);
                    }
                }
                Part::Captured(name) => {
                    if let Some(v) = ctx.captured.and_then(|c| c.get(name)) {
                        out.push_str(v);
                    }
                }
            }
        }
        std::borrow::Cow::Owned(out)
    }
}

/// The names of every well-formed `${env:NAME}` reference in `text`, without
/// resolving them. `deploy` uses it on a scenario's string values to map the
/// variables from a Kubernetes Secret instead of rendering them.
pub fn env_references(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("${env:") {
        rest = &rest[at + "${env:".len()..];
        if let Some(end) = rest.find('}') {
            if is_env_name(&rest[..end]) {
                names.insert(rest[..end].to_string());
            }
        }
    }
    names
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

thread_local! {
    /// Environment used instead of the process environment while a loader runs
    /// (set by [`with_env`]); `None` = read the process environment.
    static ENV_OVERRIDE: RefCell<Option<BTreeMap<String, String>>> = const { RefCell::new(None) };
}

/// Runs `f` with `${env:NAME}` resolved from `env` instead of the process
/// environment (on this thread only). Lets tests and embedders load scenarios
/// without mutating global state.
pub fn with_env<R>(env: &BTreeMap<String, String>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<BTreeMap<String, String>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            ENV_OVERRIDE.with(|o| *o.borrow_mut() = prev);
        }
    }
    let prev = ENV_OVERRIDE.with(|o| o.borrow_mut().replace(env.clone()));
    let _restore = Restore(prev);
    f()
}

fn lookup_env(name: &str) -> Result<String, TemplateError> {
    let found = ENV_OVERRIDE.with(|o| {
        o.borrow()
            .as_ref()
            .map(|map| map.get(name).cloned().ok_or(std::env::VarError::NotPresent))
    });
    let value = match found {
        Some(v) => v,
        None => std::env::var(name),
    };
    match value {
        Ok(v) if v.is_empty() => Err(TemplateError::EnvEmpty {
            name: name.to_string(),
        }),
        Ok(v) => Ok(v),
        Err(std::env::VarError::NotPresent) => Err(TemplateError::EnvMissing {
            name: name.to_string(),
        }),
        Err(std::env::VarError::NotUnicode(_)) => Err(TemplateError::EnvNotUnicode {
            name: name.to_string(),
        }),
    }
}

impl Serialize for Template {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Template::parse(&s).map_err(|e| crate::scenario::error::de_error(&e, e.hint()))
    }
}

/// One node of a pre-parsed [`TemplateValue`].
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Str(Template),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
    /// Numbers, booleans, null: rendered as is.
    Plain(serde_json::Value),
}

impl Node {
    /// True when no string leaf has a placeholder.
    fn is_static(&self) -> bool {
        match self {
            Node::Str(t) => t.is_static(),
            Node::Array(items) => items.iter().all(Node::is_static),
            Node::Object(fields) => fields.iter().all(|(_, n)| n.is_static()),
            Node::Plain(_) => true,
        }
    }

    fn parse(v: &serde_json::Value, path: &mut String) -> Result<Node, (String, TemplateError)> {
        Ok(match v {
            serde_json::Value::String(s) => {
                Node::Str(Template::parse(s).map_err(|e| (path.clone(), e))?)
            }
            serde_json::Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    let _ = write!(path, "[{i}]");
                    out.push(Node::parse(item, path)?);
                    path.truncate(len);
                }
                Node::Array(out)
            }
            serde_json::Value::Object(map) => {
                let mut out = Vec::with_capacity(map.len());
                for (k, item) in map {
                    let len = path.len();
                    let _ = write!(path, ".{k}");
                    out.push((k.clone(), Node::parse(item, path)?));
                    path.truncate(len);
                }
                Node::Object(out)
            }
            other => Node::Plain(other.clone()),
        })
    }

    fn render(&self, ctx: &TemplateCtx) -> serde_json::Value {
        match self {
            Node::Str(t) => serde_json::Value::String(t.render(ctx)),
            Node::Array(items) => items.iter().map(|n| n.render(ctx)).collect(),
            Node::Object(entries) => serde_json::Value::Object(
                entries
                    .iter()
                    .map(|(k, n)| (k.clone(), n.render(ctx)))
                    .collect(),
            ),
            Node::Plain(v) => v.clone(),
        }
    }
}

/// Any YAML/JSON value whose string leaves are templates (object keys are not).
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateValue {
    /// As written (env references unresolved); what `Serialize` emits.
    source: serde_json::Value,
    tree: Node,
    /// The rendered value, when no leaf has a placeholder (rendered once).
    fixed: Option<serde_json::Value>,
}

impl TemplateValue {
    /// Pre-parses every string leaf of `value`. The error names the leaf's path
    /// (e.g. `.user.name`, `[2]`; empty for the root).
    pub fn parse(value: serde_json::Value) -> Result<TemplateValue, (String, TemplateError)> {
        let tree = Node::parse(&value, &mut String::new())?;
        let fixed = tree.is_static().then(|| {
            tree.render(&TemplateCtx {
                vu: 0,
                iteration: 0,
                rows: None,
                captured: None,
            })
        });
        Ok(TemplateValue {
            source: value,
            tree,
            fixed,
        })
    }

    /// The value as written in the scenario.
    pub fn source(&self) -> &serde_json::Value {
        &self.source
    }

    /// The value with every string leaf rendered.
    pub fn render(&self, ctx: &TemplateCtx) -> serde_json::Value {
        self.render_cow(ctx).into_owned()
    }

    /// [`TemplateValue::render`], borrowed when no leaf has a placeholder.
    pub fn render_cow(&self, ctx: &TemplateCtx) -> std::borrow::Cow<'_, serde_json::Value> {
        match &self.fixed {
            Some(v) => std::borrow::Cow::Borrowed(v),
            None => std::borrow::Cow::Owned(self.tree.render(ctx)),
        }
    }
}

impl Serialize for TemplateValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.source.serialize(s)
    }
}

impl<'de> Deserialize<'de> for TemplateValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        TemplateValue::parse(v).map_err(|(path, e)| {
            let what = if path.is_empty() {
                e.to_string()
            } else {
                format!("{e} (in `{}`)", path.trim_start_matches('.'))
            };
            crate::scenario::error::de_error(&what, e.hint())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const CTX: TemplateCtx = TemplateCtx {
        vu: 7,
        iteration: 3,
        rows: None,
        captured: None,
    };

    #[test]
    fn env_references_lists_each_well_formed_name_once() {
        let text = "url: ${env:URL}/x\ntoken: \"${env:TOK}${env:URL}\"\nbad: ${env:1X} ${env:OPEN";
        let names: Vec<String> = env_references(text).into_iter().collect();
        assert_eq!(names, ["TOK", "URL"]);
        assert!(env_references("no references").is_empty());
    }

    #[test]
    fn renders_vu_and_iteration() {
        let t = Template::parse("user-{{vu}}-it{{ iteration }}!").unwrap();
        assert_eq!(t.render(&CTX), "user-7-it3!");
        assert!(!t.is_static());
    }

    #[test]
    fn unchanging_text_and_values_are_borrowed_not_copied() {
        use std::borrow::Cow;
        let plain = Template::parse("hello").unwrap();
        assert!(matches!(plain.render_cow(&CTX), Cow::Borrowed("hello")));
        let templated = Template::parse("vu {{vu}}").unwrap();
        assert!(matches!(templated.render_cow(&CTX), Cow::Owned(s) if s == "vu 7"));
        let fixed = TemplateValue::parse(serde_json::json!({"a": ["x", 1]})).unwrap();
        assert!(
            matches!(fixed.render_cow(&CTX), Cow::Borrowed(v) if *v == serde_json::json!({"a": ["x", 1]}))
        );
        let per_vu = TemplateValue::parse(serde_json::json!({"a": ["{{vu}}", 1]})).unwrap();
        assert!(
            matches!(per_vu.render_cow(&CTX), Cow::Owned(v) if v == serde_json::json!({"a": ["7", 1]}))
        );
    }

    #[test]
    fn uuid_is_fresh_per_render() {
        let t = Template::parse("{{uuid}}").unwrap();
        let (a, b) = (t.render(&CTX), t.render(&CTX));
        assert_ne!(a, b);
        let parsed = uuid::Uuid::parse_str(&a).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
    }

    #[test]
    fn plain_text_is_static() {
        let t = Template::parse("hello world").unwrap();
        assert!(t.is_static());
        assert_eq!(t.render(&CTX), "hello world");
        assert_eq!(Template::parse("").unwrap().render(&CTX), "");
    }

    #[test]
    fn unknown_placeholder_lists_valid_ones() {
        let e = Template::parse("hi {{vuu}}").unwrap_err();
        assert_eq!(e, TemplateError::UnknownPlaceholder { name: "vuu".into() });
        assert_eq!(e.to_string(), "unknown placeholder `{{vuu}}`");
        let hint = e.hint();
        assert!(hint.contains("did you mean `{{vu}}`"), "{hint}");
        assert!(
            hint.contains("{{vu}}, {{iteration}}, {{uuid}}, ${env:NAME}"),
            "{hint}"
        );
    }

    #[test]
    fn unclosed_braces_are_errors() {
        assert_eq!(
            Template::parse("a {{vu").unwrap_err(),
            TemplateError::Unclosed
        );
        assert_eq!(
            Template::parse("${env:X").unwrap_err(),
            TemplateError::UnclosedEnv
        );
        assert!(matches!(
            Template::parse("${env:1X}").unwrap_err(),
            TemplateError::BadEnvName { .. }
        ));
    }

    #[test]
    fn env_resolved_at_parse_and_source_kept() {
        let t = with_env(&env(&[("TOK", "s3cret")]), || {
            Template::parse("a/${env:TOK}/{{vu}}")
        })
        .unwrap();
        assert_eq!(t.render(&CTX), "a/s3cret/7");
        assert_eq!(t.source(), "a/${env:TOK}/{{vu}}");
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"a/${env:TOK}/{{vu}}\"");
        assert!(!json.contains("s3cret"));
    }

    #[test]
    fn env_value_is_not_reparsed() {
        let t = with_env(&env(&[("X", "{{vu}}")]), || Template::parse("${env:X}")).unwrap();
        assert_eq!(t.render(&CTX), "{{vu}}");
    }

    #[test]
    fn missing_or_empty_env_is_an_error_with_export_hint() {
        let e = with_env(&env(&[]), || Template::parse("${env:COGNIGY_URL_TOKEN}")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "environment variable `COGNIGY_URL_TOKEN` is not set"
        );
        assert!(e.hint().contains("export COGNIGY_URL_TOKEN=..."));
        let e = with_env(&env(&[("E", "")]), || Template::parse("${env:E}")).unwrap_err();
        assert_eq!(e, TemplateError::EnvEmpty { name: "E".into() });
    }

    #[test]
    fn with_env_restores_previous_override() {
        let outer = env(&[("A", "1")]);
        with_env(&outer, || {
            with_env(&env(&[("A", "2")]), || {
                assert_eq!(Template::parse("${env:A}").unwrap().render(&CTX), "2");
            });
            assert_eq!(Template::parse("${env:A}").unwrap().render(&CTX), "1");
        });
    }

    #[test]
    fn template_value_renders_string_leaves_only() {
        let v = serde_json::json!({"user": "vu{{vu}}", "n": 5, "list": ["{{iteration}}", true], "{{vu}}": null});
        let tv = TemplateValue::parse(v.clone()).unwrap();
        assert_eq!(
            tv.render(&CTX),
            serde_json::json!({"user": "vu7", "n": 5, "list": ["3", true], "{{vu}}": null})
        );
        assert_eq!(serde_json::to_value(&tv).unwrap(), v);
    }

    #[test]
    fn template_value_error_names_the_leaf() {
        let v = serde_json::json!({"a": {"b": ["ok", "{{nope}}"]}});
        let (path, e) = TemplateValue::parse(v).unwrap_err();
        assert_eq!(path, ".a.b[1]");
        assert!(matches!(e, TemplateError::UnknownPlaceholder { .. }));
    }
}
