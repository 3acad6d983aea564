//! The text formats of `/metrics`: Prometheus text exposition 0.0.4 and
//! OpenMetrics 1.0 (chosen by the scraper's `Accept` header). Both are made
//! from the same [`Family`] list; they differ only in the counter `TYPE`
//! line (OpenMetrics names the family without `_total`) and the `# EOF`.

use super::series::{Family, Kind};
use std::fmt::Write;

/// Content type of the Prometheus text format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Content type of OpenMetrics text.
pub const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Which text format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Prometheus,
    OpenMetrics,
}

impl Format {
    /// OpenMetrics when the `Accept` header asks for it, else Prometheus text.
    pub fn negotiate(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Prometheus,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => PROMETHEUS_TEXT,
            Format::OpenMetrics => OPENMETRICS_TEXT,
        }
    }
}

/// Renders the families in `format`.
pub fn render(families: &[Family], format: Format) -> String {
    let mut out = String::with_capacity(64 * 1024);
    for f in families {
        let type_name = match (f.kind, format) {
            (Kind::Counter, Format::Prometheus) => format!("{}_total", f.name),
            _ => f.name.clone(),
        };
        let _ = writeln!(out, "# HELP {type_name} {}", escape_help(f.help));
        let _ = writeln!(out, "# TYPE {type_name} {}", f.kind.as_str());
        for s in &f.samples {
            out.push_str(&f.name);
            out.push_str(s.suffix);
            if !s.labels.is_empty() {
                out.push('{');
                for (i, (k, v)) in s.labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{k}=\"{}\"", escape_label(v));
                }
                out.push('}');
            }
            let _ = writeln!(out, " {}", number(s.value));
        }
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{v}")
    }
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::super::series::Sample;
    use super::*;

    fn families() -> Vec<Family> {
        vec![
            Family {
                name: "finalping_turns".into(),
                help: "Turns.",
                kind: Kind::Counter,
                samples: vec![Sample {
                    suffix: "_total",
                    labels: vec![("run_id", "a\"b\\c\nd".into()), ("outcome", "ok".into())],
                    value: 3.0,
                }],
            },
            Family {
                name: "finalping_x_seconds".into(),
                help: "X.",
                kind: Kind::Histogram,
                samples: vec![Sample {
                    suffix: "_bucket",
                    labels: vec![("le", "+Inf".into())],
                    value: 0.25,
                }],
            },
        ]
    }

    #[test]
    fn prometheus_text_names_counters_with_total_and_escapes_labels() {
        let t = render(&families(), Format::Prometheus);
        assert!(t.contains("# TYPE finalping_turns_total counter\n"), "{t}");
        assert!(
            t.contains("finalping_turns_total{run_id=\"a\\\"b\\\\c\\nd\",outcome=\"ok\"} 3\n"),
            "{t}"
        );
        assert!(t.contains("finalping_x_seconds_bucket{le=\"+Inf\"} 0.25\n"));
        assert!(!t.contains("# EOF"));
    }

    #[test]
    fn openmetrics_names_the_counter_family_and_ends_with_eof() {
        let t = render(&families(), Format::OpenMetrics);
        assert!(t.contains("# TYPE finalping_turns counter\n"), "{t}");
        assert!(t.ends_with("# EOF\n"));
        assert_eq!(
            Format::negotiate(Some(
                "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
            )),
            Format::OpenMetrics
        );
        assert_eq!(Format::negotiate(Some("text/plain")), Format::Prometheus);
        assert_eq!(Format::negotiate(None), Format::Prometheus);
    }
}
