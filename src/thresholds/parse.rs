//! The YAML form of thresholds: `thresholds: { "final_ping{scenario=x}.p99": "< 800ms" }`.
//! Parses keys (metric, tag filter, statistic) and conditions (operator,
//! limit with its unit) inside deserialisation, so a bad one is reported with
//! the exact `line:col` of the key or value and a hint. Whether the metric or
//! tag exists is decided later, against the run's data (see `evaluate`).

use crate::scenario::error::de_error;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;

const KEY_HINT: &str = "write `<metric>.<statistic>` or `<metric>{tag=value}.<statistic>`, e.g. `final_ping.p99`, `errors.rate`, `turns.count`, `final_ping{scenario=checkout}.p50`; statistics: p<N> (p50, p99, p99.9), mean, min, max, count, rate";

const COND_HINT: &str = "write an operator and a limit as a string, e.g. `\"< 800ms\"`, `\"<= 1%\"`, `\"> 1000\"`, `\">= 50/s\"`; operators <, <=, >, >=; latency limits need a unit (us, ms, s, m)";

/// Which number of a metric a threshold judges.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Statistic {
    /// A percentile, 0 < N <= 100 (`p99.9` = 99.9).
    Percentile(f64),
    Mean,
    Min,
    Max,
    /// Samples of a latency metric, or a counter's value.
    Count,
    /// `errors.rate`: a fraction; everything else: per second of run time.
    Rate,
}

impl Statistic {
    fn parse(s: &str) -> Option<Statistic> {
        match s {
            "mean" | "avg" => Some(Statistic::Mean),
            "min" => Some(Statistic::Min),
            "max" => Some(Statistic::Max),
            "count" => Some(Statistic::Count),
            "rate" => Some(Statistic::Rate),
            _ => {
                let n = s.strip_prefix('p')?.replace('_', ".");
                if n.is_empty() || !n.chars().all(|c| c.is_ascii_digit() || c == '.') {
                    return None;
                }
                let v: f64 = n.parse().ok()?;
                (v > 0.0 && v <= 100.0).then_some(Statistic::Percentile(v))
            }
        }
    }

    /// Whether the statistic is a latency (needs a time limit and samples).
    pub fn is_latency(self) -> bool {
        matches!(
            self,
            Statistic::Percentile(_) | Statistic::Mean | Statistic::Min | Statistic::Max
        )
    }
}

impl fmt::Display for Statistic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Statistic::Percentile(p) => write!(f, "p{p}"),
            Statistic::Mean => write!(f, "mean"),
            Statistic::Min => write!(f, "min"),
            Statistic::Max => write!(f, "max"),
            Statistic::Count => write!(f, "count"),
            Statistic::Rate => write!(f, "rate"),
        }
    }
}

/// Comparison operator; the threshold holds when `value <op> limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }

    pub fn holds(self, value: f64, limit: f64) -> bool {
        match self {
            Op::Lt => value < limit,
            Op::Le => value <= limit,
            Op::Gt => value > limit,
            Op::Ge => value >= limit,
        }
    }
}

/// The unit of a limit (and of the value it is compared with).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Milliseconds (limits may be written in us, ms, s, m).
    Ms,
    /// Percent (`1%`); compared as a percentage.
    Percent,
    /// Per second of run time (`50/s`).
    PerSecond,
    /// A plain number (counts).
    Number,
}

impl Unit {
    /// Suffix shown after a number of this unit.
    pub fn suffix(self) -> &'static str {
        match self {
            Unit::Ms => " ms",
            Unit::Percent => "%",
            Unit::PerSecond => "/s",
            Unit::Number => "",
        }
    }
}

/// What a threshold is about: `final_ping{scenario=checkout}.p50`.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdKey {
    /// Metric, counter or aggregate name (`final_ping`, `turns_ok`, `errors`).
    pub metric: String,
    /// Tag filter (`{k=v,…}`), sorted by key.
    pub tags: BTreeMap<String, String>,
    pub statistic: Statistic,
}

impl ThresholdKey {
    /// `final_ping{scenario=checkout}` (the series, without the statistic).
    pub fn series(&self) -> String {
        if self.tags.is_empty() {
            return self.metric.clone();
        }
        let tags: Vec<String> = self.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{}{{{}}}", self.metric, tags.join(","))
    }

