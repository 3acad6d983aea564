//! Scenario load errors: what is wrong, where (`file:line:col` plus the source
//! line with a caret) and how to fix it (`hint:`). Turns serde-saphyr errors
//! into that shape; owns no parsing of its own.
//!
//! Validation inside `Deserialize` impls reports through [`de_error`], which
//! packs a hint into the serde message; serde-saphyr attaches the position of
//! the offending node, and [`ScenarioError::from_yaml`] unpacks both.

use serde_saphyr::{Error as YamlError, ExternalMessageSource, MessageFormatter};
use std::fmt;
use std::path::PathBuf;

/// Separates the message from the hint inside a serde custom error message.
const HINT_SEP: &str = "\nhint: ";

/// How to fix malformed YAML, in general.
const YAML_SYNTAX_HINT: &str = "check the indentation (spaces only, children indented under their parent), that each `key: value` has a space after the colon, and quote values containing `: `, `#`, `{` or `[`";

/// A serde error carrying `what` and a `hint` (split apart again when rendered).
pub(crate) fn de_error<E: serde::de::Error>(what: &dyn fmt::Display, hint: impl fmt::Display) -> E {
    E::custom(format!("{what}{HINT_SEP}{hint}"))
}

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read (no position to show).
    #[error("{}: cannot read scenario file: {source}\nhint: {hint}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
        hint: String,
    },
    /// Malformed YAML or an invalid value, with its position.
    #[error("{0}")]
    Invalid(Box<Diagnostic>),
    /// Several independent problems of one file, in the order found (the
    /// first is the one a single-error load reports).
    #[error("{}", several(.0))]
    Several(Vec<Diagnostic>),
}

fn several(all: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in all {
        out.push_str(&d.to_string());
        out.push_str("\n\n");
    }
    let origin = all.first().map_or("", |d| d.origin.as_str());
    out.push_str(&format!("{} problems in {origin}", all.len()));
    out
}

/// A problem at a position in a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// File name (or other origin label) shown before the position.
    pub origin: String,
    /// 1-based line; 0 when unknown.
    pub line: u64,
    /// 1-based column (in characters); 0 when unknown.
    pub column: u64,
    /// What is wrong.
    pub message: String,
    /// The offending source line with a caret under the column, when known.
    pub snippet: Option<String>,
    /// How to fix it.
    pub hint: String,
}

impl Diagnostic {
    /// Malformed YAML (not an invalid value): nothing after it can be trusted.
    pub fn is_syntax(&self) -> bool {
        self.hint == YAML_SYNTAX_HINT
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            writeln!(
                f,
                "{}:{}:{}: {}",
                self.origin,
                self.line,
                self.column,
                escape_controls(&self.message)
            )?;
        } else {
            writeln!(f, "{}: {}", self.origin, escape_controls(&self.message))?;
        }
        if let Some(snippet) = &self.snippet {
            writeln!(f, "{snippet}")?;
        }
        write!(f, "hint: {}", self.hint)
    }
}

impl ScenarioError {
    /// `(line, column)`, 1-based, when the error has a position.
    pub fn position(&self) -> Option<(u64, u64)> {
        match self {
            ScenarioError::Invalid(d) if d.line > 0 => Some((d.line, d.column)),
            ScenarioError::Several(all) => all
                .first()
                .filter(|d| d.line > 0)
                .map(|d| (d.line, d.column)),
            _ => None,
        }
    }

    /// Every problem found (one for a single error, none for a read error).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ScenarioError::Read { .. } => &[],
            ScenarioError::Invalid(d) => std::slice::from_ref(&**d),
            ScenarioError::Several(all) => all,
        }
    }

    /// The fix suggestion shown on the `hint:` line.
    pub fn hint(&self) -> &str {
        match self {
            ScenarioError::Read { hint, .. } => hint,
            ScenarioError::Invalid(d) => &d.hint,
            ScenarioError::Several(all) => all.first().map_or("", |d| d.hint.as_str()),
        }
    }

    pub(crate) fn read(path: PathBuf, source: std::io::Error) -> ScenarioError {
        let hint = match source.kind() {
            std::io::ErrorKind::NotFound => {
                "check the path (relative paths start from the current directory); example scenarios are in `scenarios/`"
            }
            std::io::ErrorKind::PermissionDenied => "make the file readable (`chmod +r`)",
            std::io::ErrorKind::InvalidData => "save the file as UTF-8 text",
            std::io::ErrorKind::IsADirectory => "pass a .yaml file, not a directory",
            _ => "pass the path of a readable scenario .yaml file",
        };
        ScenarioError::Read {
            path,
            source,
            hint: hint.to_string(),
        }
    }

    /// Converts a serde-saphyr error on `text` (labelled `origin`).
    pub(crate) fn from_yaml(err: &YamlError, text: &str, origin: &str) -> ScenarioError {
        let (line, column, span_len) = err
            .location()
            .map(|l| (l.line(), l.column(), l.span().len()))
            .unwrap_or((0, 0, 0));
        let src_line = line_of(text, line);
        let (message, hint) = explain(err, src_line, column);
        ScenarioError::Invalid(Box::new(Diagnostic {
            origin: origin.to_string(),
            line,
            column,
            message,
            snippet: src_line.map(|l| snippet(l, line, column, span_len)),
            hint,
        }))
    }
}

