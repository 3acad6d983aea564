//! Conversation context shared by the runtime WebSocket and the Socket.IO turn:
//! per `sessionId` a version (optimistic lock) and the variables by scope, plus
//! the number of updates in flight per session (for the in-flight cap). A
//! session has an entry only once an update to it succeeded; a bot output
//! carries `contextVersion` only for such sessions.

use crate::protocol::runtime::Context;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

/// One session's context.
#[derive(Debug, Clone, Default, PartialEq)]
struct Entry {
    version: u64,
    context: Context,
}

#[derive(Debug, Default)]
struct Inner {
    sessions: HashMap<String, Entry>,
    in_flight: HashMap<String, usize>,
}

/// The store; cheap critical sections behind one mutex (never held across an await).
#[derive(Debug, Default)]
pub struct ContextStore {
    inner: Mutex<Inner>,
}

/// What applying an update did.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// The update was merged: the new version and the replaced values (`null` if new).
    Updated { version: u64, previous: Context },
    /// The update's version is not the session's current one.
    VersionMismatch { current: u64 },
}

impl ContextStore {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated in a
        // way that matters to an emulator; keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The session's version, if an update to it ever succeeded.
    pub fn version_of(&self, session_id: &str) -> Option<u64> {
        self.lock().sessions.get(session_id).map(|e| e.version)
    }

    /// The session's version and variables, if an update to it ever succeeded.
    pub fn get(&self, session_id: &str) -> Option<(u64, Context)> {
        self.lock()
            .sessions
            .get(session_id)
            .map(|e| (e.version, e.context.clone()))
    }

    /// Merges `update` into the session if `expected` is its current version
    /// (0 for a session never updated); the version then goes up by one.
    pub fn apply(&self, session_id: &str, expected: u64, update: &Context) -> Applied {
        let mut inner = self.lock();
        let current = inner.sessions.get(session_id).map_or(0, |e| e.version);
        if current != expected {
            return Applied::VersionMismatch { current };
        }
        let entry = inner.sessions.entry(session_id.to_string()).or_default();
        let mut previous = Context::new();
        for (scope, vars) in update {
            let stored = entry.context.entry(scope.clone()).or_default();
            let old = previous.entry(scope.clone()).or_default();
            for (key, value) in vars {
                let before = stored.insert(key.clone(), value.clone());
                old.insert(key.clone(), before.unwrap_or(Value::Null));
            }
        }
        entry.version = entry.version.saturating_add(1);
        Applied::Updated {
            version: entry.version,
            previous,
        }
    }

    /// Takes one in-flight slot for the session if fewer than `max` are taken.
    pub fn try_begin(&self, session_id: &str, max: usize) -> bool {
        let mut inner = self.lock();
        let n = inner.in_flight.entry(session_id.to_string()).or_insert(0);
        if *n >= max {
            return false;
        }
        *n += 1;
        true
    }

    /// Gives back a slot taken by [`try_begin`](Self::try_begin).
    pub fn end(&self, session_id: &str) {
        let mut inner = self.lock();
        if let Some(n) = inner.in_flight.get_mut(session_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                inner.in_flight.remove(session_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx(scope: &str, pairs: &[(&str, Value)]) -> Context {
        let vars = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        [(scope.to_string(), vars)].into_iter().collect()
    }

    #[test]
    fn versions_and_previous_values() {
        let s = ContextStore::default();
        assert_eq!(s.version_of("a"), None);
        assert_eq!(
            s.apply("a", 1, &ctx("user", &[("x", json!(1))])),
            Applied::VersionMismatch { current: 0 }
        );
        assert_eq!(s.version_of("a"), None, "a rejected update creates nothing");
        assert_eq!(
            s.apply("a", 0, &ctx("user", &[("x", json!(1))])),
            Applied::Updated {
                version: 1,
                previous: ctx("user", &[("x", Value::Null)])
            }
        );
        assert_eq!(
            s.apply("a", 1, &ctx("user", &[("x", json!(2)), ("y", json!("n"))])),
            Applied::Updated {
                version: 2,
                previous: ctx("user", &[("x", json!(1)), ("y", Value::Null)])
            }
        );
        let (v, c) = s.get("a").unwrap();
        assert_eq!(v, 2);
        assert_eq!(c, ctx("user", &[("x", json!(2)), ("y", json!("n"))]));
        assert_eq!(s.version_of("b"), None);
    }

    #[test]
    fn in_flight_slots_are_capped_and_returned() {
        let s = ContextStore::default();
        assert!(s.try_begin("a", 2));
        assert!(s.try_begin("a", 2));
        assert!(!s.try_begin("a", 2));
        assert!(s.try_begin("b", 2), "other sessions are independent");
        s.end("a");
        assert!(s.try_begin("a", 2));
        s.end("a");
        s.end("a");
        s.end("a"); // one too many: no underflow
        assert!(!s.lock().in_flight.contains_key("a"));
    }
}
