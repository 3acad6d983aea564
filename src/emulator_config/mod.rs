//! Emulator settings, from `finalping serve` flags, `--config emulator.yaml`, or a
//! scenario's `emulator:` block. Plain data; defaults match docs/protocol.md §1 and
//! (the `runtime:` block) §2. Owns loading from YAML and checking the values
//! before a server starts. Kept apart from `emulator` (the server) so
//! that a scenario and a report can carry these settings without the server
//! (which a build without the `emulator` feature leaves out).
//!
//! Layout: this file the top-level settings, [`delay`] delay distributions,
//! [`faults`] the Socket.IO `faults:` block, [`runtime_faults`] the
//! `runtime.faults:` block, [`rest`] the `rest:` block, [`script`] scripted
//! `replies:`.

pub mod delay;
pub mod faults;
pub mod rest;
pub mod runtime_faults;
pub mod script;

pub use delay::{Delay, DelayError};
pub use faults::{AckWait, Probability, SocketIoFaults};
pub use rest::{RateLimit, RestEmulatorConfig};
pub use runtime_faults::RuntimeFaults;
pub use script::ScriptedReply;

use crate::duration::HumanDuration;
use crate::protocol::runtime::{frame, Limits};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Most outputs one turn may carry (bounds per-connection buffers).
pub const MAX_OUTPUTS: u32 = 1_000;
/// Smallest `runtime.max_payload` accepted: room for a small update.
pub const MIN_PAYLOAD: usize = 256;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct EmulatorConfig {
    /// Accept Engine.IO 3 clients (official client 4.x).
    pub eio3: bool,
    /// Accept Engine.IO 4 clients (official client 5.x, Webchat v3).
    pub eio4: bool,
    /// Also serve `<prefix>/socket.io/` (e.g. `/cognigy`), besides `/socket.io/`.
    pub path_prefix: Option<String>,
    /// Outputs per turn.
    pub outputs: u32,
    /// Scripted replies chosen by a regular expression on the input text
    /// (first match wins); other inputs get `outputs` echo outputs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub replies: Vec<ScriptedReply>,
    /// Delay between `processInput` and the first output.
    pub delay: Delay,
    /// Delay between consecutive outputs of one turn.
    pub output_gap: Delay,
    /// Emit `typingStatus` typingOn / typingOff around the outputs.
    pub typing: bool,
    /// Engine.IO ping interval announced in the open packet.
    pub ping_interval: HumanDuration,
    /// Engine.IO ping timeout announced in the open packet.
    pub ping_timeout: HumanDuration,
    /// Seed for the delay distributions (same seed → same delays per session order).
    pub seed: u64,
    /// URL tokens accepted; empty = accept any token. A connection whose query
    /// `urlToken` is not listed is refused at the HTTP upgrade with 403; an
    /// inner-handshake session with an unlisted token gets a namespace disconnect (`41`).
    pub url_tokens: Vec<String>,
    /// How long the server waits for a client's ack (of `output`, `finalPing`,
    /// `handshake`) before counting it as missing. Turns never wait for acks.
    pub ack_timeout: HumanDuration,
    /// The runtime WebSocket, token endpoint and webhook sink (docs/protocol.md §2).
    pub runtime: RuntimeEmulatorConfig,
    /// Fault: inputs arriving in this window (from emulator start) wait until
    /// it ends before their normal delay — a bot that hangs for a while.
    pub stall: Option<Stall>,
    /// Load-dependent slowdown: above `above_sessions` concurrent Socket.IO
    /// sessions, every turn waits `per_session` more per session over the mark
    /// (a bot that degrades past a known capacity; used by `capacity` tests).
    pub degrade: Option<Degrade>,
    /// The REST Endpoint and the context-inject API (docs/protocol.md §3, §4);
    /// see `emulator::rest` for every setting.
    pub rest: RestEmulatorConfig,
    /// Socket.IO fault modes (refused upgrades, missing events, broken frames,
    /// silent heartbeats, …); all off by default. See `emulator::faults`.
    #[serde(default)]
    pub faults: SocketIoFaults,
}

