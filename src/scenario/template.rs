//! Templates in scenario strings (STUB: being implemented).

use serde::{Deserialize, Serialize};

/// Values a template can refer to at render time.
#[derive(Debug, Clone, Copy, Default)]
pub struct TemplateCtx {
    /// 1-based VU number.
    pub vu: u64,
    /// 0-based iteration of that VU.
    pub iteration: u64,
}

/// A parsed string template.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Template {
    source: String,
}

impl Template {
    pub fn literal(s: &str) -> Template {
        Template {
            source: s.to_string(),
        }
    }
    pub fn parse(s: &str) -> Result<Template, String> {
        Ok(Template::literal(s))
    }
    pub fn render(&self, _ctx: &TemplateCtx) -> String {
        self.source.clone()
    }
}

impl Serialize for Template {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}
impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Template::literal(&String::deserialize(d)?))
    }
}

/// Any YAML/JSON value whose strings are templates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateValue(serde_json::Value);

impl TemplateValue {
    pub fn render(&self, _ctx: &TemplateCtx) -> serde_json::Value {
        self.0.clone()
    }
}

impl Serialize for super::ThinkTime {
    fn serialize<S: serde::Serializer>(&self, _s: S) -> Result<S::Ok, S::Error> {
        unimplemented!()
    }
}
impl<'de> Deserialize<'de> for super::ThinkTime {
    fn deserialize<D: serde::Deserializer<'de>>(_d: D) -> Result<Self, D::Error> {
        unimplemented!()
    }
}
