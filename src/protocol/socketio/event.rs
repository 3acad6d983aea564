//! What a turn reads from the first argument of a server event (`output`,
//! `finalPing`, `exception`), read straight from the JSON text into borrowed,
//! typed fields: `type`, `data.text`, `data.data` (kept as raw JSON text),
//! `data.data.contextVersion` and the error messages. No `serde_json::Value`
//! tree is built, so an event costs no map or string allocations; a string is
//! copied only when it holds escapes.
//!
//! [`EventArg`] is deserialized by the frame layer in its one pass over the
//! event ([`super::frame::parse_socket_as`]), so what it skips is still
//! checked as JSON. Reading is lenient in the same way as looking fields up
//! in a `Value`: a field of another JSON type than expected reads as absent,
//! a non-object argument has no fields, and of repeated keys the last one
//! counts. (Unlike a `Value`, a lone UTF-16 surrogate escape is refused only
//! in the strings read, not in skipped ones.)

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

/// The fields of an event's first argument a turn looks at.
#[derive(Debug, Default)]
pub struct EventArg<'a> {
    /// `type`, when it is a string.
    pub kind: Option<Cow<'a, str>>,
    /// `data`, when it is an object (else empty).
    pub data: OutputData<'a>,
    /// `error.message`, or `error` when it is a string.
    pub error: Option<Cow<'a, str>>,
    /// `message`, when it is a string.
    pub message: Option<Cow<'a, str>>,
}

/// The `data` object of an `output` event.
#[derive(Debug, Default)]
pub struct OutputData<'a> {
    /// `data.text`, when it is a string.
    pub text: Option<Cow<'a, str>>,
    /// `data.data` as received (JSON text); `None` when absent or `null`.
    pub data: Option<&'a RawValue>,
    /// `data.error.message`, or `data.error` when it is a string.
    pub error: Option<Cow<'a, str>>,
    /// `data.message`, when it is a string.
    pub message: Option<Cow<'a, str>>,
}

/// Any JSON value; one that is not an object has no fields.
impl<'de> Deserialize<'de> for EventArg<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Lenient::deserialize(d).map(|l| l.0)
    }
}

impl OutputData<'_> {
    /// `contextVersion` of `data.data`, when it is a non-negative integer.
    /// `data.data` is read again only when its text could hold the key.
    pub fn context_version(&self) -> Result<Option<u64>, serde_json::Error> {
        match self.data {
            Some(raw) if raw.get().contains("contextVersion") || raw.get().contains('\\') => {
                serde_json::from_str::<Lenient<ContextVersion>>(raw.get()).map(|c| c.0 .0)
            }
            _ => Ok(None),
        }
    }
}

/// `error_field.or(message)`: the message of an error-typed argument or payload.
pub fn error_text<'s>(
    error: &'s Option<Cow<'_, str>>,
    message: &'s Option<Cow<'_, str>>,
) -> Option<&'s str> {
    error.as_deref().or(message.as_deref())
}

/// A value read from one JSON shape; any other shape is skipped (its JSON
/// still checked) and reads as `Default`.
trait Shape<'de>: Default + Sized {
    fn from_str(_s: Cow<'de, str>) -> Self {
        Self::default()
    }
    fn from_u64(_v: u64) -> Self {
        Self::default()
    }
    fn from_map<A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        skip_map(map).map(|()| Self::default())
    }
}

/// Deserializes any JSON value as the [`Shape`] `T`.
struct Lenient<T>(T);

impl<'de, T: Shape<'de>> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ShapeVisitor(PhantomData)).map(Lenient)
    }
}

struct ShapeVisitor<T>(PhantomData<T>);

impl<'de, T: Shape<'de>> Visitor<'de> for ShapeVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, _v: bool) -> Result<T, E> {
        Ok(T::default())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        Ok(u64::try_from(v).map_or_else(|_| T::default(), T::from_u64))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        Ok(T::from_u64(v))
    }
    fn visit_f64<E: de::Error>(self, _v: f64) -> Result<T, E> {
        Ok(T::default())
    }
    fn visit_unit<E: de::Error>(self) -> Result<T, E> {
        Ok(T::default())
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<T, E> {
        Ok(T::from_str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        Ok(T::from_str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<T, E> {
        Ok(T::from_str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(T::default())
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::from_map(map)
    }
}

fn skip_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Calls `field` with each key of `map`; `field` must read the value (or
/// return `false` to have it skipped).
fn each_field<'de, A: MapAccess<'de>>(
    mut map: A,
    mut field: impl FnMut(&str, &mut A) -> Result<bool, A::Error>,
) -> Result<(), A::Error> {
    while let Some(Lenient(Text(key))) = map.next_key::<Lenient<Text<'de>>>()? {
        if !field(key.as_deref().unwrap_or_default(), &mut map)? {
            map.next_value::<IgnoredAny>()?;
        }
    }
    Ok(())
}

fn text<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Option<Cow<'de, str>>, A::Error> {
    map.next_value::<Lenient<Text<'de>>>().map(|l| l.0 .0)
}

fn error<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Option<Cow<'de, str>>, A::Error> {
    map.next_value::<Lenient<ErrorField<'de>>>().map(|l| l.0 .0)
}

/// A string.
#[derive(Default)]
struct Text<'a>(Option<Cow<'a, str>>);

impl<'de> Shape<'de> for Text<'de> {
    fn from_str(s: Cow<'de, str>) -> Self {
        Text(Some(s))
    }
}

