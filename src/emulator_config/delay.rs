//! Reply-delay distributions for the emulator: how long the bot "thinks" before
//! an output. Owns the text form (`50ms`, `uniform(20ms, 80ms)`, …) used in YAML
//! and CLI flags, its parser, and sampling from a caller-supplied (seeded) RNG.
//!
//! Forms (durations as in [`HumanDuration`]: `250ms`, `1.5s`, `10us`, …):
//! - `50ms` or `fixed(50ms)`: always 50 ms;
//! - `uniform(20ms, 80ms)`: uniform between min and max;
//! - `normal(50ms, 10ms)`: mean, standard deviation;
//! - `lognormal(50ms, 0.5)`: median, sigma (shape, a plain number);
//! - `bimodal(0.9, 30ms, 300ms)`: with probability 0.9 the first delay, else the
//!   second; both may be any form, e.g. `bimodal(0.9, normal(30ms,5ms), normal(300ms,50ms))`.
//!
//! Samples are clamped to `0..=1h`.

use crate::duration::HumanDuration;
use rand::Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Largest delay a sample may take (keeps a wild lognormal from stalling a run).
pub const MAX_SAMPLE: Duration = Duration::from_secs(3600);

/// How deep `bimodal(…)` may nest (bounds recursion on hostile input).
const MAX_NESTING: usize = 8;

/// Every valid form, quoted in parse errors.
const VALID_FORMS: &str = "valid forms: `50ms`, `fixed(50ms)`, `uniform(20ms, 80ms)`, \
`normal(50ms, 10ms)` (mean, sd), `lognormal(50ms, 0.5)` (median, sigma), \
`bimodal(0.9, 30ms, 300ms)` or `bimodal(0.9, normal(30ms, 5ms), normal(300ms, 50ms))`";

/// A reply-delay distribution.
#[derive(Debug, Clone, PartialEq)]
pub enum Delay {
    /// Always the same delay.
    Fixed(HumanDuration),
    /// Uniform between `min` and `max` (inclusive of `min`).
    Uniform {
        min: HumanDuration,
        max: HumanDuration,
    },
    /// Normal with `mean` and standard deviation `sd`, clamped at 0.
    Normal {
        mean: HumanDuration,
        sd: HumanDuration,
    },
    /// Log-normal with the given `median` (= e^mu) and shape `sigma`.
    LogNormal { median: HumanDuration, sigma: f64 },
    /// `first` with probability `p`, else `second`.
    Bimodal {
        p: f64,
        first: Box<Delay>,
        second: Box<Delay>,
    },
}

impl Default for Delay {
    fn default() -> Self {
        Delay::Fixed(HumanDuration(Duration::ZERO))
    }
}

impl Delay {
    /// Draws one delay. Deterministic for a given RNG state.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        let secs = match self {
            Delay::Fixed(d) => d.0.as_secs_f64(),
            Delay::Uniform { min, max } => {
                let (lo, hi) = (min.0.as_secs_f64(), max.0.as_secs_f64());
                lo + (hi - lo) * rng.random::<f64>()
            }
            Delay::Normal { mean, sd } => {
                let z: f64 = rng.sample(StandardNormal);
                mean.0.as_secs_f64() + sd.0.as_secs_f64() * z
            }
            Delay::LogNormal { median, sigma } => {
                let z: f64 = rng.sample(StandardNormal);
                median.0.as_secs_f64() * (sigma * z).exp()
            }
            Delay::Bimodal { p, first, second } => {
                return if rng.random::<f64>() < *p {
                    first.sample(rng)
                } else {
                    second.sample(rng)
                };
            }
        };
        clamp_secs(secs)
    }

    /// The smallest delay [`sample`](Self::sample) can return.
    pub fn lower_bound(&self) -> Duration {
        match self {
            Delay::Fixed(d) => d.0.min(MAX_SAMPLE),
            Delay::Uniform { min, .. } => min.0.min(MAX_SAMPLE),
            // Unbounded below before clamping (normal) or arbitrarily close to 0 (lognormal).
            Delay::Normal { .. } | Delay::LogNormal { .. } => Duration::ZERO,
            Delay::Bimodal { p, first, second } => {
                if *p >= 1.0 {
                    first.lower_bound()
                } else if *p <= 0.0 {
                    second.lower_bound()
                } else {
                    first.lower_bound().min(second.lower_bound())
                }
            }
        }
    }
}

