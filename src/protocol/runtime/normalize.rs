//! Type normalization of context values before they are encoded (docs/protocol.md
//! §2.4). Owns the one documented rule that turns any scenario value into a
//! value with the same meaning in both JSON and MessagePack:
//!
//! | input                                   | becomes                                   |
//! |-----------------------------------------|-------------------------------------------|
//! | YAML 1.1 timestamp string (`2001-12-14 21:59:43.10 -5`, `2024-05-01T10:00:00Z`, `2024-05-01t10:00:00`) | RFC 3339 / ISO-8601 string: `T` separator, offset kept (`-05:00`), `Z` when none is given (YAML 1.1 says UTC), fraction as 3, 6 or 9 digits (`2001-12-14T21:59:43.100-05:00`) |
//! | date-only string `2024-05-01`           | unchanged (already an ISO-8601 calendar date; no time or zone is invented) |
//! | NaN, +inf, -inf                         | `null`                                     |
//! | bytes (`visit_bytes`, e.g. from MessagePack bin) | standard base64 string with padding |
//! | non-string map key (`1: a`, `true: b`, `null: c`, `1.5: d`) | its JSON text (`"1"`, `"true"`, `"null"`, `"1.5"`); a sequence or map used as a key becomes its compact JSON (`"[1,2]"`) |
//! | integer outside i64/u64 (i128/u128)     | its decimal string                         |
//! | anything else                           | unchanged                                  |
//!
//! Applied recursively into sequences and maps. When two keys normalize to the
//! same string (`1: a` and `"1": b`) the later one wins.
//!
//! Notes on YAML input through serde-saphyr 2 (checked against its source):
//! YAML timestamps arrive as plain strings, so the date rule applies to every
//! string of that shape, quoted or not (JSON input has no date type either).
//! With `serde_saphyr::from_str` (default options) `.nan`/`.inf` in an untyped
//! value are a parse error and `!!binary` arrives as its base64-*decoded* UTF-8
//! text (non-UTF-8 data is an error); no deserializer path hands bytes to an
//! untyped visitor. Parse scenarios with [`yaml_options`] to get the documented
//! behaviour: NaN/inf reach the visitor (→ `null`) and a `!!binary` scalar
//! arrives as its base64 text, unchanged. serde-saphyr resolves YAML 1.1
//! booleans by default, so an unquoted `on`, `off`, `y`, `n`, `yes`, `no` is a
//! boolean, and as a map key becomes `"true"`/`"false"`: quote such keys.

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::fmt;

/// serde-saphyr options under which [`deserialize_normalized`] sees what the
/// rule above describes: non-finite floats pass through to the visitor (and
/// become `null`), `!!binary` scalars pass through as their base64 text.
/// The other options are serde-saphyr's defaults.
pub fn yaml_options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.non_finite_float_policy = serde_saphyr::options::NonFiniteFloatPolicy::PassThrough;
    options.ignore_binary_tag_for_string = true;
    options
}

/// `#[serde(deserialize_with = "deserialize_normalized")]`: accepts any value
/// and returns it normalized by the module's rule.
pub fn deserialize_normalized<'de, D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
    d.deserialize_any(NormalizingVisitor)
}

/// Normalizes a value built at run time (templates, JSON input): rewrites
/// timestamp strings, recursively. JSON cannot hold NaN, bytes or non-string
/// keys, so the date rule is the only one that applies.
pub fn normalize_json(v: Value) -> Value {
    match v {
        Value::String(s) => Value::String(normalize_string(s)),
        Value::Array(items) => Value::Array(items.into_iter().map(normalize_json).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, normalize_json(v)))
                .collect(),
        ),
        other => other,
    }
}

/// A string that is a YAML 1.1 timestamp (with a time part) becomes RFC 3339;
/// any other string is returned unchanged.
fn normalize_string(s: String) -> String {
    timestamp_to_rfc3339(&s).unwrap_or(s)
}

