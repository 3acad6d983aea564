//! `percentiles.csv`: one row per metric — count, min, mean, p50 … p99.9, max in
//! milliseconds with microsecond precision.

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
            w.write_record([
                name.clone(),
                m.count.to_string(),
                ms(m.min_ms),
                ms(m.mean_ms),
                ms(m.p50_ms),
                ms(m.p90_ms),
                ms(m.p95_ms),
                ms(m.p99_ms),
                ms(m.p99_9_ms),
                ms(m.p99_99_ms),
                ms(m.max_ms),
            ])?;
        }
        w.flush()?;
        Ok(())
    }
}