fn clamp_secs(secs: f64) -> Duration {
    if secs.is_nan() || secs <= 0.0 {
        Duration::ZERO
    } else if secs >= MAX_SAMPLE.as_secs_f64() {
        MAX_SAMPLE
    } else {
        Duration::from_secs_f64(secs)
    }
}

/// Why a delay string was rejected; the message names the problem and lists valid forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid delay `{input}`: {reason} ({VALID_FORMS})")]
pub struct DelayError {
    pub input: String,
    pub reason: String,
}

impl FromStr for Delay {
    type Err = DelayError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s, 0).map_err(|reason| DelayError {
            input: s.to_string(),
            reason,
        })
    }
}

/// Parses one delay expression; errors are the reason only (the caller adds the input).
fn parse(s: &str, depth: usize) -> Result<Delay, String> {
    if depth > MAX_NESTING {
        return Err(format!("nested deeper than {MAX_NESTING} levels"));
    }
    let t = s.trim();
    if t.is_empty() {
        return Err("empty delay".to_string());
    }
    let Some(open) = t.find('(') else {
        return duration(t, "delay").map(Delay::Fixed);
    };
    let name = t[..open].trim().to_ascii_lowercase();
    let inner = t[open + 1..]
        .strip_suffix(')')
        .ok_or_else(|| format!("`{name}(` is missing its closing `)`"))?;
    let args = split_args(inner)?;
    let want = |n: usize, shape: &str| {
        if args.len() == n {
            Ok(())
        } else {
            Err(format!(
                "`{name}` takes {n} argument(s) `{name}({shape})`, got {}",
                args.len()
            ))
        }
    };
    match name.as_str() {
        "fixed" => {
            want(1, "50ms")?;
            Ok(Delay::Fixed(duration(args[0], "fixed delay")?))
        }
        "uniform" => {
            want(2, "min, max")?;
            let min = duration(args[0], "uniform min")?;
            let max = duration(args[1], "uniform max")?;
            if min > max {
                return Err(format!("uniform min {min} is greater than max {max}"));
            }
            Ok(Delay::Uniform { min, max })
        }
        "normal" => {
            want(2, "mean, sd")?;
            Ok(Delay::Normal {
                mean: duration(args[0], "normal mean")?,
                sd: duration(args[1], "normal sd")?,
            })
        }
        "lognormal" => {
            want(2, "median, sigma")?;
            let median = duration(args[0], "lognormal median")?;
            let sigma = number(args[1], "lognormal sigma (a plain number such as 0.5)")?;
            if !(0.0..=10.0).contains(&sigma) {
                return Err(format!("lognormal sigma {sigma} must be between 0 and 10"));
            }
            Ok(Delay::LogNormal { median, sigma })
        }
        "bimodal" => {
            want(3, "p, first, second")?;
            let p = number(args[0], "bimodal probability (a number between 0 and 1)")?;
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("bimodal probability {p} must be between 0 and 1"));
            }
            Ok(Delay::Bimodal {
                p,
                first: Box::new(parse(args[1], depth + 1)?),
                second: Box::new(parse(args[2], depth + 1)?),
            })
        }
        "" => Err("missing distribution name before `(`".to_string()),
        other => Err(format!(
            "unknown distribution `{other}` (use fixed, uniform, normal, lognormal or bimodal)"
        )),
    }
}

