//! Captures and step conditions: `capture: {order: {regex: 'order (A-\d+)'}}`
//! on a `send` step takes a value from the turn's outputs (their text, or the
//! structured `data` at a JSON Pointer); later steps of the same iteration use
//! it as `{{captured.order}}` and may run only `if: {captured: order}` (with
//! `equals:` / `matches:`). Owns the YAML types, the per-iteration value store
//! [`Captured`] and the load-time check that a step only uses captures of
//! earlier steps. Evaluating captures on a turn is `engine::checks`' business.

use super::error::de_error;
use crate::pattern::Pattern;
use serde::{Deserialize, Deserializer, Serialize};
use std::cell::RefCell;
use std::sync::Arc;

/// A capture's name (`{{captured.<name>}}`): letters, digits, `_`, `-`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CaptureName(pub Arc<str>);

impl Serialize for CaptureName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl CaptureName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for CaptureName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if !is_name(&s) {
            return Err(de_error(
                &format_args!("invalid capture name `{s}`"),
                "name captures with letters, digits, `_` and `-`, starting with a letter, e.g. `order_id`; later steps use it as `{{captured.order_id}}`",
            ));
        }
        Ok(CaptureName(Arc::from(s.as_str())))
    }
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Where a capture looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaptureFrom {
    /// The outputs' text (`regex` required).
    Output,
    /// The outputs' structured `data` (`path` required, `regex` optional).
    Data,
}

/// One capture of a `send` step: the first output that yields a value wins.
#[derive(Debug, Clone, Serialize)]
pub struct Capture {
    pub from: CaptureFrom,
    /// JSON Pointer into an output's `data` (`from: data`), e.g. `/order/id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<JsonPointer>,
    /// On the text (or the value at `path`): group 1 if the pattern has one, else the whole match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regex: Option<Pattern>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct CaptureFields {
    #[serde(default)]
    from: Option<CaptureFrom>,
    #[serde(default)]
    path: Option<JsonPointer>,
    #[serde(default)]
    regex: Option<Pattern>,
}

const CAPTURE_FORM: &str = "write `order: { from: output, regex: 'order (A-\\d+)' }` (the text's group 1) or `ticket: { from: data, path: /ticket/id }` (a JSON Pointer into the output's data)";

impl<'de> Deserialize<'de> for Capture {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let f = CaptureFields::deserialize(d)?;
        let from = f.from.unwrap_or(if f.path.is_some() {
            CaptureFrom::Data
        } else {
            CaptureFrom::Output
        });
        match (from, &f.path, &f.regex) {
            (CaptureFrom::Output, None, Some(_)) | (CaptureFrom::Data, Some(_), _) => Ok(Capture {
                from,
                path: f.path,
                regex: f.regex,
            }),
            (CaptureFrom::Output, Some(_), _) => Err(de_error(
                &"a capture `from: output` takes a `regex`, not a `path`",
                CAPTURE_FORM,
            )),
            (CaptureFrom::Output, None, None) => Err(de_error(
                &"a capture `from: output` needs a `regex`",
                CAPTURE_FORM,
            )),
            (CaptureFrom::Data, None, _) => Err(de_error(
                &"a capture `from: data` needs a `path` (JSON Pointer)",
                CAPTURE_FORM,
            )),
        }
    }
}

/// An RFC 6901 JSON Pointer (`/a/0/b`; `""` is the whole value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct JsonPointer(pub String);

impl<'de> Deserialize<'de> for JsonPointer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let bad_escape = s
            .split('~')
            .skip(1)
            .any(|rest| !(rest.starts_with('0') || rest.starts_with('1')));
        if !(s.is_empty() || s.starts_with('/')) || bad_escape {
            return Err(de_error(
                &format_args!("`{s}` is not a JSON Pointer"),
                "a JSON Pointer starts with `/` and names keys or list indexes, e.g. `/order/id` or `/items/0/title` (`~1` for a `/` in a key, `~0` for `~`)",
            ));
        }
        Ok(JsonPointer(s))
    }
}

/// `if:` on a step: run it only when a capture of an earlier step got a
/// value (that `equals` a string / `matches` a pattern, when given).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    #[serde(deserialize_with = "declared_name")]
    pub captured: CaptureName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<Pattern>,
}

