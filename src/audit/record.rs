//! One audit record per variable per context update (docs/protocol.md §2.5): the
//! wire shape of a line of `audit.jsonl` and of a webhook body, and the rule
//! that expands one update into its records.

use crate::protocol::runtime::Context;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

/// The only event type finalping writes. A one-variant enum so that a record
/// read back with another `eventType` is rejected rather than silently kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum EventType {
    #[default]
    #[serde(rename = "context_variable_update")]
    ContextVariableUpdate,
}

/// One variable of one update. camelCase on the wire:
///
/// ```json
/// {"timestamp":"2025-01-02T03:04:05.678Z","sessionId":"s-1","scope":"user",
///  "variableKey":"tier","oldValue":null,"newValue":"gold","latencyMs":12.345,
///  "success":true,"eventType":"context_variable_update",
///  "auditId":"6f1c…","requestId":"a1b2…","cause":"version_mismatch"}
/// ```
///
/// `requestId` (the `updateContext` request id, to join with wire traces) and
/// `cause` (why an update failed, e.g. the reject code in snake case or
/// `"timeout"`) are additions of ours and are omitted when absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditRecord {
    /// When the update's outcome was known: RFC 3339, UTC, milliseconds, `Z`.
    pub timestamp: String,
    pub session_id: String,
    /// `global`, `user` or `session`.
    pub scope: String,
    pub variable_key: String,
    /// The value the update replaced; `null` when the variable was new or the
    /// previous value is unknown (e.g. the update failed).
    pub old_value: Value,
    pub new_value: Value,
    /// Update round trip in milliseconds with microsecond precision.
    pub latency_ms: f64,
    pub success: bool,
    #[serde(default)]
    pub event_type: EventType,
    /// A fresh UUID v4 per record.
    pub audit_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// Everything known about one finished update, borrowed from the caller.
#[derive(Debug, Clone, Copy)]
pub struct UpdateAudit<'a> {
    pub session_id: &'a str,
    /// The `updateContext` request id, if the caller wants it in the records.
    pub request_id: Option<&'a str>,
    /// The variables sent, by scope.
    pub context: &'a Context,
    /// The values they replaced, by scope and key (missing → `null`).
    pub previous: &'a Context,
    pub latency: Duration,
    pub success: bool,
    pub cause: Option<&'a str>,
}

/// The current time as an audit timestamp (RFC 3339, UTC, milliseconds).
pub fn now_timestamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Milliseconds with microsecond precision.
pub fn latency_ms(latency: Duration) -> f64 {
    // u128 → f64 is exact for any latency below 2^53 µs (285 years).
    latency.as_micros() as f64 / 1000.0
}

impl UpdateAudit<'_> {
    /// One record per variable, in scope then key order. All records of one
    /// update share the timestamp and latency; each gets its own `auditId`.
    pub fn records(&self) -> impl Iterator<Item = AuditRecord> + '_ {
        let timestamp = now_timestamp();
        let latency_ms = latency_ms(self.latency);
        self.context.iter().flat_map(move |(scope, vars)| {
            let old_scope = self.previous.get(scope);
            let timestamp = timestamp.clone();
            vars.iter().map(move |(key, new_value)| AuditRecord {
                timestamp: timestamp.clone(),
                session_id: self.session_id.to_string(),
                scope: scope.clone(),
                variable_key: key.clone(),
                old_value: old_scope
                    .and_then(|m| m.get(key))
                    .cloned()
                    .unwrap_or(Value::Null),
                new_value: new_value.clone(),
                latency_ms,
                success: self.success,
                event_type: EventType::ContextVariableUpdate,
                audit_id: uuid::Uuid::new_v4().to_string(),
                request_id: self.request_id.map(str::to_string),
                cause: self.cause.map(str::to_string),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx(v: Value) -> Context {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn expands_one_record_per_variable_with_old_values() {
        let context = ctx(json!({"user": {"a": 1, "b": "x"}, "session": {"c": true}}));
        let previous = ctx(json!({"user": {"a": 0}}));
        let u = UpdateAudit {
            session_id: "s1",
            request_id: Some("r1"),
            context: &context,
            previous: &previous,
            latency: Duration::from_micros(12_345),
            success: true,
            cause: None,
        };
        let recs: Vec<_> = u.records().collect();
        assert_eq!(recs.len(), 3);
        let keys: Vec<_> = recs
            .iter()
            .map(|r| (r.scope.as_str(), r.variable_key.as_str()))
            .collect();
        assert_eq!(keys, [("session", "c"), ("user", "a"), ("user", "b")]);
        assert_eq!(recs[1].old_value, json!(0));
        assert_eq!(recs[2].old_value, Value::Null);
        assert_eq!(recs[0].new_value, json!(true));
        assert!((recs[0].latency_ms - 12.345).abs() < 1e-9);
        assert_ne!(recs[0].audit_id, recs[1].audit_id);
    }

    #[test]
    fn wire_shape_is_camel_case_and_skips_absent_optionals() {
        let context = ctx(json!({"global": {"k": [1, 2]}}));
        let u = UpdateAudit {
            session_id: "s",
            request_id: None,
            context: &context,
            previous: &Context::new(),
            latency: Duration::from_millis(3),
            success: false,
            cause: Some("version_mismatch"),
        };
        let rec = u.records().next().unwrap();
        let v = serde_json::to_value(&rec).unwrap();
        let obj = v.as_object().unwrap();
        for k in [
            "timestamp",
            "sessionId",
            "scope",
            "variableKey",
            "oldValue",
            "newValue",
            "latencyMs",
            "success",
            "eventType",
            "auditId",
            "cause",
        ] {
            assert!(obj.contains_key(k), "missing {k} in {v}");
        }
        assert!(!obj.contains_key("requestId"));
        assert_eq!(v["eventType"], "context_variable_update");
        assert_eq!(v["cause"], "version_mismatch");
        let ts = v["timestamp"].as_str().unwrap();
        assert!(
            ts.ends_with('Z') && ts.len() == "2025-01-02T03:04:05.678Z".len(),
            "{ts}"
        );
        let back: AuditRecord = serde_json::from_value(v).unwrap();
        assert_eq!(back, rec);
    }
}
