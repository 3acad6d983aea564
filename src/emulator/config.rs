//! Emulator settings, from `finalping serve` flags, `--config emulator.yaml`, or a
//! scenario's `emulator:` block. Plain data; defaults match PROTOCOL.md §1.
//! Owns loading from YAML and checking the values before a server starts.

use super::Delay;
use crate::duration::HumanDuration;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Most outputs one turn may carry (bounds per-connection buffers).
pub const MAX_OUTPUTS: u32 = 1_000;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
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
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            eio3: true,
            eio4: true,
            path_prefix: None,
            outputs: 1,
            delay: Delay::Fixed(HumanDuration(Duration::from_millis(20))),
            output_gap: Delay::Fixed(HumanDuration(Duration::ZERO)),
            typing: true,
            ping_interval: HumanDuration(Duration::from_secs(25)),
            ping_timeout: HumanDuration(Duration::from_secs(20)),
            seed: 1,
            url_tokens: Vec::new(),
            ack_timeout: HumanDuration(Duration::from_secs(5)),
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
    /// Loads a YAML file (all fields optional, unknown fields rejected) and validates it.
    /// YAML errors carry the line and column.
    pub fn from_yaml_file(path: impl AsRef<Path>) -> Result<Self, EmulatorConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| EmulatorConfigError::Read {
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
        if self.ping_interval.0.is_zero() || self.ping_timeout.0.is_zero() {
            return invalid(
                "ping_interval/ping_timeout",
                "must be greater than zero, e.g. `25s` and `20s`",
            );
        }
        if self.ack_timeout.0.is_zero() {
            return invalid("ack_timeout", "must be greater than zero, e.g. `5s`");
        }
        Ok(())
    }

    /// The prefix without a trailing slash (`/cognigy/` → `/cognigy`), if one is set.
    pub fn normalized_prefix(&self) -> Option<&str> {
        self.path_prefix
            .as_deref()
            .map(|p| p.trim_end_matches('/'))
            .filter(|p| !p.is_empty())
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
    fn missing_file_names_the_path() {
        let e = EmulatorConfig::from_yaml_file("/nonexistent/emu.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/emu.yaml"), "{e}");
    }
}
