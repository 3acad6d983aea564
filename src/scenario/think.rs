//! Think time: `500ms` (fixed pause) or `1s..3s` (uniformly jittered in the
//! range). Owns parsing, the YAML form (serialises back to the same form) and
//! sampling; the engine decides when to pause.

use super::ThinkTime;
use crate::duration::HumanDuration;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// How to write a think time, for error hints.
pub const THINK_HINT: &str =
    "write `500ms` for a fixed pause or `1s..3s` for a random pause between 1s and 3s (units us, ms, s, m, h)";

/// Why a think time was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ThinkError {
    #[error("invalid think time `{input}`: {reason}")]
    Duration { input: String, reason: &'static str },
    #[error("think range `{input}` has its minimum above its maximum")]
    Reversed { input: String },
}

impl ThinkError {
    /// How to fix it, for the `hint:` line.
    pub fn hint(&self) -> String {
        match self {
            ThinkError::Duration { .. } => THINK_HINT.to_string(),
            ThinkError::Reversed { .. } => {
                "write the smaller duration first, e.g. `1s..3s`".to_string()
            }
        }
    }
}

impl ThinkTime {
    /// A fixed pause.
    pub fn fixed(d: Duration) -> ThinkTime {
        ThinkTime { min: d, max: d }
    }

    /// One pause: `min` when fixed, else uniform in `min..=max`.
    pub fn sample(&self, rng: &mut impl rand::Rng) -> Duration {
        if self.max <= self.min {
            return self.min;
        }
        let lo = nanos(self.min);
        let hi = nanos(self.max);
        Duration::from_nanos(rng.random_range(lo..=hi))
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl FromStr for ThinkTime {
    type Err = ThinkError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let one = |part: &str| {
            part.parse::<HumanDuration>()
                .map(HumanDuration::as_duration)
                .map_err(|e| ThinkError::Duration {
                    input: s.trim().to_string(),
                    reason: e.reason,
                })
        };
        match s.split_once("..") {
            None => one(s).map(ThinkTime::fixed),
            Some((lo, hi)) => {
                let (min, max) = (one(lo)?, one(hi)?);
                if min > max {
                    return Err(ThinkError::Reversed {
                        input: s.trim().to_string(),
                    });
                }
                Ok(ThinkTime { min, max })
            }
        }
    }
}

impl fmt::Display for ThinkTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.min == self.max {
            write!(f, "{}", HumanDuration(self.min))
        } else {
            write!(
                f,
                "{}..{}",
                HumanDuration(self.min),
                HumanDuration(self.max)
            )
        }
    }
}

impl Serialize for ThinkTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ThinkTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|e: ThinkError| super::error::de_error(&e, e.hint()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn parses_fixed_and_range() {
        assert_eq!(
            "500ms".parse::<ThinkTime>().unwrap(),
            ThinkTime::fixed(ms(500))
        );
        assert_eq!(
            "1s..3s".parse::<ThinkTime>().unwrap(),
            ThinkTime {
                min: ms(1000),
                max: ms(3000)
            }
        );
        assert_eq!(
            " 1s .. 1.5s ".parse::<ThinkTime>().unwrap(),
            ThinkTime {
                min: ms(1000),
                max: ms(1500)
            }
        );
    }

    #[test]
    fn rejects_bad_forms_with_hint() {
        for bad in ["", "1s..", "..2s", "1s-3s", "2 minutes", "5"] {
            let e = bad.parse::<ThinkTime>().unwrap_err();
            assert!(matches!(e, ThinkError::Duration { .. }), "{bad}: {e}");
            assert!(e.hint().contains("1s..3s"), "{bad}");
        }
        let e = "3s..1s".parse::<ThinkTime>().unwrap_err();
        assert_eq!(
            e,
            ThinkError::Reversed {
                input: "3s..1s".into()
            }
        );
    }

    #[test]
    fn serialises_back_to_same_form() {
        for s in ["500ms", "1s..3s", "0ms", "250ms..2m"] {
            let t: ThinkTime = s.parse().unwrap();
            assert_eq!(t.to_string(), s);
            assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{s}\""));
        }
    }

    #[test]
    fn sample_fixed_is_exact_and_range_stays_inside_and_varies() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let fixed = ThinkTime::fixed(ms(500));
        assert_eq!(fixed.sample(&mut rng), ms(500));

        let range = ThinkTime {
            min: ms(1000),
            max: ms(3000),
        };
        let samples: Vec<Duration> = (0..200).map(|_| range.sample(&mut rng)).collect();
        assert!(samples.iter().all(|d| *d >= ms(1000) && *d <= ms(3000)));
        let below_mid = samples.iter().filter(|d| **d < ms(2000)).count();
        assert!(
            (50..150).contains(&below_mid),
            "not uniform-ish: {below_mid}/200"
        );
    }

    #[test]
    fn sample_is_reproducible_with_a_seed() {
        let range = ThinkTime {
            min: ms(0),
            max: ms(10_000),
        };
        let run = |seed| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            (0..5).map(|_| range.sample(&mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }
}