    fn parse(s: &str) -> Result<ThresholdKey, String> {
        let s = s.trim();
        let end = s.find(['.', '{']).ok_or_else(|| {
            format!("threshold `{s}` has no statistic (e.g. `{s}.p99` or `{s}.count`)")
        })?;
        let (metric, mut rest) = s.split_at(end);
        if !is_ident(metric) {
            return Err(format!(
                "threshold `{s}`: `{metric}` is not a metric name (letters, digits and `_`)"
            ));
        }
        let mut tags = BTreeMap::new();
        if let Some(after) = rest.strip_prefix('{') {
            let close = after
                .find('}')
                .ok_or_else(|| format!("threshold `{s}`: the tag filter has no closing `}}`"))?;
            let (inner, tail) = after.split_at(close);
            rest = tail.get(1..).unwrap_or("");
            for pair in inner.split(',') {
                let (k, v) = pair.split_once('=').ok_or_else(|| {
                    format!("threshold `{s}`: tag filter `{pair}` is not `key=value`")
                })?;
                let (k, v) = (k.trim(), v.trim().trim_matches('"'));
                if !is_ident(k) || v.is_empty() {
                    return Err(format!(
                        "threshold `{s}`: tag filter `{pair}` is not `key=value`"
                    ));
                }
                if tags.insert(k.to_string(), v.to_string()).is_some() {
                    return Err(format!("threshold `{s}`: tag `{k}` appears twice"));
                }
            }
        }
        let stat = rest.strip_prefix('.').ok_or_else(|| {
            format!("threshold `{s}` has no statistic after the metric (e.g. `.p99`)")
        })?;
        let statistic = Statistic::parse(stat.trim())
            .ok_or_else(|| format!("threshold `{s}`: unknown statistic `{stat}`"))?;
        Ok(ThresholdKey {
            metric: metric.to_string(),
            tags,
            statistic,
        })
    }
}

fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `< 800ms`: an operator and a limit, in the limit's unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub op: Op,
    /// The limit in `unit` (ms for durations, percent for `%`).
    pub limit: f64,
    pub unit: Unit,
    /// The limit as written (`800ms`), for messages.
    pub written: String,
}

impl Condition {
    fn parse(s: &str) -> Result<Condition, String> {
        let t = s.trim();
        let (op, rest) = if let Some(r) = t.strip_prefix("<=") {
            (Op::Le, r)
        } else if let Some(r) = t.strip_prefix(">=") {
            (Op::Ge, r)
        } else if let Some(r) = t.strip_prefix('<') {
            (Op::Lt, r)
        } else if let Some(r) = t.strip_prefix('>') {
            (Op::Gt, r)
        } else {
            return Err(format!("condition `{t}` has no operator"));
        };
        let written = rest.trim().to_string();
        let split = written
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(written.len());
        let (num, unit) = written.split_at(split);
        let value: f64 = num
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| format!("condition `{t}`: `{written}` does not start with a number"))?;
        let (limit, unit) = match unit.trim() {
            "" => (value, Unit::Number),
            "%" => (value, Unit::Percent),
            "/s" => (value, Unit::PerSecond),
            "us" | "µs" => (value / 1000.0, Unit::Ms),
            "ms" => (value, Unit::Ms),
            "s" => (value * 1000.0, Unit::Ms),
            "m" | "min" => (value * 60_000.0, Unit::Ms),
            other => {
                return Err(format!(
                    "condition `{t}`: unknown unit `{other}` (units: us, ms, s, m, %, /s)"
                ))
            }
        };
        Ok(Condition {
            op,
            limit,
            unit,
            written,
        })
    }
}

/// One threshold as written in the scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// The key as written (`final_ping.p99`).
    pub source: String,
    pub key: ThresholdKey,
    pub condition: Condition,
}

impl Threshold {
    /// `final_ping.p99 < 800ms`.
    pub fn expression(&self) -> String {
        format!(
            "{} {} {}",
            self.source,
            self.condition.op.as_str(),
            self.condition.written
        )
    }