/// Splits `a, f(b, c), d` at top-level commas.
fn split_args(inner: &str) -> Result<Vec<&str>, String> {
    let mut args = Vec::new();
    let mut depth = 0usize;
    let mut start = 0usize;
    for (i, c) in inner.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| "unbalanced `)`".to_string())?;
            }
            ',' if depth == 0 => {
                args.push(inner[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unbalanced `(`".to_string());
    }
    args.push(inner[start..].trim());
    if args.iter().any(|a| a.is_empty()) {
        return Err("empty argument".to_string());
    }
    Ok(args)
}

fn duration(s: &str, what: &str) -> Result<HumanDuration, String> {
    s.parse::<HumanDuration>()
        .map_err(|e| format!("{what}: {e}"))
}

fn number(s: &str, what: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("`{}` is not a valid {what}", s.trim())),
    }
}

impl fmt::Display for Delay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Delay::Fixed(d) => write!(f, "{d}"),
            Delay::Uniform { min, max } => write!(f, "uniform({min}, {max})"),
            Delay::Normal { mean, sd } => write!(f, "normal({mean}, {sd})"),
            Delay::LogNormal { median, sigma } => write!(f, "lognormal({median}, {sigma})"),
            Delay::Bimodal { p, first, second } => write!(f, "bimodal({p}, {first}, {second})"),
        }
    }
}

impl Serialize for Delay {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Delay {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn ms(v: u64) -> HumanDuration {
        HumanDuration(Duration::from_millis(v))
    }

    fn p(s: &str) -> Delay {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_every_form() {
        assert_eq!(p("50ms"), Delay::Fixed(ms(50)));
        assert_eq!(p(" fixed( 50ms ) "), Delay::Fixed(ms(50)));
        assert_eq!(
            p("uniform(20ms, 80ms)"),
            Delay::Uniform {
                min: ms(20),
                max: ms(80)
            }
        );
        assert_eq!(
            p("Normal(50ms,10ms)"),
            Delay::Normal {
                mean: ms(50),
                sd: ms(10)
            }
        );
        assert_eq!(
            p("lognormal(50ms, 0.5)"),
            Delay::LogNormal {
                median: ms(50),
                sigma: 0.5
            }
        );
        assert_eq!(
            p("bimodal(0.9, 30ms, 300ms)"),
            Delay::Bimodal {
                p: 0.9,
                first: Box::new(Delay::Fixed(ms(30))),
                second: Box::new(Delay::Fixed(ms(300)))
            }
        );
        assert_eq!(
            p("bimodal(0.9, normal(30ms,5ms), normal(300ms,50ms))"),
            Delay::Bimodal {
                p: 0.9,
                first: Box::new(Delay::Normal {
                    mean: ms(30),
                    sd: ms(5)
                }),
                second: Box::new(Delay::Normal {
                    mean: ms(300),
                    sd: ms(50)
                })
            }
        );
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "50ms",
            "uniform(20ms, 80ms)",
            "normal(50ms, 10ms)",
            "lognormal(50ms, 0.5)",
            "bimodal(0.9, normal(30ms, 5ms), uniform(200ms, 1s))",
        ] {
            assert_eq!(p(s).to_string(), s);
            assert_eq!(p(&p(s).to_string()), p(s));
        }
    }

    #[test]
    fn rejects_bad_input_with_reason_and_examples() {
        let cases = [
            ("", "empty"),
            ("fast", "delay"),
            ("uniform(80ms, 20ms)", "greater than max"),
            ("uniform(20ms)", "takes 2 argument"),
            ("uniform(20ms, 80ms", "closing"),
            ("normal(50ms, -1ms)", "normal sd"),
            ("lognormal(50ms, 10ms)", "sigma"),
            ("lognormal(50ms, -1)", "between 0 and 10"),
            ("bimodal(1.5, 1ms, 2ms)", "between 0 and 1"),
            (
                "bimodal(0.5, 1ms, nope(2ms))",
                "unknown distribution `nope`",
            ),
            ("gamma(1ms, 2ms)", "unknown distribution"),
            ("uniform(1ms,,2ms)", "empty argument"),
            ("uniform(1ms, 2ms))", "unbalanced"),
            ("(1ms)", "missing distribution name"),
        ];
        for (bad, why) in cases {
            let e = bad.parse::<Delay>().expect_err(bad).to_string();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(
                e.contains("uniform(20ms, 80ms)"),
                "{bad}: no example in {e}"
            );
        }
        let deep = format!("{}1ms{}", "bimodal(0.5, 1ms, ".repeat(20), ")".repeat(20));
        let e = deep.parse::<Delay>().expect_err("deep").to_string();
        assert!(e.contains("nested deeper"), "{e}");
    }