/// Parses the YAML 1.1 timestamp form
/// `YYYY-M-D(T|t|[ \t]+)H:MM:SS(.F)?([ \t]*(Z|[+-]H(H)?(:MM)?))?`.
/// Returns `None` for date-only strings and anything that is not a valid timestamp.
fn timestamp_to_rfc3339(s: &str) -> Option<String> {
    use chrono::{FixedOffset, NaiveDate, NaiveTime, SecondsFormat, TimeZone};
    // Cheap shape check first: every string value passes through here.
    let b = s.as_bytes();
    if b.len() < 14
        || b.len() > 64
        || !b.get(..4)?.iter().all(u8::is_ascii_digit)
        || b.get(4) != Some(&b'-')
    {
        return None;
    }
    let mut p = Cursor { s: b, i: 0 };
    let year = p.digits(4, 4)?;
    p.byte(b'-')?;
    let month = p.digits(1, 2)?;
    p.byte(b'-')?;
    let day = p.digits(1, 2)?;
    match p.peek()? {
        b'T' | b't' => p.i += 1,
        b' ' | b'\t' => p.skip_blanks(),
        _ => return None,
    }
    let hour = p.digits(1, 2)?;
    p.byte(b':')?;
    let minute = p.digits(2, 2)?;
    p.byte(b':')?;
    let second = p.digits(2, 2)?;
    let mut nanos = 0u32;
    if p.peek() == Some(b'.') {
        p.i += 1;
        let start = p.i;
        p.digits(1, 32)?;
        // Keep 9 digits (nanoseconds); extra digits are cut, not rounded.
        let kept = (p.i - start).min(9);
        let digits = s.get(start..start + kept)?;
        nanos = digits.parse::<u32>().ok()? * 10u32.pow(9 - kept as u32);
    }
    p.skip_blanks();
    let offset_secs: i32 = match p.peek() {
        None => 0,
        Some(b'Z') | Some(b'z') => {
            p.i += 1;
            0
        }
        Some(sign @ (b'+' | b'-')) => {
            p.i += 1;
            let h = p.digits(1, 2)? as i32;
            let m = if p.peek() == Some(b':') {
                p.i += 1;
                p.digits(2, 2)? as i32
            } else {
                0
            };
            if h > 23 || m > 59 {
                return None;
            }
            let secs = h * 3600 + m * 60;
            if sign == b'-' {
                -secs
            } else {
                secs
            }
        }
        Some(_) => return None,
    };
    if p.i != b.len() {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(year as i32, month, day)?;
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?;
    let offset = FixedOffset::east_opt(offset_secs)?;
    let dt = offset.from_local_datetime(&date.and_time(time)).single()?;
    Some(dt.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// Byte cursor for the timestamp parser.
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn byte(&mut self, want: u8) -> Option<()> {
        (self.peek()? == want).then(|| self.i += 1)
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    /// Reads `min..=max` ASCII digits; the value saturates (only used for
    /// fields of at most 4 digits, fractions are re-read from the text).
    fn digits(&mut self, min: usize, max: usize) -> Option<u32> {
        let start = self.i;
        let mut value: u32 = 0;
        while self.i - start < max {
            match self.peek() {
                Some(c @ b'0'..=b'9') => {
                    value = value.saturating_mul(10).saturating_add(u32::from(c - b'0'));
                    self.i += 1;
                }
                _ => break,
            }
        }
        (self.i - start >= min).then_some(value)
    }
}

/// Standard base64 (RFC 4648 §4) with `=` padding.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b0 = chunk.first().copied().unwrap_or(0);
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let n = (u32::from(b0) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        let sextet = |shift: u32| char::from(ALPHABET[((n >> shift) & 63) as usize]);
        out.push(sextet(18));
        out.push(sextet(12));
        out.push(if chunk.len() > 1 { sextet(6) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(0) } else { '=' });
    }
    out
}

/// The string form of a normalized map key.
fn key_string(key: Value) -> String {
    match key {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

fn float(v: f64) -> Value {
    Number::from_f64(v).map_or(Value::Null, Value::Number)
}

/// Builds a normalized [`Value`] from any self-describing deserializer.
struct NormalizingVisitor;

/// The same visitor as a seed, for elements, keys and values.
struct Seed;

impl<'de> de::DeserializeSeed<'de> for Seed {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(NormalizingVisitor)
    }
}

impl<'de> Visitor<'de> for NormalizingVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any value (scalar, sequence or map)")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or_else(|_| Value::String(v.to_string()), Value::from))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(u64::try_from(v).map_or_else(|_| Value::String(v.to_string()), Value::from))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(float(v))
    }

    fn visit_char<E: de::Error>(self, v: char) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(normalize_string(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(normalize_string(v)))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::String(base64(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(NormalizingVisitor)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(NormalizingVisitor)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element_seed(Seed)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key_seed(Seed)? {
            let value = map.next_value_seed(Seed)?;
            out.insert(key_string(key), value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Deserialize)]
    struct Vars {
        #[serde(deserialize_with = "deserialize_normalized")]
        vars: Value,
    }

    fn yaml(text: &str) -> Value {
        serde_saphyr::from_str_with_options::<Vars>(text, yaml_options())
            .map(|v| v.vars)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn yaml_timestamps_become_rfc3339_nested() {
        let v = yaml(
            "vars:\n  day: 2024-05-01\n  utc: 2024-05-01T10:00:00Z\n  spaced: 2001-12-14 21:59:43.10 -5\n  \
             list: [2001-12-15t02:59:43.1Z, {at: '2001-12-14 21:59:43.10 +05:30'}]\n  \
             local: 2024-05-01 10:00:00\n  notdate: 2024-13-01T10:00:00Z\n  text: 'meet 2024-05-01T10:00:00Z'\n",
        );
        assert_eq!(
            v,
            json!({
                "day": "2024-05-01",
                "utc": "2024-05-01T10:00:00Z",
                "spaced": "2001-12-14T21:59:43.100-05:00",
                "list": ["2001-12-15T02:59:43.100Z", {"at": "2001-12-14T21:59:43.100+05:30"}],
                "local": "2024-05-01T10:00:00Z",
                "notdate": "2024-13-01T10:00:00Z",
                "text": "meet 2024-05-01T10:00:00Z",
            })
        );
    }

    #[test]
    fn non_finite_floats_become_null_nested() {
        let v =
            yaml("vars:\n  a: .nan\n  b: [.inf, -.inf, 1.5]\n  c: {d: .NaN}\n  e: !!float .inf\n");
        assert_eq!(
            v,
            json!({"a": null, "b": [null, null, 1.5], "c": {"d": null}, "e": null})
        );
    }

    #[test]
    fn non_string_keys_become_strings_nested() {
        let v = yaml(
            "vars:\n  1: a\n  true: b\n  null: c\n  1.5: d\n  -3: e\n  nested:\n    - {2: x, false: z}\n  ? [1, 2]\n  : f\n",
        );
        assert_eq!(
            v,
            json!({
                "1": "a", "true": "b", "null": "c", "1.5": "d", "-3": "e",
                "nested": [{"2": "x", "false": "z"}],
                "[1,2]": "f",
            })
        );
    }

    #[test]
    fn yaml_binary_arrives_as_its_base64_text() {
        let v = yaml("vars:\n  blob: !!binary SGVsbG8=\n  deep: [{b: !!binary AAEC/w==}]\n");
        assert_eq!(v, json!({"blob": "SGVsbG8=", "deep": [{"b": "AAEC/w=="}]}));
    }

    #[test]
    fn default_serde_saphyr_options_reject_nan_so_yaml_options_are_needed() {
        assert!(serde_saphyr::from_str::<Vars>("vars: {a: .nan}\n").is_err());
    }

    #[test]
    fn plain_scalars_are_unchanged() {
        let v = yaml("vars:\n  s: hello\n  i: -7\n  u: 18446744073709551615\n  f: 2.5\n  b: false\n  nil: ~\n  q: '1'\n  on: yes\n");
        assert_eq!(
            v,
            json!({"s": "hello", "i": -7, "u": u64::MAX, "f": 2.5, "b": false, "nil": null, "q": "1", "true": true})
        );
    }

    #[test]
    fn bytes_and_wide_integers_from_other_deserializers() {
        // MessagePack carries real binary and map keys of any type.
        let mut map = std::collections::BTreeMap::new();
        map.insert(7u8, serde_bytes_like(vec![0, 1, 2, 255]));
        let bytes = rmp_serde::to_vec(&map).unwrap();
        let mut de = rmp_serde::Deserializer::new(&bytes[..]);
        let v = deserialize_normalized(&mut de).unwrap();
        assert_eq!(v, json!({"7": "AAEC/w=="}));

        let v: Value = NormalizingVisitor
            .visit_i128::<serde_json::Error>(i128::MAX)
            .unwrap();
        assert_eq!(v, json!(i128::MAX.to_string()));
        let v: Value = NormalizingVisitor
            .visit_u128::<serde_json::Error>(5)
            .unwrap();
        assert_eq!(v, json!(5));
    }

    /// A byte buffer that serializes as MessagePack bin.
    fn serde_bytes_like(v: Vec<u8>) -> impl serde::Serialize {
        struct B(Vec<u8>);
        impl serde::Serialize for B {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&self.0)
            }
        }
        B(v)
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), want);
        }
    }

    #[test]
    fn normalize_json_rewrites_date_strings_recursively() {
        let v = normalize_json(json!({
            "a": "2001-12-14 21:59:43.10 -5",
            "b": ["2024-05-01 10:00:00", 1, null, {"c": "2024-05-01"}],
            "d": "2024-02-30 10:00:00",
        }));
        assert_eq!(
            v,
            json!({
                "a": "2001-12-14T21:59:43.100-05:00",
                "b": ["2024-05-01T10:00:00Z", 1, null, {"c": "2024-05-01"}],
                "d": "2024-02-30 10:00:00",
            })
        );
    }

    #[test]
    fn timestamp_parser_rejects_near_misses_without_panicking() {
        for s in [
            "2024-05-01T10:00",
            "2024-05-01T10:00:00+",
            "2024-05-01T10:00:00+25",
            "2024-05-01T10:00:00.Z",
            "2024-05-01T10:00:00Zjunk",
            "2024-05-01T1:00:00:00",
            "20240501T100000Z",
            "2024-05-01X10:00:00",
            "ÿÿÿÿ-05-01T10:00:00Z",
        ] {
            assert_eq!(timestamp_to_rfc3339(s), None, "{s}");
        }
        assert_eq!(
            timestamp_to_rfc3339("2024-05-01T10:00:00.123456789123Z").as_deref(),
            Some("2024-05-01T10:00:00.123456789Z")
        );
        assert_eq!(
            timestamp_to_rfc3339("2024-5-1 1:02:03 +01").as_deref(),
            Some("2024-05-01T01:02:03+01:00")
        );
    }
}