/// `degrade: {above_sessions: 20, per_session: 5ms}`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Degrade {
    pub above_sessions: u64,
    pub per_session: HumanDuration,
}

/// A window in which the bot answers nothing.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stall {
    /// When the stall starts, from emulator start.
    pub at: HumanDuration,
    /// How long it lasts.
    #[serde(rename = "for")]
    pub duration: HumanDuration,
}

/// Settings of the runtime side: `/oauth/token`, `/v2/runtime`, `/webhook`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeEmulatorConfig {
    /// The only client id the token endpoint accepts.
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
    /// How long an issued token is valid; a connection still open then is
    /// closed with 4001 (use e.g. `1s` to exercise token refresh).
    pub token_lifetime: HumanDuration,
    /// A runtime connection that receives nothing for this long is closed
    /// with 4000 "idle timeout".
    pub idle_timeout: HumanDuration,
    /// Delay before an `updateContext` is applied and answered.
    pub update_delay: Delay,
    /// Largest frame payload in bytes; a larger length header closes the
    /// connection with 1002.
    pub max_payload: usize,
    /// Scopes, variables per scope, update size and in-flight updates per session.
    pub limits: Limits,
    /// Fault modes of the runtime WebSocket, token endpoint and webhook sink
    /// (all off by default); see `emulator::runtime_faults`.
    #[serde(default)]
    pub faults: RuntimeFaults,
}

impl Default for RuntimeEmulatorConfig {
    fn default() -> Self {
        RuntimeEmulatorConfig {
            client_id: "finalping".into(),
            client_secret: "finalping-secret".into(),
            token_lifetime: HumanDuration(Duration::from_secs(3600)),
            idle_timeout: HumanDuration(Duration::from_secs(30)),
            update_delay: Delay::Fixed(HumanDuration(Duration::ZERO)),
            max_payload: frame::DEFAULT_MAX_PAYLOAD,
            limits: Limits::default(),
            faults: Default::default(),
        }
    }
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            eio3: true,
            eio4: true,
            path_prefix: None,
            outputs: 1,
            replies: Vec::new(),
            delay: Delay::Fixed(HumanDuration(Duration::from_millis(20))),
            output_gap: Delay::Fixed(HumanDuration(Duration::ZERO)),
            typing: true,
            ping_interval: HumanDuration(Duration::from_secs(25)),
            ping_timeout: HumanDuration(Duration::from_secs(20)),
            seed: 1,
            url_tokens: Vec::new(),
            ack_timeout: HumanDuration(Duration::from_secs(5)),
            runtime: RuntimeEmulatorConfig::default(),
            stall: None,
            degrade: None,
            rest: Default::default(),
            faults: Default::default(),
        }
    }
}

/// Why an emulator configuration could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorConfigError {
    #[error("cannot read emulator config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid emulator config {path}: {message}")]
    Yaml { path: PathBuf, message: String },
    #[error("invalid emulator setting `{field}`: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

impl EmulatorConfig {
    /// A copy fit for reports: URL tokens and the client secret redacted.
    pub fn redacted(&self) -> EmulatorConfig {
        let mut c = self.clone();
        c.url_tokens = c
            .url_tokens
            .iter()
            .map(|t| crate::secret::redact(t))
            .collect();
        c.runtime.client_secret = crate::secret::redact(&c.runtime.client_secret);
        c.rest = c.rest.redacted();
        c
    }

