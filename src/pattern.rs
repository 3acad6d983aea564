//! [`Pattern`]: a regular expression (the `regex` crate: linear-time, no
//! look-around or back-references) compiled once when a scenario or an
//! emulator config is read, serialised as its source text. Used by `expect`
//! checks, captures and `if:` conditions of scenario steps, and by the
//! emulator's scripted replies. Owns compiling and the error hint only.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Largest compiled program accepted (bounds memory per pattern).
const SIZE_LIMIT: usize = 1 << 20;

/// A compiled regular expression that remembers its source.
#[derive(Clone)]
pub struct Pattern(regex::Regex);

impl Pattern {
    /// Compiles `source`; the error says what is wrong with it.
    pub fn new(source: &str) -> Result<Pattern, String> {
        regex::RegexBuilder::new(source)
            .size_limit(SIZE_LIMIT)
            .build()
            .map(Pattern)
            .map_err(|e| match e {
                regex::Error::Syntax(s) => {
                    // The syntax error is a multi-line drawing; keep its last line.
                    let last = s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
                    format!("invalid regular expression `{source}`: {}", last.trim())
                }
                other => format!("invalid regular expression `{source}`: {other}"),
            })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn is_match(&self, text: &str) -> bool {
        self.0.is_match(text)
    }

    /// What a capture takes from `text`: group 1 when the pattern has a
    /// group (and it took part), else the whole match.
    pub fn extract<'t>(&self, text: &'t str) -> Option<&'t str> {
        let caps = self.0.captures(text)?;
        caps.get(1).or_else(|| caps.get(0)).map(|m| m.as_str())
    }

    /// `template` with `$1`, `${name}` … replaced by the groups of the first
    /// match in `text` (`None` when there is none).
    pub fn expand(&self, text: &str, template: &str) -> Option<String> {
        let caps = self.0.captures(text)?;
        let mut out = String::with_capacity(template.len() + 16);
        caps.expand(template, &mut out);
        Some(out)
    }

    /// The groups of the first match in `text`, for several expansions.
    pub fn captures<'t>(&self, text: &'t str) -> Option<regex::Captures<'t>> {
        self.0.captures(text)
    }
}

/// Hint shown with an invalid pattern.
pub const PATTERN_HINT: &str = "write a regular expression (Rust `regex` syntax: no look-around or back-references); in YAML, quote it with single quotes, e.g. 'order (A-\\d+)'";

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({:?})", self.as_str())
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let source = String::deserialize(d)?;
        Pattern::new(&source)
            .map_err(|e| serde::de::Error::custom(format!("{e}\nhint: {PATTERN_HINT}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extract_prefers_the_first_group() {
        let p = Pattern::new(r"order (A-\d+)").unwrap();
        assert_eq!(p.extract("your order A-17 is placed"), Some("A-17"));
        assert_eq!(
            Pattern::new(r"A-\d+").unwrap().extract("x A-9"),
            Some("A-9")
        );
        assert_eq!(p.extract("nothing"), None);
    }

    #[test]
    fn expand_fills_groups() {
        let p = Pattern::new(r"^order for (\w+)").unwrap();
        assert_eq!(
            p.expand("order for bob", "Order A-${1} placed").as_deref(),
            Some("Order A-bob placed")
        );
        assert_eq!(p.expand("hello", "$1"), None);
    }

    #[test]
    fn invalid_patterns_say_why() {
        let e = Pattern::new("order (").unwrap_err();
        assert!(e.starts_with("invalid regular expression `order (`"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }
}