impl ScenarioError {
    /// An error about a whole top-level section (`key:` at column 1), found
    /// after parsing; points at that key, or at line 1 when it is absent.
    pub(crate) fn at_top_level_key(
        text: &str,
        origin: &str,
        key: &str,
        message: String,
        hint: String,
    ) -> ScenarioError {
        let prefix = format!("{key}:");
        let line = text
            .lines()
            .position(|l| l.starts_with(&prefix))
            .map_or(1, |i| i as u64 + 1);
        let src_line = line_of(text, line);
        ScenarioError::Invalid(Box::new(Diagnostic {
            origin: origin.to_string(),
            line,
            column: 1,
            message,
            snippet: src_line.map(|l| snippet(l, line, 1, key.len() as u64)),
            hint,
        }))
    }
}

/// The 1-based `line` of `text`, if it exists.
fn line_of(text: &str, line: u64) -> Option<&str> {
    let idx = usize::try_from(line.checked_sub(1)?).ok()?;
    text.lines().nth(idx).map(|l| l.trim_end_matches('\r'))
}

/// How one character of a file is shown in a message: control characters
/// (tabs kept) and bidirectional overrides as `\u{…}` escapes, so a file
/// cannot rewrite the terminal or reorder what the message shows.
fn shown_char(c: char) -> std::borrow::Cow<'static, str> {
    let bidi = matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if (c.is_control() && c != '\t') || bidi {
        format!("\\u{{{:04x}}}", c as u32).into()
    } else {
        c.to_string().into()
    }
}

/// `text` with control and bidi characters escaped (see [`shown_char`]).
pub fn escape_controls(text: &str) -> String {
    text.chars().map(shown_char).collect()
}

/// `  3 |   vus: many` / `    |        ^^^^` with the caret run under the
/// node (`span_len` characters when serde-saphyr knows it, else the token).
/// Control and bidi characters of the line are shown escaped, the caret
/// still under the node.
fn snippet(src: &str, line: u64, column: u64, span_len: u64) -> String {
    let gutter = line.to_string();
    let pad = " ".repeat(gutter.len());
    let col0 = usize::try_from(column.saturating_sub(1)).unwrap_or(0);
    let width_of = |c: char| shown_char(c).chars().count();
    // Keep tabs so the caret lines up with what the terminal shows.
    let lead: String = src
        .chars()
        .take(col0)
        .map(|c| {
            if c == '\t' {
                "\t".to_string()
            } else {
                " ".repeat(width_of(c))
            }
        })
        .collect();
    let rest: Vec<char> = src.chars().skip(col0).collect();
    let chars = match usize::try_from(span_len) {
        Ok(n) if n > 0 => n.min(rest.len().max(1)),
        _ => token_width(rest.iter().copied()),
    };
    let width: usize = rest.iter().take(chars).map(|&c| width_of(c)).sum();
    format!(
        "{pad} |\n{gutter} | {}\n{pad} | {lead}{}",
        escape_controls(src),
        "^".repeat(width.max(1))
    )
}

/// Width of the token starting here: a quoted string up to its closing quote,
/// else up to whitespace or flow punctuation.
fn token_width(mut it: impl Iterator<Item = char>) -> usize {
    match it.next() {
        None => 1,
        Some(q @ ('"' | '\'')) => {
            let mut n = 1;
            for c in it {
                n += 1;
                if c == q {
                    break;
                }
            }
            n
        }
        Some(_) => {
            1 + it
                .take_while(|c| !c.is_whitespace() && !",]}#".contains(*c))
                .count()
        }
    }
}

/// The mapping key a value at `column` of `line` belongs to (`vus` in `  vus: many`).
fn key_before(line: Option<&str>, column: u64) -> Option<String> {
    let line = line?;
    let col0 = usize::try_from(column.saturating_sub(1)).ok()?;
    let prefix: String = line.chars().take(col0).collect();
    let (left, _) = prefix.rsplit_once(':')?;
    let key: String = left
        .trim_end()
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    (!key.is_empty()).then_some(key)
}

