//! A YAML document held in its written order, for `--set` overrides: a
//! `serde_json::Value` would sort every map (and so the thresholds, which are
//! judged and reported in the order they were written). Only
//! [`super::load_with_settings`] uses it; values at the leaves are JSON
//! values (strings, numbers, booleans, null), as before.

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A map in written order, a sequence, or a scalar.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Node {
    Map(Vec<(String, Node)>),
    Seq(Vec<Node>),
    Leaf(serde_json::Value),
}

impl Node {
    /// Sets `a.b.c`, creating maps on the way (a non-map on the way is
    /// replaced by a map); an existing key keeps its place.
    pub(super) fn set_path(&mut self, path: &str, value: Node) {
        let mut node = self;
        let mut parts = path.split('.').peekable();
        while let Some(part) = parts.next() {
            if !matches!(node, Node::Map(_)) {
                *node = Node::Map(Vec::new());
            }
            let Node::Map(entries) = node else {
                return;
            };
            let i = match entries.iter().position(|(k, _)| k == part) {
                Some(i) => i,
                None => {
                    entries.push((part.to_string(), Node::Map(Vec::new())));
                    entries.len() - 1
                }
            };
            if parts.peek().is_none() {
                entries[i].1 = value;
                return;
            }
            node = &mut entries[i].1;
        }
    }
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Map(entries) => {
                let mut m = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
            Node::Seq(items) => {
                let mut q = s.serialize_seq(Some(items.len()))?;
                for v in items {
                    q.serialize_element(v)?;
                }
                q.end()
            }
            Node::Leaf(v) => v.serialize(s),
        }
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Leaf(v.into()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Leaf(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Leaf(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Leaf(
            serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, Into::into),
        ))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Leaf(v.into()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Leaf(v.into()))
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Leaf(serde_json::Value::Null))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Leaf(serde_json::Value::Null))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries: Vec<(String, Node)> = Vec::new();
        while let Some((k, v)) = map.next_entry::<serde_json::Value, Node>()? {
            let key = match k {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            match entries.iter_mut().find(|(e, _)| *e == key) {
                Some(slot) => slot.1 = v,
                None => entries.push((key, v)),
            }
        }
        Ok(Node::Map(entries))
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_written_order_through_a_set() {
        let text = "thresholds:\n  z.p99: '< 1s'\n  a.p50: '< 2s'\nload: { vus: 1 }\n";
        let mut doc: Node = serde_saphyr::from_str(text).unwrap();
        doc.set_path("load.vus", Node::Leaf(5.into()));
        doc.set_path("runtime.codec", Node::Leaf("json".into()));
        let out = serde_saphyr::to_string(&doc).unwrap();
        let z = out.find("z.p99").unwrap();
        let a = out.find("a.p50").unwrap();
        assert!(z < a, "{out}");
        assert!(
            out.contains("vus: 5") && out.contains("codec: json"),
            "{out}"
        );
        assert!(out.find("thresholds").unwrap() < out.find("runtime").unwrap());
    }

    #[test]
    fn thresholds_keep_their_written_order_with_set() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.yaml");
        std::fs::write(
            &path,
            "name: order\nload: {vus: 1, duration: 1s}\nsteps:\n  - send: {text: hi}\nthresholds:\n  turns.count: '>= 1'\n  final_ping.p99: '< 5s'\n  errors.rate: '< 1%'\n",
        )
        .unwrap();
        let settings = [("load.vus".to_string(), "2".to_string())];
        let s = super::super::load_with_settings(&path, &settings).unwrap();
        let order: Vec<String> = s.thresholds.iter().map(|t| t.source.clone()).collect();
        assert_eq!(order, ["turns.count", "final_ping.p99", "errors.rate"]);
    }
}
