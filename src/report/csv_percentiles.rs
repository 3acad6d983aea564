//! `percentiles.csv`: one row per metric — count, min, mean, p50 … p99.9, max in
//! milliseconds with microsecond precision. Every metric has its row (a
//! stable shape for scripts); a metric without samples has count 0 and blank
//! statistics, never a `0.000` that reads like a measurement.

use super::{ms, Exporter, RunReport};
use std::io::Write;

pub struct PercentilesCsv;

impl Exporter for PercentilesCsv {
    fn file_name(&self) -> &'static str {
        "percentiles.csv"
    }

    fn write(&self, report: &RunReport, out: &mut dyn Write) -> std::io::Result<()> {
        let mut w = csv::Writer::from_writer(out);
        w.write_record([
            "metric",
            "count",
            "min_ms",
            "mean_ms",
            "p50_ms",
            "p90_ms",
            "p95_ms",
            "p99_ms",
            "p99_9_ms",
            "p99_99_ms",
            "max_ms",
        ])?;
        for (name, m) in &report.metrics {
            let stat = |v: f64| if m.count > 0 { ms(v) } else { String::new() };
            w.write_record([
                name.clone(),
                m.count.to_string(),
                stat(m.min_ms),
                stat(m.mean_ms),
                stat(m.p50_ms),
                stat(m.p90_ms),
                stat(m.p95_ms),
                stat(m.p99_ms),
                stat(m.p99_9_ms),
                stat(m.p99_99_ms),
                stat(m.max_ms),
            ])?;
        }
        w.flush()?;
        Ok(())
    }
}