/// The scalar text at `column` (for messages like "found `many`").
fn token_at(line: Option<&str>, column: u64) -> Option<String> {
    let col0 = usize::try_from(column.saturating_sub(1)).ok()?;
    let rest: String = line?.chars().skip(col0).collect();
    let w = token_width(rest.chars());
    let tok: String = rest.chars().take(w).collect();
    (!tok.trim().is_empty()).then_some(tok)
}

/// `(message, hint)` for a serde-saphyr error.
fn explain(err: &YamlError, line: Option<&str>, column: u64) -> (String, String) {
    let err = unwrap(err);
    let key = key_before(line, column);
    match err {
        YamlError::Message { msg, .. } | YamlError::SerdeVariantId { msg, .. } => {
            match msg.split_once(HINT_SEP) {
                Some((what, hint)) => (what.to_string(), hint.to_string()),
                None => (msg.clone(), generic_hint(key.as_deref(), None)),
            }
        }
        YamlError::ExternalMessage { source, msg, .. }
            if matches!(**source, ExternalMessageSource::Parser(_)) =>
        {
            (format!("invalid YAML: {msg}"), YAML_SYNTAX_HINT.to_string())
        }
        YamlError::SerdeUnknownField {
            field, expected, ..
        } => (
            format!("unknown field `{field}`"),
            choices_hint(field, expected, "valid fields here"),
        ),
        YamlError::SerdeUnknownVariant {
            variant, expected, ..
        } => (
            format!("unknown value `{variant}`"),
            choices_hint(variant, expected, "valid values"),
        ),
        YamlError::SerdeMissingField { field, .. } => (
            format!("missing required field `{field}` in the mapping marked below"),
            missing_hint(field),
        ),
        YamlError::SerdeInvalidType {
            unexpected,
            expected,
            ..
        } => {
            let want = friendly(expected);
            (
                format!("expected {want}, found {unexpected}"),
                generic_hint(key.as_deref(), Some(expected)),
            )
        }
        YamlError::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => (
            format!(
                "invalid value {unexpected}: expected {}",
                friendly(expected)
            ),
            generic_hint(key.as_deref(), Some(expected)),
        ),
        YamlError::InvalidScalar { ty, .. } => {
            let found = token_at(line, column)
                .map(|t| format!(", found `{t}`"))
                .unwrap_or_default();
            (
                format!("expected {}{found}", friendly(ty)),
                generic_hint(key.as_deref(), Some(ty)),
            )
        }
        YamlError::InvalidBooleanStrict { .. } => (
            "expected `true` or `false`".to_string(),
            generic_hint(key.as_deref(), Some("bool")),
        ),
        YamlError::NullIntoString { .. } => (
            "a value is missing here".to_string(),
            "write a value after the `:` (an empty string is written `\"\"`)".to_string(),
        ),
        YamlError::DuplicateMappingKey { key, .. } => (
            match key {
                Some(k) => format!("duplicate key `{k}`"),
                None => "duplicate key".to_string(),
            },
            "each key may appear once per mapping; remove or merge the repeated one".to_string(),
        ),
        YamlError::Eof { .. } => (
            "unexpected end of file".to_string(),
            "the file is empty or cut off; a scenario needs at least `name`, `load` and `steps`"
                .to_string(),
        ),
        YamlError::MultipleDocuments { .. } => (
            "more than one YAML document (`---`) in the file".to_string(),
            "keep one scenario per file".to_string(),
        ),
        YamlError::Unexpected { expected, .. } => (
            format!("expected {}", friendly(expected)),
            generic_hint(key.as_deref(), Some(expected)),
        ),
        other => {
            let msg = saphyr_message(other);
            (msg, generic_hint(key.as_deref(), None))
        }
    }
}

/// serde-saphyr's own user-facing wording, for errors we have no better words for.
fn saphyr_message(err: &YamlError) -> String {
    serde_saphyr::UserMessageFormatter
        .format_message(err)
        .into_owned()
}

/// Strips snippet and alias wrappers down to the error that says what happened.
fn unwrap(mut err: &YamlError) -> &YamlError {
    loop {
        match err {
            YamlError::WithSnippet { error, .. } | YamlError::AliasError { error, .. } => {
                err = error
            }
            other => return other,
        }
    }
}

/// Human wording for serde / serde-saphyr "expected" strings.
fn friendly(expected: &str) -> String {
    let e = expected.trim();
    let s = match e {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number (0 or more)",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        "bool" | "boolean" | "a boolean" => "`true` or `false`",
        "a string" | "string" | "string scalar" | "a borrowed string" => "a string",
        "a sequence" | "sequence start" => "a list (`- item` lines or `[a, b]`)",
        "a map" | "mapping start" => "`key: value` settings",
        _ if e.starts_with("struct ") => "`key: value` settings",
        _ if e.starts_with("option") || e.starts_with("Option") => "a value",
        _ => return e.to_string(),
    };
    s.to_string()
}

