//! Scripted replies: `replies:` in the emulator config picks a turn's outputs
//! by a regular expression on the input text (the first reply whose `when`
//! matches), so a scenario's checks and captures can be tested end to end.
//! `$1` / `${name}` in a reply's `text` and in the string leaves of its `data`
//! are the groups of `when`. An input no reply matches gets the default echo.
//! Owns rendering a reply (the type is `emulator_config::script`); `turn` emits it.

pub use crate::emulator_config::script::ScriptedReply;
use serde_json::Value;

/// One reply rendered for one input.
pub(crate) struct Rendered {
    pub text: String,
    pub data: Option<Value>,
    pub outputs: u32,
}

/// The reply for `input` (the first that matches), rendered with its groups.
pub(crate) fn reply_for(replies: &[ScriptedReply], input: &str) -> Option<Rendered> {
    replies.iter().find_map(|r| {
        let caps = r.when.captures(input)?;
        let expand = |s: &str| {
            let mut out = String::with_capacity(s.len() + 16);
            caps.expand(s, &mut out);
            out
        };
        Some(Rendered {
            text: expand(&r.text),
            data: r.data.as_ref().map(|d| map_strings(d, &expand)),
            outputs: r.outputs,
        })
    })
}

fn map_strings(v: &Value, f: &dyn Fn(&str) -> String) -> Value {
    match v {
        Value::String(s) => Value::String(f(s)),
        Value::Array(items) => items.iter().map(|i| map_strings(i, f)).collect(),
        Value::Object(map) => map
            .iter()
            .map(|(k, i)| (k.clone(), map_strings(i, f)))
            .collect(),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_matching_reply_wins_with_its_groups() {
        let replies: Vec<ScriptedReply> = serde_saphyr::from_str(
            "- {when: '^order for (\\w+)', text: 'Order A-$1 placed', data: {order: {id: 'A-$1', n: 2}}}\n- {when: order, text: fallback, outputs: 2}\n",
        )
        .unwrap();
        let r = reply_for(&replies, "order for bob").unwrap();
        assert_eq!(r.text, "Order A-bob placed");
        assert_eq!(
            r.data,
            Some(serde_json::json!({"order": {"id": "A-bob", "n": 2}}))
        );
        assert_eq!(r.outputs, 1);
        let r = reply_for(&replies, "my order").unwrap();
        assert_eq!((r.text.as_str(), r.outputs), ("fallback", 2));
        assert!(reply_for(&replies, "hello").is_none());
    }
}
