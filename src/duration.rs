//! Human-readable durations (`250ms`, `1.5s`, `2m`, `1h`, `10us`) for YAML and
//! CLI flags. Owns parsing and display only; ranges (`1s..3s`) live in
//! `scenario`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A duration written the way people write it. Serialises back to the same form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub fn as_duration(self) -> Duration {
        self.0
    }
}

impl From<Duration> for HumanDuration {
    fn from(d: Duration) -> Self {
        HumanDuration(d)
    }
}

/// Why a duration string was rejected; the message says what a valid one looks like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration `{input}`: {reason} (write a number followed by a unit: `250ms`, `1.5s`, `2m`, `1h`; units us, ms, s, m, h)")]
pub struct DurationError {
    pub input: String,
    pub reason: &'static str,
}

impl FromStr for HumanDuration {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| DurationError {
            input: s.to_string(),
            reason,
        };
        let t = s.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| err("missing unit"))?;
        let (num, unit) = t.split_at(split);
        if num.is_empty() {
            return Err(err("missing number"));
        }
        let value: f64 = num.parse().map_err(|_| err("not a number"))?;
        let unit_nanos = match unit.trim() {
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" | "sec" => 1e9,
            "m" | "min" => 60e9,
            "h" => 3600e9,
            _ => return Err(err("unknown unit")),
        };
        let nanos = value * unit_nanos;
        if !nanos.is_finite() || nanos > 365.0 * 24.0 * 3600.0 * 1e9 {
            return Err(err("too large"));
        }
        // Rounded to the nearest nanosecond (exact for whole microseconds), so
        // what `Display` prints parses back to the same value; going through
        // seconds (`from_secs_f64` truncates) turned `7250317364284us` into
        // 7250317.364283999 s, shown as `7250317364283us`.
        Ok(HumanDuration(Duration::from_nanos(nanos.round() as u64)))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = self.0.as_micros();
        if us == 0 {
            write!(f, "0ms")
        } else if us.is_multiple_of(3_600_000_000) {
            write!(f, "{}h", us / 3_600_000_000)
        } else if us.is_multiple_of(60_000_000) {
            write!(f, "{}m", us / 60_000_000)
        } else if us.is_multiple_of(1_000_000) {
            write!(f, "{}s", us / 1_000_000)
        } else if us.is_multiple_of(1_000) {
            write!(f, "{}ms", us / 1_000)
        } else {
            write!(f, "{us}us")
        }
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        let ms = |s: &str| s.parse::<HumanDuration>().unwrap().0.as_micros();
        assert_eq!(ms("250ms"), 250_000);
        assert_eq!(ms("1.5s"), 1_500_000);
        assert_eq!(ms("2m"), 120_000_000);
        assert_eq!(ms("1h"), 3_600_000_000);
        assert_eq!(ms("10us"), 10);
        assert_eq!(ms(" 3 s"), 3_000_000);
    }

    #[test]
    fn rejects_bad_input_with_hint() {
        for bad in ["", "ms", "10", "10 parsecs", "1.2.3s", "-1s", "1e400h"] {
            let e = bad.parse::<HumanDuration>().unwrap_err();
            assert!(e.to_string().contains("250ms"), "{bad}: {e}");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "250ms",
            "2m",
            "1h",
            "15us",
            "3s",
            "0ms",
            "7250317364284us",
            "31535999999999us",
        ] {
            let d: HumanDuration = s.parse().unwrap();
            assert_eq!(d.to_string(), s);
        }
    }
}