    /// Parses an expression as [`Threshold::expression`] writes it
    /// (`final_ping{scenario=a}.p99 < 800ms`), e.g. back from a summary.json.
    pub fn from_expression(expression: &str) -> Result<Threshold, String> {
        // The operator is the first `<` or `>` after the tag filter, if any.
        let from = expression.rfind('}').map_or(0, |i| i + 1);
        let at = expression[from..]
            .find(['<', '>'])
            .map(|i| from + i)
            .ok_or_else(|| format!("threshold `{expression}` has no operator (<, <=, >, >=)"))?;
        let (key, condition) = expression.split_at(at);
        Threshold::parse(key, condition)
    }

    /// Parses one `key: condition` pair (no positions: for tests and the CLI).
    pub fn parse(key: &str, condition: &str) -> Result<Threshold, String> {
        let k = ThresholdKey::parse(key)?;
        let c = Condition::parse(condition)?;
        check_unit(&k, &c)?;
        Ok(Threshold {
            source: key.trim().to_string(),
            key: k,
            condition: c,
        })
    }
}

/// The limit's unit must fit the statistic: latencies take a time, counts a
/// number, `errors.rate` a percentage, other rates a number per second.
fn check_unit(k: &ThresholdKey, c: &Condition) -> Result<(), String> {
    let want: &[Unit] = match k.statistic {
        s if s.is_latency() => &[Unit::Ms],
        Statistic::Count => &[Unit::Number],
        _ if k.metric == "errors" => &[Unit::Percent],
        _ => &[Unit::PerSecond, Unit::Number],
    };
    if want.contains(&c.unit) {
        if c.unit == Unit::Percent && !(0.0..=100.0).contains(&c.limit) {
            return Err(format!("limit `{}` is not between 0% and 100%", c.written));
        }
        return Ok(());
    }
    let example = match want.first() {
        Some(Unit::Ms) => "a time such as `800ms` or `1.5s`",
        Some(Unit::Number) => "a plain number such as `1000`",
        Some(Unit::Percent) => "a percentage such as `1%`",
        _ => "a number per second such as `50/s`",
    };
    Err(format!(
        "`{}` is judged against {example}, but the limit is `{}`",
        k_display(k),
        c.written
    ))
}

fn k_display(k: &ThresholdKey) -> String {
    format!("{}.{}", k.series(), k.statistic)
}

/// The `thresholds:` block of a scenario, in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Thresholds(pub Vec<Threshold>);

impl Thresholds {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Threshold> {
        self.0.iter()
    }

    /// Whether an `errors.*` threshold decides how many failures are acceptable.
    pub fn judges_errors(&self) -> bool {
        self.0.iter().any(|t| t.key.metric == "errors")
    }
}

impl Serialize for Thresholds {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for t in &self.0 {
            let cond = format!("{} {}", t.condition.op.as_str(), t.condition.written);
            m.serialize_entry(&t.source, &cond)?;
        }
        m.end()
    }
}

/// A key, parsed while serde-saphyr knows its position.
struct KeySeed(ThresholdKey, String);

impl<'de> Deserialize<'de> for KeySeed {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ThresholdKey::parse(&s)
            .map(|k| KeySeed(k, s.trim().to_string()))
            .map_err(|e| de_error(&e, KEY_HINT))
    }
}

/// A condition, parsed (and checked against its key's statistic) while
/// serde-saphyr knows its position.
struct CondSeed<'k>(&'k ThresholdKey);

