//! `timeseries.csv`: one row per collector interval of a [`Timeline`] — counts
//! of the interval, p50/p90/p99/max of the main latency metrics, and the
//! generator's own CPU, RSS and scheduling lag. It only formats what the
//! timeline holds.
//!
//! Columns, in order:
//! - `t_start_s`, `t_end_s`: interval bounds in seconds from the run start;
//! - `active_vus`: VUs running at the end of the interval;
//! - `turns_started`, `turns_completed`, `turns_failed`, `outputs`,
//!   `updates_completed`, `updates_failed`: increases during the interval;
//! - for each of `final_ping`, `first_output`, `connect`, `context_update`:
//!   `<m>_p50_ms`, `<m>_p90_ms`, `<m>_p99_ms`, `<m>_max_ms`;
//! - `schedule_lag_p99_ms` (intended → actual start of open-model conversations);
//! - `cpu_percent` (generator process, % of one core), `rss_mib` (current
//!   resident memory), `scheduler_lag_p99_ms` (tokio lag probe).
//!
//! A cell is empty when there is nothing to say: a metric without samples in
//! that interval, or a metric/counter this build does not have yet (the
//! columns are looked up by their interface names, so they fill in by
//! themselves once the metric exists). An empty cell never means zero.

use super::ms;
use crate::metrics::{Counter, Interval, Metric, Timeline};
use std::io::{self, Write};

/// File name inside the run folder.
pub const TIMESERIES_FILE: &str = "timeseries.csv";

/// Latency metrics with percentile columns.
const MAIN_METRICS: [Metric; 4] = [
    Metric::FinalPing,
    Metric::FirstOutput,
    Metric::Connect,
    Metric::ContextUpdate,
];

/// The header row.
pub fn timeseries_header() -> Vec<String> {
    let mut cols: Vec<String> = COUNT_COLUMNS.iter().map(|s| s.to_string()).collect();
    for m in MAIN_METRICS {
        for q in ["p50", "p90", "p99", "max"] {
            cols.push(format!("{}_{q}_ms", m.name()));
        }
    }
    for c in std::iter::once("schedule_lag_p99_ms").chain(GAUGE_COLUMNS) {
        cols.push(c.to_string());
    }
    cols
}

/// The leading columns: interval bounds, active VUs and the interval's counts.
pub(crate) const COUNT_COLUMNS: [&str; 9] = [
    "t_start_s",
    "t_end_s",
    "active_vus",
    "turns_started",
    "turns_completed",
    "turns_failed",
    "outputs",
    "updates_completed",
    "updates_failed",
];
/// The trailing generator gauge columns.
pub(crate) const GAUGE_COLUMNS: [&str; 3] = ["cpu_percent", "rss_mib", "scheduler_lag_p99_ms"];

fn us_as_ms(us: u64) -> String {
    ms(us as f64 / 1000.0)
}

/// The row of one interval (same columns as [`timeseries_header`]).
pub fn timeseries_row(i: &Interval) -> Vec<String> {
    let g = i.gauges();
    let mut cells = vec![
        format!("{:.3}", i.start().as_secs_f64()),
        format!("{:.3}", i.end().as_secs_f64()),
        g.active_vus.to_string(),
        i.counter(Counter::TurnsSent).to_string(),
        i.counter(Counter::TurnsOk).to_string(),
        i.turns_failed().to_string(),
        i.counter(Counter::Outputs).to_string(),
        (i.counter(Counter::UpdatesOk) + i.updates_failed()).to_string(),
        i.updates_failed().to_string(),
    ];
    for m in MAIN_METRICS {
        match i.stats(m) {
            Some(s) => cells.extend([s.p50_us, s.p90_us, s.p99_us, s.max_us].map(us_as_ms)),
            None => cells.extend(std::iter::repeat_n(String::new(), 4)),
        }
    }
    cells.push(
        i.stats(Metric::ScheduleLag)
            .map_or_else(String::new, |s| us_as_ms(s.p99_us)),
    );
    cells.push(format!("{:.1}", g.cpu_percent));
    cells.push(format!("{:.1}", g.rss_kib as f64 / 1024.0));
    cells.push(us_as_ms(g.scheduler_lag_p99_us));
    cells
}

/// Writes `timeseries.csv` (header + one row per interval) into `out`.
pub fn write_timeseries(timeline: &Timeline, out: &mut dyn Write) -> io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(timeseries_header())?;
    for interval in timeline.intervals() {
        w.write_record(timeseries_row(interval))?;
    }
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Gauges, Snapshot};
    use std::time::{Duration, SystemTime};

    fn parse(text: &str) -> Vec<Vec<String>> {
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(text.as_bytes());
        r.records()
            .map(|rec| rec.unwrap().iter().map(str::to_string).collect())
            .collect()
    }

    #[test]
    fn one_row_per_interval_with_empty_cells_for_missing_samples() {
        let mut t = Timeline::new(SystemTime::UNIX_EPOCH, Duration::from_secs(1));
        let mut a = Snapshot::new();
        for ms in [10u64, 20, 30, 40] {
            a.record(Metric::FinalPing, Duration::from_millis(ms));
        }
        a.add(Counter::TurnsSent, 5);
        a.add(Counter::TurnsOk, 4);
        a.add(Counter::TurnsError, 1);
        a.add(Counter::Outputs, 9);
        let gauges = Gauges {
            active_vus: 3,
            cpu_percent: 55.56,
            rss_kib: 10 * 1024,
            scheduler_lag_p99_us: 1500,
        };
        t.push(Duration::ZERO, Duration::from_millis(1000), &a, gauges);
        t.push(
            Duration::from_millis(1000),
            Duration::from_millis(2001),
            &Snapshot::new(),
            Gauges::default(),
        );
        let mut out = Vec::new();
        write_timeseries(&t, &mut out).unwrap();
        let rows = parse(std::str::from_utf8(&out).unwrap());
        assert_eq!(rows.len(), 3);
        let header = &rows[0];
        assert_eq!(header, &timeseries_header());
        assert_eq!(header.len(), 9 + 4 * 4 + 4);
        let col = |row: &Vec<String>, name: &str| {
            let i = header.iter().position(|h| h == name).unwrap();
            row[i].clone()
        };
        let r1 = &rows[1];
        assert_eq!(col(r1, "t_start_s"), "0.000");
        assert_eq!(col(r1, "t_end_s"), "1.000");
        assert_eq!(col(r1, "active_vus"), "3");
        assert_eq!(col(r1, "turns_started"), "5");
        assert_eq!(col(r1, "turns_completed"), "4");
        assert_eq!(col(r1, "turns_failed"), "1");
        assert_eq!(col(r1, "outputs"), "9");
        // HDR value at the 50th percentile of {10,20,30,40} ms, 3 digits.
        assert_eq!(col(r1, "final_ping_p50_ms"), "20.015");
        assert_eq!(col(r1, "final_ping_max_ms"), "40.031");
        assert_eq!(col(r1, "connect_p99_ms"), "");
        assert_eq!(col(r1, "context_update_p50_ms"), "");
        assert_eq!(col(r1, "cpu_percent"), "55.6");
        assert_eq!(col(r1, "rss_mib"), "10.0");
        assert_eq!(col(r1, "scheduler_lag_p99_ms"), "1.500");
        let r2 = &rows[2];
        assert_eq!(col(r2, "t_end_s"), "2.001");
        assert_eq!(col(r2, "turns_completed"), "0");
        assert_eq!(col(r2, "final_ping_p50_ms"), "");
        assert_eq!(col(r2, "final_ping_max_ms"), "");
    }
}
