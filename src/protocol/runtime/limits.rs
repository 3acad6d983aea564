//! Limits of a context update (docs/protocol.md §2.4), checked by the client before
//! sending and enforced by the emulator: only the scopes global/user/session,
//! at most 500 variables per scope, and the JSON encoding of the whole update
//! at most 1,048,576 bytes. One implementation for both sides.

use super::{ClientMessage, Context, RejectCode, SCOPES};
use serde::{Deserialize, Serialize};

/// Configurable limits; the defaults are the documented ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub max_variables_per_scope: usize,
    pub max_update_json_bytes: usize,
    pub max_in_flight_per_session: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_variables_per_scope: 500,
            max_update_json_bytes: 1_048_576,
            max_in_flight_per_session: 10,
        }
    }
}

/// Why an update breaks a limit; the message names the scope, variable count or size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("scope `{scope}` is not allowed: use global, user or session")]
    InvalidScope { scope: String },
    #[error("scope `{scope}` has {count} variables, more than the limit of {max} per scope: split the update")]
    TooManyVariables {
        scope: String,
        count: usize,
        max: usize,
    },
    #[error("the update is {bytes} bytes as JSON, more than the limit of {max}: send fewer or smaller variables")]
    TooLarge { bytes: usize, max: usize },
    #[error("the update has no variables: give at least one scope with one variable")]
    Empty,
}

impl LimitError {
    /// The code a server answers with for this breach.
    pub fn reject_code(&self) -> RejectCode {
        match self {
            LimitError::InvalidScope { .. } => RejectCode::InvalidScope,
            LimitError::TooManyVariables { .. } | LimitError::TooLarge { .. } => {
                RejectCode::LimitExceeded
            }
            LimitError::Empty => RejectCode::BadPayload,
        }
    }
}

impl Limits {
    /// Checks scopes and variable counts, then the JSON size of the whole message.
    pub fn check(&self, message: &ClientMessage) -> Result<(), LimitError> {
        if let ClientMessage::UpdateContext { context, .. } = message {
            self.check_context(context)?;
        }
        let bytes = json_len(message);
        if bytes > self.max_update_json_bytes {
            return Err(LimitError::TooLarge {
                bytes,
                max: self.max_update_json_bytes,
            });
        }
        Ok(())
    }

    fn check_context(&self, context: &Context) -> Result<(), LimitError> {
        if context.values().all(|vars| vars.is_empty()) {
            return Err(LimitError::Empty);
        }
        for (scope, vars) in context {
            if !SCOPES.contains(&scope.as_str()) {
                return Err(LimitError::InvalidScope {
                    scope: scope.clone(),
                });
            }
            if vars.len() > self.max_variables_per_scope {
                return Err(LimitError::TooManyVariables {
                    scope: scope.clone(),
                    count: vars.len(),
                    max: self.max_variables_per_scope,
                });
            }
        }
        Ok(())
    }
}

/// Length of the JSON encoding, counted without building the string.
fn json_len(message: &ClientMessage) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Counter(0);
    // Serialising plain data into a counting writer cannot fail.
    let _ = serde_json::to_writer(&mut c, message);
    c.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn update(scope: &str, n: usize, value: serde_json::Value) -> ClientMessage {
        let vars = (0..n).map(|i| (format!("v{i}"), value.clone())).collect();
        ClientMessage::UpdateContext {
            request_id: "r".into(),
            session_id: "s".into(),
            version: 0,
            context: [(scope.to_string(), vars)].into_iter().collect(),
        }
    }

    #[test]
    fn limits_name_what_is_wrong() {
        let l = Limits::default();
        assert_eq!(l.check(&update("session", 500, json!(1))), Ok(()));
        let e = l.check(&update("session", 501, json!(1))).unwrap_err();
        assert!(e.to_string().contains("`session` has 501 variables"), "{e}");
        assert_eq!(e.reject_code(), RejectCode::LimitExceeded);
        let e = l.check(&update("tenant", 1, json!(1))).unwrap_err();
        assert!(e.to_string().contains("`tenant`"), "{e}");
        assert_eq!(e.reject_code(), RejectCode::InvalidScope);
        let big = json!("x".repeat(1_048_576));
        let e = l.check(&update("user", 1, big)).unwrap_err();
        assert!(
            matches!(e, LimitError::TooLarge { max: 1_048_576, .. }),
            "{e}"
        );
        assert_eq!(
            l.check(&update("user", 0, json!(1))),
            Err(LimitError::Empty)
        );
    }

    #[test]
    fn size_is_the_exact_json_length() {
        let m = update("session", 3, json!({"a": [1, 2]}));
        assert_eq!(json_len(&m), serde_json::to_vec(&m).unwrap().len());
    }
}