/// A hint from the key the value belongs to and the expected type.
fn generic_hint(key: Option<&str>, expected: Option<&str>) -> String {
    let kind = expected.map(str::trim).unwrap_or("");
    let example = match kind {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" | "i8" | "i16" | "i32" | "i64" | "i128"
        | "isize" => Some("3"),
        "f32" | "f64" => Some("1.5"),
        "bool" | "boolean" | "a boolean" => Some("true"),
        "a string" | "string" | "string scalar" => Some("\"text\""),
        "a sequence" | "sequence start" => Some("[a, b]"),
        "a map" | "mapping start" => Some("{ key: value }"),
        _ if kind.starts_with("struct ") => Some("{ key: value }"),
        _ => None,
    };
    match (key, example) {
        (Some(k), Some(ex)) => format!("write it like `{k}: {ex}`"),
        (None, Some("{ key: value }")) => "write `key: value` lines here (a scenario file itself is a mapping with `name`, `load` and `steps`)".to_string(),
        (None, Some(ex)) => format!("write a value like `{ex}`"),
        (Some(k), None) => format!("fix the value of `{k}` at the marked position"),
        (None, None) => "fix the value at the marked position".to_string(),
    }
}

fn missing_hint(field: &str) -> String {
    match field {
        "name" => "add `name: my-scenario` at the top level".to_string(),
        "load" => "add a `load:` block, e.g. `load: { vus: 10, duration: 1m }`".to_string(),
        "steps" => {
            "add a `steps:` list, e.g. `steps: [connect, { send: { text: \"hi\" } }, disconnect]`"
                .to_string()
        }
        "vus" => "add `vus: 10` (the number of concurrent virtual users)".to_string(),
        other => format!("add `{other}: ...`"),
    }
}

/// `valid fields here: a, b, c` plus a "did you mean" when one is close.
pub(crate) fn choices_hint(got: &str, valid: &[&str], label: &str) -> String {
    let list = valid.join(", ");
    match did_you_mean(got, valid) {
        Some(g) => format!("did you mean `{g}`? {label}: {list}"),
        None => format!("{label}: {list}"),
    }
}

/// The closest of `candidates` to `got`, if it is close enough to be a typo.
pub(crate) fn did_you_mean<'a>(got: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let got = got.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (edit_distance(&got, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let sub = prev.get(j).copied().unwrap_or(0) + usize::from(ca != *cb);
            let del = prev.get(j + 1).copied().unwrap_or(0) + 1;
            let ins = cur.get(j).copied().unwrap_or(0) + 1;
            cur.push(sub.min(del).min(ins));
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_you_mean_finds_typos_only() {
        let steps = ["connect", "send", "think", "disconnect"];
        assert_eq!(did_you_mean("sned", &steps), Some("send"));
        assert_eq!(did_you_mean("conect", &steps), Some("connect"));
        assert_eq!(did_you_mean("banana", &steps), None);
    }

    #[test]
    fn snippet_escapes_control_and_bidi_characters() {
        let s = snippet("name: a\u{202e}b\u{1b}[2J: x", 2, 9, 0);
        assert!(!s.contains('\u{202e}') && !s.contains('\u{1b}'), "{s:?}");
        assert!(s.contains("a\\u{202e}b\\u{001b}[2J"), "{s}");
        let shown = escape_controls("unknown field `\u{2066}x`");
        assert_eq!(shown, "unknown field `\\u{2066}x`");
    }

    #[test]
    fn snippet_puts_caret_under_token() {
        let s = snippet("  vus: many", 3, 8, 0);
        assert_eq!(s, "  |\n3 |   vus: many\n  |        ^^^^");
        let s = snippet("\tx: \"a b\" # c", 12, 5, 0);
        assert_eq!(s, "   |\n12 | \tx: \"a b\" # c\n   | \t   ^^^^^");
        // A known span wins (multi-word plain scalar), clamped to the line.
        let s = snippet("d: 2 minutes", 1, 4, 9);
        assert_eq!(s, "  |\n1 | d: 2 minutes\n  |    ^^^^^^^^^");
        let s = snippet("d: x", 1, 4, 40);
        assert_eq!(s, "  |\n1 | d: x\n  |    ^");
    }

    #[test]
    fn key_before_finds_the_owning_key() {
        assert_eq!(key_before(Some("  vus: many"), 8).as_deref(), Some("vus"));
        assert_eq!(
            key_before(Some("  - send: { text: hi, timeout: 10 }"), 33).as_deref(),
            Some("timeout")
        );
        assert_eq!(key_before(Some("- connect"), 3), None);
    }
}