impl Condition {
    /// Whether the step runs with these captured values.
    pub fn holds(&self, captured: &Captured) -> bool {
        let Some(value) = captured.get(self.captured.as_str()) else {
            return false;
        };
        self.equals.as_deref().is_none_or(|e| e == value)
            && self.matches.as_ref().is_none_or(|p| p.is_match(value))
    }
}

fn declared_name<'de, D: Deserializer<'de>>(d: D) -> Result<CaptureName, D::Error> {
    let name = CaptureName::deserialize(d)?;
    check_declared(name.as_str()).map_err(|(what, hint)| de_error(&what, hint))?;
    Ok(name)
}

/// The values captured so far in one VU iteration (few; searched linearly).
/// Empty — and never allocated — when the scenario has no captures.
#[derive(Debug, Default, Clone)]
pub struct Captured(Vec<(Arc<str>, String)>);

impl Captured {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| &**n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Sets (or replaces) a value.
    pub fn set(&mut self, name: &Arc<str>, value: String) {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name.clone(), value)),
        }
    }

    /// Forgets a value (a capture that did not match this time).
    pub fn unset(&mut self, name: &str) {
        self.0.retain(|(n, _)| &**n != name);
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }
}

thread_local! {
    /// While the loader reads one `steps` list: the captures of the steps read
    /// so far. `None` outside `steps` (captures cannot be used there).
    static DECLARED: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

/// Runs `f` (reading one `steps` list) with an empty set of declared captures.
pub(crate) fn in_steps<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Vec<String>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            DECLARED.with(|d| *d.borrow_mut() = prev);
        }
    }
    let prev = DECLARED.with(|d| d.borrow_mut().replace(Vec::new()));
    let _restore = Restore(prev);
    f()
}

/// A step's captures become usable by the steps after it.
pub(crate) fn declare<'a>(names: impl Iterator<Item = &'a CaptureName>) {
    DECLARED.with(|d| {
        if let Some(list) = d.borrow_mut().as_mut() {
            list.extend(names.map(|n| n.as_str().to_string()));
        }
    });
}

/// Whether `name` was captured by an earlier step: `Err((what, hint))` if not.
pub(crate) fn check_declared(name: &str) -> Result<(), (String, String)> {
    DECLARED.with(|d| match d.borrow().as_ref() {
        None => Err((
            format!("`{{{{captured.{name}}}}}` is used outside `steps`"),
            "captured values exist only while a VU runs its steps: use them in `send` text/data/expect and `if:` of later steps".to_string(),
        )),
        Some(list) if list.iter().any(|n| n == name) => Ok(()),
        Some(list) if list.is_empty() => Err((
            format!("no earlier step captures `{name}`"),
            format!("add `capture: {{ {name}: {{ regex: '...' }} }}` to a `send` step before this one"),
        )),
        Some(list) => {
            let names: Vec<&str> = list.iter().map(String::as_str).collect();
            Err((
                format!("no earlier step captures `{name}`"),
                super::error::choices_hint(name, &names, "captured by earlier steps"),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captured_values_replace_and_unset() {
        let mut c = Captured::default();
        let order: Arc<str> = Arc::from("order");
        c.set(&order, "A-1".into());
        c.set(&order, "A-2".into());
        assert_eq!(c.get("order"), Some("A-2"));
        c.unset("order");
        assert_eq!(c.get("order"), None);
    }

    #[test]
    fn conditions_compare_the_value() {
        let mut c = Captured::default();
        c.set(&Arc::from("intent"), "refund".into());
        let cond = |equals: Option<&str>, matches: Option<&str>, name: &str| Condition {
            captured: CaptureName(Arc::from(name)),
            equals: equals.map(str::to_string),
            matches: matches.map(|m| Pattern::new(m).unwrap()),
        };
        assert!(cond(None, None, "intent").holds(&c));
        assert!(cond(Some("refund"), None, "intent").holds(&c));
        assert!(!cond(Some("order"), None, "intent").holds(&c));
        assert!(cond(None, Some("^ref"), "intent").holds(&c));
        assert!(!cond(None, None, "other").holds(&c));
    }
}