    /// Loads a YAML file (all fields optional, unknown fields rejected) and validates it.
    /// YAML errors carry the line and column.
    pub fn from_yaml_file(path: impl AsRef<Path>) -> Result<Self, EmulatorConfigError> {
        let path = path.as_ref();
        let text = crate::fsio::read_to_string_capped(path, crate::fsio::MAX_CONFIG_BYTES)
            .map_err(|source| EmulatorConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
        Self::from_yaml_str(&text).map_err(|e| match e {
            EmulatorConfigError::Yaml { message, .. } => EmulatorConfigError::Yaml {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        })
    }

    /// Parses YAML text (see [`from_yaml_file`](Self::from_yaml_file)); the error's
    /// path is `<string>`.
    pub fn from_yaml_str(text: &str) -> Result<Self, EmulatorConfigError> {
        // An empty document means "all defaults".
        let config: EmulatorConfig = if text.trim().is_empty() {
            EmulatorConfig::default()
        } else {
            serde_saphyr::from_str(text).map_err(|e| EmulatorConfigError::Yaml {
                path: PathBuf::from("<string>"),
                message: e.to_string(),
            })?
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks values serde cannot: at least one protocol, a sane prefix, bounds.
    pub fn validate(&self) -> Result<(), EmulatorConfigError> {
        let invalid = |field, message: &str| {
            Err(EmulatorConfigError::Invalid {
                field,
                message: message.to_string(),
            })
        };
        if !self.eio3 && !self.eio4 {
            return invalid(
                "eio3/eio4",
                "both protocols are disabled; set `eio3: true` and/or `eio4: true`",
            );
        }
        if let Some(prefix) = &self.path_prefix {
            if !prefix.starts_with('/') || prefix.trim_end_matches('/').is_empty() {
                return invalid(
                    "path_prefix",
                    "must start with `/` and name a path, e.g. `/cognigy` (omit it for no prefix)",
                );
            }
            if prefix
                .chars()
                .any(|c| c.is_whitespace() || c == '?' || c == '#' || c == '%')
            {
                return invalid(
                    "path_prefix",
                    "must be a plain path without spaces, `?`, `#` or `%`, e.g. `/cognigy`",
                );
            }
        }
        if self.outputs > MAX_OUTPUTS {
            return invalid(
                "outputs",
                &format!("at most {MAX_OUTPUTS} outputs per turn"),
            );
        }
        if self.replies.iter().any(|r| r.outputs > MAX_OUTPUTS) {
            return invalid(
                "replies.outputs",
                &format!("at most {MAX_OUTPUTS} outputs per turn"),
            );
        }
        if self.ping_interval.0.is_zero() || self.ping_timeout.0.is_zero() {
            return invalid(
                "ping_interval/ping_timeout",
                "must be greater than zero, e.g. `25s` and `20s`",
            );
        }
        if self.ack_timeout.0.is_zero() {
            return invalid("ack_timeout", "must be greater than zero, e.g. `5s`");
        }
        self.runtime.validate()?;
        self.rest.validate()
    }

    /// The prefix without a trailing slash (`/cognigy/` → `/cognigy`), if one is set.
    pub fn normalized_prefix(&self) -> Option<&str> {
        self.path_prefix
            .as_deref()
            .map(|p| p.trim_end_matches('/'))
            .filter(|p| !p.is_empty())
    }
}

impl RuntimeEmulatorConfig {
    /// Checks the runtime settings (field names as in YAML, under `runtime.`).
    pub fn validate(&self) -> Result<(), EmulatorConfigError> {
        let invalid = |field, message: &str| {
            Err(EmulatorConfigError::Invalid {
                field,
                message: message.to_string(),
            })
        };
        if self.client_id.is_empty() || self.client_secret.is_empty() {
            return invalid(
                "runtime.client_id/runtime.client_secret",
                "must not be empty (defaults: `finalping` / `finalping-secret`)",
            );
        }
        if self.token_lifetime.0.is_zero() {
            return invalid(
                "runtime.token_lifetime",
                "must be greater than zero, e.g. `1h` (or `1s` to test token expiry)",
            );
        }
        if self.idle_timeout.0.is_zero() {
            return invalid(
                "runtime.idle_timeout",
                "must be greater than zero, e.g. `30s`",
            );
        }
        if self.max_payload < MIN_PAYLOAD {
            return invalid(
                "runtime.max_payload",
                &format!(
                    "must be at least {MIN_PAYLOAD} bytes (default {})",
                    frame::DEFAULT_MAX_PAYLOAD
                ),
            );
        }
        if self.limits.max_in_flight_per_session == 0 || self.limits.max_variables_per_scope == 0 {
            return invalid(
                "runtime.limits",
                "max_in_flight_per_session and max_variables_per_scope must be at least 1",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_with_every_field_loads() {
        let yaml = "eio3: true\neio4: false\npath_prefix: /cognigy/\noutputs: 3\n\
delay: uniform(20ms, 80ms)\noutput_gap: 5ms\ntyping: false\nping_interval: 1s\n\
ping_timeout: 2s\nseed: 9\nurl_tokens: [a, b]\nack_timeout: 3s\n";
        let c = EmulatorConfig::from_yaml_str(yaml).unwrap();
        assert!(!c.eio4);
        assert_eq!(c.outputs, 3);
        assert_eq!(c.delay.to_string(), "uniform(20ms, 80ms)");
        assert_eq!(c.normalized_prefix(), Some("/cognigy"));
        assert_eq!(c.url_tokens, vec!["a".to_string(), "b".to_string()]);
        assert_eq!(c.ack_timeout.0, Duration::from_secs(3));
    }

    #[test]
    fn empty_yaml_is_default() {
        assert_eq!(
            EmulatorConfig::from_yaml_str("").unwrap(),
            EmulatorConfig::default()
        );
    }

    #[test]
    fn yaml_errors_name_line_and_column() {
        let e = EmulatorConfig::from_yaml_str("outputs: 2\ndelay: uniform(80ms, 20ms)\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("greater than max"), "{e}");
        assert!(e.contains("line 2 column 8"), "no line:col in {e}");
        let e = EmulatorConfig::from_yaml_str("outputs: 2\nbogus: 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bogus"), "{e}");
    }

    #[test]
    fn validation_rejects_nonsense() {
        let bad = [
            EmulatorConfig {
                eio3: false,
                eio4: false,
                ..Default::default()
            },
            EmulatorConfig {
                path_prefix: Some("cognigy".into()),
                ..Default::default()
            },
            EmulatorConfig {
                path_prefix: Some("/".into()),
                ..Default::default()
            },
            EmulatorConfig {
                outputs: MAX_OUTPUTS + 1,
                ..Default::default()
            },
            EmulatorConfig {
                ping_interval: HumanDuration(Duration::ZERO),
                ..Default::default()
            },
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?}");
        }
        assert!(EmulatorConfig::default().validate().is_ok());
    }

    #[test]
    fn runtime_block_loads_and_errors_are_positioned() {
        let yaml = "outputs: 1
runtime:
  client_id: me
  client_secret: s3
  token_lifetime: 300ms
  idle_timeout: 2s
  update_delay: uniform(1ms, 5ms)
  max_payload: 4096
  limits:
    max_in_flight_per_session: 3
";
        let c = EmulatorConfig::from_yaml_str(yaml).unwrap();
        assert_eq!(c.runtime.client_id, "me");
        assert_eq!(c.runtime.token_lifetime.0, Duration::from_millis(300));
        assert_eq!(c.runtime.idle_timeout.0, Duration::from_secs(2));
        assert_eq!(c.runtime.update_delay.to_string(), "uniform(1ms, 5ms)");
        assert_eq!(c.runtime.max_payload, 4096);
        assert_eq!(c.runtime.limits.max_in_flight_per_session, 3);
        assert_eq!(c.runtime.limits.max_variables_per_scope, 500);
        assert_eq!(
            EmulatorConfig::default().runtime.max_payload,
            frame::DEFAULT_MAX_PAYLOAD
        );

        let e = EmulatorConfig::from_yaml_str("outputs: 1\nruntime:\n  bogus: 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bogus") && e.contains("line 3"), "{e}");
        let e = EmulatorConfig::from_yaml_str("runtime:\n  update_delay: uniform(9ms, 1ms)\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2 column 17"), "no line:col in {e}");
        let e = EmulatorConfig::from_yaml_str("runtime:\n  token_lifetime: 0ms\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("runtime.token_lifetime"), "{e}");
        let e = EmulatorConfig::from_yaml_str("runtime:\n  max_payload: 10\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("runtime.max_payload"), "{e}");
    }

    #[test]
    fn missing_file_names_the_path() {
        let e = EmulatorConfig::from_yaml_file("/nonexistent/emu.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/emu.yaml"), "{e}");
    }
}
