//! Settings of the emulator's REST side (the `rest:` block; behaviour in
//! `emulator::rest`): the REST Endpoint and the context-inject API.
//!
//! **Settings** (`rest:` block of the emulator config, all optional):
//! - `api_keys` (default `[finalping-api-key]`; empty = no key check)
//! - `merge` (default `true`), `max_inject_bytes` (default 60,000)
//! - `internal_entries`: append an internal `{"data":{"_cognigy":{"_messageId":…}}}`
//!   entry to every `outputStack` (clients must skip it)
//! - `string_data`: send each output's `data` as a JSON string
//! - `stall_every: N`: every N-th turn request waits `stall_for` (default 60s)
//!   before it is served — past any sane client timeout
//! - `fail_5xx_every: N`: every N-th turn request gets a 500 (checked before
//!   `stall_every`)
//! - `rate_limit: {requests: N, per: 1s}`: fixed window over all REST requests
//!   (turns and injects); the N+1-th request of a window gets 429
//! - `inject_faults`: `stall_every`/`fail_5xx_every` also count inject requests
//!   (on their own counter)

use crate::duration::HumanDuration;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The default API key of the context API.
pub const DEFAULT_API_KEY: &str = "finalping-api-key";
/// The scope of the shared store that the inject API's `context` object maps to.
pub const INJECT_SCOPE: &str = "session";
/// Settings of the REST side (see the module doc).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RestEmulatorConfig {
    pub api_keys: Vec<String>,
    pub merge: bool,
    pub max_inject_bytes: usize,
    pub internal_entries: bool,
    pub string_data: bool,
    pub stall_every: Option<u64>,
    pub stall_for: HumanDuration,
    pub fail_5xx_every: Option<u64>,
    pub rate_limit: Option<RateLimit>,
    pub inject_faults: bool,
}

/// At most `requests` REST requests per `per` window.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub requests: u64,
    pub per: HumanDuration,
}

impl Default for RestEmulatorConfig {
    fn default() -> Self {
        RestEmulatorConfig {
            api_keys: vec![DEFAULT_API_KEY.to_string()],
            merge: true,
            max_inject_bytes: crate::protocol::rest::DEFAULT_MAX_REQUEST_BYTES,
            internal_entries: false,
            string_data: false,
            stall_every: None,
            stall_for: HumanDuration(Duration::from_secs(60)),
            fail_5xx_every: None,
            rate_limit: None,
            inject_faults: false,
        }
    }
}

impl RestEmulatorConfig {
    /// Checks the values (field names as in YAML, under `rest.`).
    pub fn validate(&self) -> Result<(), super::EmulatorConfigError> {
        let invalid = |field, message: &str| {
            Err(super::EmulatorConfigError::Invalid {
                field,
                message: message.to_string(),
            })
        };
        if self.api_keys.iter().any(|k| k.is_empty()) {
            return invalid("rest.api_keys", "keys must not be empty strings");
        }
        if self.max_inject_bytes < 256 {
            return invalid(
                "rest.max_inject_bytes",
                "must be at least 256 bytes (default 60000)",
            );
        }
        if self.stall_every == Some(0) || self.fail_5xx_every == Some(0) {
            return invalid(
                "rest.stall_every/rest.fail_5xx_every",
                "must be at least 1 (1 = every request); omit it to disable",
            );
        }
        if let Some(limit) = self.rate_limit {
            if limit.requests == 0 || limit.per.0.is_zero() {
                return invalid(
                    "rest.rate_limit",
                    "needs requests >= 1 and per > 0, e.g. `{requests: 100, per: 1s}`",
                );
            }
        }
        Ok(())
    }

    /// A copy with the API keys redacted.
    pub fn redacted(&self) -> RestEmulatorConfig {
        let mut c = self.clone();
        c.api_keys = c
            .api_keys
            .iter()
            .map(|k| crate::secret::redact(k))
            .collect();
        c
    }
}