/// An `error` field: its `message` when it is an object, itself when a string.
#[derive(Default)]
struct ErrorField<'a>(Option<Cow<'a, str>>);

impl<'de> Shape<'de> for ErrorField<'de> {
    fn from_str(s: Cow<'de, str>) -> Self {
        ErrorField(Some(s))
    }
    fn from_map<A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        let mut message = None;
        each_field(map, |key, map| {
            if key != "message" {
                return Ok(false);
            }
            message = text(map)?;
            Ok(true)
        })?;
        Ok(ErrorField(message))
    }
}

/// `contextVersion` of an output's `data.data`.
#[derive(Default)]
struct ContextVersion(Option<u64>);

/// A non-negative integer.
#[derive(Default)]
struct Count(Option<u64>);

impl Shape<'_> for Count {
    fn from_u64(v: u64) -> Self {
        Count(Some(v))
    }
}

impl<'de> Shape<'de> for ContextVersion {
    fn from_map<A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        let mut version = None;
        each_field(map, |key, map| {
            if key != "contextVersion" {
                return Ok(false);
            }
            version = map.next_value::<Lenient<Count>>()?.0 .0;
            Ok(true)
        })?;
        Ok(ContextVersion(version))
    }
}

impl<'de> Shape<'de> for EventArg<'de> {
    fn from_map<A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        let mut arg = EventArg::default();
        each_field(map, |key, map| {
            match key {
                "type" => arg.kind = text(map)?,
                "data" => arg.data = map.next_value::<Lenient<OutputData<'de>>>()?.0,
                "error" => arg.error = error(map)?,
                "message" => arg.message = text(map)?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(arg)
    }
}

impl<'de> Shape<'de> for OutputData<'de> {
    fn from_map<A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        let mut out = OutputData::default();
        each_field(map, |key, map| {
            match key {
                "text" => out.text = text(map)?,
                "data" => {
                    let raw: &'de RawValue = map.next_value()?;
                    out.data = (raw.get() != "null").then_some(raw);
                }
                "error" => out.error = error(map)?,
                "message" => out.message = text(map)?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn is_empty(a: &EventArg) -> bool {
        let d = &a.data;
        [&a.kind, &a.error, &a.message, &d.text, &d.error, &d.message]
            .iter()
            .all(|f| f.is_none())
            && d.data.is_none()
    }

    fn arg(json: &str) -> EventArg<'_> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn output_fields_borrow_from_the_frame() {
        let a = arg(
            r#"{"type":"output","data":{"text":"You said: hello 1","data":{"echo":null,"contextVersion":3},"source":"bot","traceId":"t-1"}}"#,
        );
        assert_eq!(a.kind.as_deref(), Some("output"));
        assert!(matches!(a.kind, Some(Cow::Borrowed(_))));
        assert!(matches!(
            a.data.text,
            Some(Cow::Borrowed("You said: hello 1"))
        ));
        assert_eq!(
            a.data.data.map(RawValue::get),
            Some(r#"{"echo":null,"contextVersion":3}"#)
        );
        assert_eq!(a.data.context_version().unwrap(), Some(3));
        assert_eq!((a.error, a.message), (None, None));
    }

    #[test]
    fn read_in_the_frame_pass_which_still_checks_all_json() {
        use crate::protocol::socketio::frame::{parse_socket_as, FrameError, SocketPacket};
        let first = |text| match parse_socket_as::<EventArg>(text) {
            Ok(SocketPacket::Event { args, .. }) => Ok(args.into_first()),
            Ok(other) => panic!("{text}: {other:?}"),
            Err(e) => Err(e),
        };
        let a = first(r#"21["output",{"type":"output","data":{"text":"hi"}},{"more":[1]}]"#);
        let a = a.unwrap().unwrap();
        assert_eq!(
            (a.kind.as_deref(), a.data.text.as_deref()),
            (Some("output"), Some("hi"))
        );
        assert!(first(r#"2["endpoint-ready"]"#).unwrap().is_none());
        for bad in [
            r#"2["output",{"type":"output","skipped":[1,}]"#,
            r#"2["output",{"type":"output"},{"second":}]"#,
            r#"2["output",{"type":"output","data":{"text":"a\x"}}]"#,
            r#"2["output",{"type":"output"}"#,
        ] {
            assert!(
                matches!(
                    first(bad),
                    Err(FrameError::BadJson {
                        packet: "event",
                        ..
                    })
                ),
                "{bad}: {:?}",
                first(bad)
            );
        }
        assert_eq!(
            first(r#"2[{"type":"output"}]"#).err(),
            Some(FrameError::BadShape("event array must start with a name"))
        );
    }

    #[test]
    fn escaped_strings_are_unescaped() {
        let a = arg(
            r#"{"\u0074ype":"out\u0070ut","data":{"text":"line\n\"quoted\" \u00e9 \ud83d\ude00 \\"}}"#,
        );
        assert_eq!(a.kind.as_deref(), Some("output"));
        assert_eq!(a.data.text.as_deref(), Some("line\n\"quoted\" é 😀 \\"));
        assert!(matches!(a.data.text, Some(Cow::Owned(_))));
    }

    #[test]
    fn missing_null_and_mistyped_fields_read_as_absent() {
        for json in [
            "{}",
            r#"{"type":null,"data":null}"#,
            r#"{"type":5,"data":"text"}"#,
            r#"{"type":["output"],"data":[{"text":"x"}],"error":7,"message":false}"#,
            r#"{"data":{"text":null,"data":null,"error":null,"message":{"a":1}}}"#,
            r#"{"data":{"text":1.5,"error":{"message":4}}}"#,
            "null",
            "5",
            r#""output""#,
            r#"["output",{"type":"output"}]"#,
        ] {
            assert!(is_empty(&arg(json)), "{json}");
        }
        assert!(is_empty(&EventArg::default()));
        for data in [
            r#"{"contextVersion":-1}"#,
            r#"{"contextVersion":1.5}"#,
            r#"{"contextVersion":"3"}"#,
            r#"{"contextVersion":18446744073709551616}"#,
            r#"[{"contextVersion":3}]"#,
            r#"{"other":{"contextVersion":3}}"#,
            "7",
        ] {
            let json = format!(r#"{{"data":{{"data":{data}}}}}"#);
            let a = arg(&json);
            assert_eq!(a.data.data.map(RawValue::get), Some(data));
            assert_eq!(a.data.context_version().unwrap(), None, "{data}");
        }
    }

    #[test]
    fn error_messages_at_both_levels() {
        let a = arg(r#"{"type":"error","data":{"error":{"message":"boom","code":1}}}"#);
        assert_eq!(error_text(&a.data.error, &a.data.message), Some("boom"));
        let a = arg(r#"{"type":"error","data":{"error":"flat","message":"later"}}"#);
        assert_eq!(error_text(&a.data.error, &a.data.message), Some("flat"));
        let a = arg(r#"{"error":{"code":1},"message":"msg"}"#);
        assert_eq!(error_text(&a.error, &a.message), Some("msg"));
        let a = arg(r#"{"error":"bad token"}"#);
        assert_eq!(error_text(&a.error, &a.message), Some("bad token"));
        assert_eq!(error_text(&None, &None), None);
    }

    #[test]
    fn the_last_of_repeated_keys_counts_as_in_a_value() {
        for json in [
            r#"{"type":"error","type":"output","data":{"text":"a","text":"b","data":{"x":1},"data":null}}"#,
            r#"{"type":"output","type":7,"data":{"text":"a"},"data":"flat"}"#,
        ] {
            let v: Value = serde_json::from_str(json).unwrap();
            let a = arg(json);
            assert_eq!(a.kind.as_deref(), v["type"].as_str(), "{json}");
            assert_eq!(a.data.text.as_deref(), v["data"]["text"].as_str(), "{json}");
            assert_eq!(
                a.data.data.is_some(),
                !v["data"]["data"].is_null(),
                "{json}"
            );
        }
    }

    #[test]
    fn agrees_with_value_lookups_on_nested_shapes() {
        let json = json!({
            "type": "output",
            "extra": [1, {"type": "x"}, null, "s"],
            "data": {"text": "t", "data": {"deep": [[{"contextVersion": 9}]], "contextVersion": 2}, "more": {"data": 1}},
        })
        .to_string();
        let a = arg(&json);
        assert_eq!(a.kind.as_deref(), Some("output"));
        assert_eq!(a.data.text.as_deref(), Some("t"));
        assert_eq!(a.data.context_version().unwrap(), Some(2));
        let kept: Value = serde_json::from_str(a.data.data.unwrap().get()).unwrap();
        assert_eq!(kept["deep"][0][0]["contextVersion"], 9);
    }
}