impl<'de> de::DeserializeSeed<'de> for CondSeed<'_> {
    type Value = Condition;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Condition, D::Error> {
        struct V<'k>(&'k ThresholdKey);
        impl Visitor<'_> for V<'_> {
            type Value = Condition;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "a condition such as \"< 800ms\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Condition, E> {
                let c = Condition::parse(v).map_err(|e| de_error(&e, COND_HINT))?;
                check_unit(self.0, &c).map_err(|e| de_error(&e, COND_HINT))?;
                Ok(c)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Condition, E> {
                Err(no_operator(&v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Condition, E> {
                Err(no_operator(&v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Condition, E> {
                Err(no_operator(&v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Condition, E> {
                Err(no_operator(&v))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Condition, E> {
                Err(no_operator(&"nothing"))
            }
        }
        d.deserialize_any(V(self.0))
    }
}

fn no_operator<E: de::Error>(found: &dyn fmt::Display) -> E {
    de_error(
        &format_args!("a threshold condition needs an operator, found `{found}`"),
        COND_HINT,
    )
}

impl<'de> Deserialize<'de> for Thresholds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Thresholds;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "a map of thresholds")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Thresholds, E> {
                Ok(Thresholds::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<Thresholds, E> {
                Ok(Thresholds::default())
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Thresholds, A::Error> {
                Err(de_error(
                    &"`thresholds` is a list, but it must be a map",
                    "write `thresholds: { final_ping.p99: \"< 800ms\", errors.rate: \"< 1%\" }`",
                ))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Thresholds, A::Error> {
                let mut out: Vec<Threshold> = Vec::new();
                while let Some(KeySeed(key, source)) = map.next_key::<KeySeed>()? {
                    let condition = map.next_value_seed(CondSeed(&key))?;
                    out.push(Threshold {
                        source,
                        key,
                        condition,
                    });
                }
                Ok(Thresholds(out))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_parse_back() {
        for (key, cond) in [
            ("final_ping.p99", "< 800ms"),
            ("final_ping{scenario=a,step=b}.p99.9", ">= 1.5s"),
            ("errors.rate", "<= 1%"),
            ("turns.rate", "> 2/s"),
            ("turns_ok.count", ">= 10"),
        ] {
            let t = Threshold::parse(key, cond).unwrap();
            let back = Threshold::from_expression(&t.expression()).unwrap();
            assert_eq!(back, t, "{}", t.expression());
        }
        let err = Threshold::from_expression("final_ping.p99 800ms").unwrap_err();
        assert!(err.contains("no operator"), "{err}");
    }

    #[test]
    fn keys_parse_metric_tags_and_statistic() {
        let k = ThresholdKey::parse("final_ping{scenario=checkout, step=pay}.p99.9").unwrap();
        assert_eq!(k.metric, "final_ping");
        assert_eq!(k.tags.len(), 2);
        assert_eq!(k.statistic, Statistic::Percentile(99.9));
        assert_eq!(k.series(), "final_ping{scenario=checkout,step=pay}");
        assert_eq!(
            ThresholdKey::parse("errors.rate").unwrap().statistic,
            Statistic::Rate
        );
        assert_eq!(
            ThresholdKey::parse("x.p99_9").unwrap().statistic,
            Statistic::Percentile(99.9)
        );
        for bad in [
            "final_ping",
            "final_ping.p0",
            "final_ping.p101",
            "final_ping.median",
            "final_ping{x}.p50",
            "final_ping{x=1.p50",
            ".p50",
            "fi nal.p50",
        ] {
            assert!(ThresholdKey::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn conditions_parse_operator_limit_and_unit() {
        let c = Condition::parse("<= 1.5s").unwrap();
        assert_eq!((c.op, c.limit, c.unit), (Op::Le, 1500.0, Unit::Ms));
        let c = Condition::parse(">1000").unwrap();
        assert_eq!((c.op, c.limit, c.unit), (Op::Gt, 1000.0, Unit::Number));
        assert_eq!(Condition::parse("< 1%").unwrap().unit, Unit::Percent);
        assert_eq!(Condition::parse("> 5/s").unwrap().unit, Unit::PerSecond);
        assert_eq!(Condition::parse("< 250us").unwrap().limit, 0.25);
        for bad in ["800ms", "< ", "< fast", "< 10 parsecs", "= 3"] {
            assert!(Condition::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn units_must_fit_the_statistic() {
        assert!(Threshold::parse("final_ping.p99", "< 800ms").is_ok());
        assert!(Threshold::parse("final_ping.p99", "< 800").is_err());
        assert!(Threshold::parse("turns.count", "> 1000").is_ok());
        assert!(Threshold::parse("turns.count", "> 1000ms").is_err());
        assert!(Threshold::parse("errors.rate", "< 1%").is_ok());
        assert!(Threshold::parse("errors.rate", "< 1").is_err());
        assert!(Threshold::parse("errors.rate", "< 120%").is_err());
        assert!(Threshold::parse("turns.rate", "> 50/s").is_ok());
        assert!(Threshold::parse("turns.rate", "> 5%").is_err());
        assert_eq!(
            Threshold::parse("final_ping.p99", "<800ms")
                .unwrap()
                .expression(),
            "final_ping.p99 < 800ms"
        );
    }
}
