//! Who a connection is: the session read from the connect query (values
//! URI-encoded twice by the official client, decoded twice here) or from the
//! optional inner handshake (`handshake=true`, ids in the ack of `handshake`).

use percent_encoding::percent_decode_str;
use serde::Deserialize;

/// The ids and flags of one Socket.IO Endpoint session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionInfo {
    pub session_id: String,
    pub url_token: String,
    pub user_id: String,
    pub test_mode: bool,
    /// Emit `output` and `finalPing` with an ack request.
    pub emit_with_ack: bool,
}

/// How a connection identifies itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// Ids in the query string (the default mode).
    Query(SessionInfo),
    /// `handshake=true`: the server asks with `handshake` and reads the ack.
    InnerHandshake,
}

impl Identity {
    /// Reads the connect query (`None` = no query: an anonymous query session).
    pub fn from_query(query: Option<&str>) -> Identity {
        let query = query.unwrap_or("");
        if query_param(query, "handshake").as_deref() == Some("true") {
            return Identity::InnerHandshake;
        }
        let get = |name| query_param(query, name).unwrap_or_default();
        Identity::Query(SessionInfo {
            session_id: get("sessionId"),
            url_token: get("urlToken"),
            user_id: get("userId"),
            test_mode: get("testMode") == "true",
            emit_with_ack: get("emitWithAck") == "true",
        })
    }
}

/// The first value of `name` in a raw query string, percent-decoded twice
/// (`session%25201` → `session%201` → `session 1`). Invalid UTF-8 is replaced.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| decode_twice(value))
    })
}

fn decode_twice(value: &str) -> String {
    let once = percent_decode_str(value).decode_utf8_lossy();
    percent_decode_str(&once).decode_utf8_lossy().into_owned()
}

/// The client's answer to `handshake`:
/// `[{"userId":…,"sessionId":…,"urlToken":…,"testMode":false,"emitWithAck":true}]`.
/// Values are plain (not encoded). Missing fields default to empty / false.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HandshakeAck {
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub url_token: Option<String>,
    pub test_mode: Option<bool>,
    pub emit_with_ack: Option<bool>,
}

impl From<HandshakeAck> for SessionInfo {
    fn from(a: HandshakeAck) -> Self {
        SessionInfo {
            session_id: a.session_id.unwrap_or_default(),
            url_token: a.url_token.unwrap_or_default(),
            user_id: a.user_id.unwrap_or_default(),
            test_mode: a.test_mode.unwrap_or(false),
            emit_with_ack: a.emit_with_ack.unwrap_or(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFICIAL: &str = "sessionId=session%25201%252Femulator&urlToken=emulator-url-token\
&userId=user%2540example.com&testMode=false&emitWithAck=true&EIO=3&transport=websocket";

    #[test]
    fn official_query_is_decoded_twice() {
        let Identity::Query(s) = Identity::from_query(Some(OFFICIAL)) else {
            panic!("expected a query session");
        };
        assert_eq!(
            s,
            SessionInfo {
                session_id: "session 1/emulator".into(),
                url_token: "emulator-url-token".into(),
                user_id: "user@example.com".into(),
                test_mode: false,
                emit_with_ack: true,
            }
        );
    }

    #[test]
    fn handshake_mode_and_odd_queries() {
        assert_eq!(
            Identity::from_query(Some("handshake=true&EIO=3&transport=websocket")),
            Identity::InnerHandshake
        );
        assert_eq!(
            Identity::from_query(None),
            Identity::Query(SessionInfo::default())
        );
        // Bad escapes and a bare key do not panic.
        assert_eq!(query_param("a=%zz%&b", "a").as_deref(), Some("%zz%"));
        assert_eq!(query_param("a=%zz%&b", "b").as_deref(), Some(""));
        assert_eq!(query_param("a=%FF", "a").as_deref(), Some("\u{FFFD}"));
    }

    #[test]
    fn handshake_ack_maps_to_session() {
        let ack: HandshakeAck = serde_json::from_str(
            r#"{"userId":"user@example.com","sessionId":"session 1/emulator","urlToken":"t","testMode":false,"emitWithAck":true}"#,
        )
        .unwrap();
        let s = SessionInfo::from(ack);
        assert_eq!(s.session_id, "session 1/emulator");
        assert!(s.emit_with_ack);
        let s = SessionInfo::from(serde_json::from_str::<HandshakeAck>("{}").unwrap());
        assert!(!s.emit_with_ack && s.url_token.is_empty());
    }
}