    #[test]
    fn serde_uses_the_string_form() {
        let d = p("uniform(20ms, 80ms)");
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, "\"uniform(20ms, 80ms)\"");
        assert_eq!(serde_json::from_str::<Delay>(&json).unwrap(), d);
        let e = serde_json::from_str::<Delay>("\"uniform(x)\"").unwrap_err();
        assert!(e.to_string().contains("invalid delay"), "{e}");
    }

    fn stats(d: &Delay, n: usize) -> (f64, f64, Duration, Duration) {
        let mut rng = StdRng::seed_from_u64(7);
        let xs: Vec<Duration> = (0..n).map(|_| d.sample(&mut rng)).collect();
        let secs: Vec<f64> = xs.iter().map(|x| x.as_secs_f64() * 1e3).collect();
        let mean = secs.iter().sum::<f64>() / n as f64;
        let var = secs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        let min = xs.iter().copied().min().unwrap();
        let max = xs.iter().copied().max().unwrap();
        (mean, var.sqrt(), min, max)
    }

    #[test]
    fn samples_follow_the_distribution() {
        let n = 20_000;
        let (mean, sd, min, max) = stats(&p("50ms"), 100);
        assert_eq!((mean, sd, min, max), (50.0, 0.0, ms(50).0, ms(50).0));

        let (mean, _, min, max) = stats(&p("uniform(20ms, 80ms)"), n);
        assert!((mean - 50.0).abs() < 1.0, "uniform mean {mean}");
        assert!(min >= ms(20).0 && max <= ms(80).0, "{min:?}..{max:?}");

        let (mean, sd, _, _) = stats(&p("normal(50ms, 10ms)"), n);
        assert!((mean - 50.0).abs() < 0.5, "normal mean {mean}");
        assert!((sd - 10.0).abs() < 0.5, "normal sd {sd}");

        let d = p("lognormal(50ms, 0.5)");
        let mut rng = StdRng::seed_from_u64(3);
        let mut xs: Vec<Duration> = (0..n).map(|_| d.sample(&mut rng)).collect();
        xs.sort();
        let median = xs[n / 2].as_secs_f64() * 1e3;
        assert!((median - 50.0).abs() < 2.0, "lognormal median {median}");

        let (mean, _, _, _) = stats(&p("bimodal(0.9, 30ms, 300ms)"), n);
        // 0.9 * 30 + 0.1 * 300 = 57
        assert!((mean - 57.0).abs() < 3.0, "bimodal mean {mean}");
    }

    #[test]
    fn samples_are_clamped_and_bounded_below() {
        let (_, _, min, _) = stats(&p("normal(1ms, 50ms)"), 2_000);
        assert_eq!(min, Duration::ZERO);
        let (_, _, _, max) = stats(&p("lognormal(1h, 5)"), 2_000);
        assert_eq!(max, MAX_SAMPLE);
        for (s, lb) in [
            ("50ms", ms(50).0),
            ("uniform(20ms, 80ms)", ms(20).0),
            ("normal(50ms, 1ms)", Duration::ZERO),
            ("bimodal(0.5, 30ms, uniform(10ms, 20ms))", ms(10).0),
            ("bimodal(1, 30ms, 10ms)", ms(30).0),
        ] {
            let d = p(s);
            assert_eq!(d.lower_bound(), lb, "{s}");
            let (_, _, min, _) = stats(&d, 2_000);
            assert!(min >= lb, "{s}: {min:?} < {lb:?}");
        }
    }

    #[test]
    fn same_seed_same_samples() {
        let d = p("bimodal(0.9, normal(30ms, 5ms), lognormal(300ms, 0.5))");
        let run = || {
            let mut rng = StdRng::seed_from_u64(42);
            (0..50).map(|_| d.sample(&mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }
}
