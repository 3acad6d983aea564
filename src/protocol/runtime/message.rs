//! The messages of the runtime WebSocket (docs/protocol.md §2.4). Requests are
//! defined by the public guide; replies, request ids and `getContext` are
//! defined by us. Field names are camelCase on the wire; `type` tags the kind.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The scopes a context update may touch.
pub const SCOPES: [&str; 3] = ["global", "user", "session"];

/// Variables of one scope.
pub type ScopeVars = serde_json::Map<String, serde_json::Value>;

/// Variables by scope (`global`, `user`, `session`). A map rather than three
/// fields so that a server can see, and reject, any other scope name.
pub type Context = BTreeMap<String, ScopeVars>;

/// Client → server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ClientMessage {
    #[serde(rename_all = "camelCase")]
    UpdateContext {
        request_id: String,
        session_id: String,
        version: u64,
        context: Context,
    },
    #[serde(rename_all = "camelCase")]
    GetContext {
        request_id: String,
        session_id: String,
    },
}

/// Server → client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ServerMessage {
    #[serde(rename_all = "camelCase")]
    ContextUpdated {
        request_id: String,
        session_id: String,
        version: u64,
        /// The values the update replaced, by scope and key (`null` if new).
        #[serde(default)]
        previous: Context,
    },
    #[serde(rename_all = "camelCase")]
    ContextRejected {
        request_id: String,
        session_id: String,
        code: RejectCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        current_version: Option<u64>,
    },
    #[serde(rename_all = "camelCase")]
    Context {
        request_id: String,
        session_id: String,
        version: u64,
        context: Context,
    },
}

impl ServerMessage {
    pub fn request_id(&self) -> &str {
        match self {
            ServerMessage::ContextUpdated { request_id, .. }
            | ServerMessage::ContextRejected { request_id, .. }
            | ServerMessage::Context { request_id, .. } => request_id,
        }
    }
}

/// Why the server rejected a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RejectCode {
    VersionMismatch,
    LimitExceeded,
    InvalidScope,
    TooManyInFlight,
    BadPayload,
    Forbidden,
    /// A code this version of finalping does not know.
    #[serde(other)]
    Unknown,
}

impl RejectCode {
    /// Stable lower-case name for reports (`version_mismatch`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            RejectCode::VersionMismatch => "version_mismatch",
            RejectCode::LimitExceeded => "limit_exceeded",
            RejectCode::InvalidScope => "invalid_scope",
            RejectCode::TooManyInFlight => "too_many_in_flight",
            RejectCode::BadPayload => "bad_payload",
            RejectCode::Forbidden => "forbidden",
            RejectCode::Unknown => "unknown",
        }
    }
}
