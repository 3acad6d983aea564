//! The final table printed to the terminal after a run: latency with mean
//! and p95 (metrics with samples only), per-tag rows, turn accounting,
//! failures, generator health and thresholds. Columns size to their widest
//! cell, so long tags keep them aligned.

use super::{ms, RunReport};
use crate::metrics::Counter;
use crate::thresholds::Outcome;
use std::fmt::Write as _;

/// Renders the end-of-run table, section by section: the headline, latency,
/// per-tag rows, accounting, context updates, failures, generator health and
/// thresholds, then the sentence explaining the status.
pub fn final_table(r: &RunReport) -> String {
    let mut s = String::new();
    let sections: [fn(&RunReport, &mut String); 8] = [
        headline, latencies, tag_rows, accounting, context, failures, generator, thresholds,
    ];
    for section in sections {
        section(r, &mut s);
    }
    let _ = writeln!(s, "{}", r.status_reason);
    s
}

/// `name — STATUS in 12.3 s, peak 10 VUs, 4.5 turns/s`.
fn headline(r: &RunReport, s: &mut String) {
    let _ = writeln!(
        s,
        "\n{} — {} in {:.1} s, peak {} VUs, {:.1} turns/s",
        r.scenario,
        r.status.as_str().to_uppercase(),
        r.duration_s,
        r.peak_vus,
        r.turns_per_sec()
    );
}

/// One row per latency metric with samples (count, min, mean, percentiles, max).
fn latencies(r: &RunReport, s: &mut String) {
    // Metrics the run did not produce (e.g. context metrics in a chat-only run) are left out.
    let mut rows = vec![[
        "metric (ms)",
        "count",
        "min",
        "mean",
        "p50",
        "p90",
        "p95",
        "p99",
        "p99.9",
        "max",
    ]
    .map(String::from)
    .to_vec()];
    for (name, m) in r.metrics.iter().filter(|(_, m)| m.count > 0) {
        let mut row = vec![name.clone(), m.count.to_string()];
        row.extend(
            [
                m.min_ms, m.mean_ms, m.p50_ms, m.p90_ms, m.p95_ms, m.p99_ms, m.p99_9_ms, m.max_ms,
            ]
            .map(ms),
        );
        rows.push(row);
    }
    s.push_str(&columns(&rows));
}

/// Per scenario / named step, when there is more than the one scenario.
fn tag_rows(r: &RunReport, s: &mut String) {
    if r.tags.len() <= 1 {
        return;
    }
    let mut rows = vec![[
        "tag",
        "ok",
        "failed",
        "final_ping p50",
        "p95",
        "p99",
        "update p99",
    ]
    .map(String::from)
    .to_vec()];
    for (tag, t) in &r.tags {
        let ok = t.counters.get("turns_ok").copied().unwrap_or(0)
            + t.counters.get("updates_ok").copied().unwrap_or(0);
        let sent = t.counters.get("turns_sent").copied().unwrap_or(0)
            + t.counters.get("updates_sent").copied().unwrap_or(0);
        let p = |m: &str, f: fn(&crate::metrics::MetricSummary) -> f64| {
            t.metrics
                .get(m)
                .filter(|x| x.count > 0)
                .map_or("-".to_string(), |x| ms(f(x)))
        };
        rows.push(vec![
            tag.clone(),
            ok.to_string(),
            sent.saturating_sub(ok).to_string(),
            p("final_ping", |x| x.p50_ms),
            p("final_ping", |x| x.p95_ms),
            p("final_ping", |x| x.p99_ms),
            p("context_update", |x| x.p99_ms),
        ]);
    }
    s.push_str(&columns(&rows));
}

/// Turns, connects and (when the run had any) updates, by outcome.
fn accounting(r: &RunReport, s: &mut String) {
    let c = |k: Counter| r.counter(k);
    let _ = writeln!(
        s,
        "turns: sent {} · ok {} · timeout {} · error {} · disconnected {} · interrupted {}",
        c(Counter::TurnsSent),
        c(Counter::TurnsOk),
        c(Counter::TurnsTimeout),
        c(Counter::TurnsError),
        c(Counter::TurnsDisconnected),
        c(Counter::TurnsInterrupted)
    );
    let _ = writeln!(
        s,
        "connects: ok {} · failed {} · outputs {} · acks {} · unknown events {}",
        c(Counter::ConnectsOk),
        c(Counter::ConnectErrors),
        c(Counter::Outputs),
        c(Counter::AcksSent),
        c(Counter::UnknownEvents)
    );
    if c(Counter::UpdatesSent) > 0 || c(Counter::GetsOk) + c(Counter::GetsFailed) > 0 {
        let _ = writeln!(
            s,
            "updates: sent {} · ok {} · rejected {} · invalid {} · timeout {} · disconnected {} · interrupted {} · conflicts {} (retried {}) · gets ok {} failed {}",
            c(Counter::UpdatesSent),
            c(Counter::UpdatesOk),
            c(Counter::UpdatesRejected),
            c(Counter::UpdatesInvalid),
            c(Counter::UpdatesTimeout),
            c(Counter::UpdatesDisconnected),
            c(Counter::UpdatesInterrupted),
            c(Counter::Conflicts),
            c(Counter::ConflictRetries),
            c(Counter::GetsOk),
            c(Counter::GetsFailed)
        );
    }
}

/// Context updates: accuracy, audit records, webhook, reconnects, tokens.
fn context(r: &RunReport, s: &mut String) {
    if let Some(ctx) = &r.context {
        let a = &ctx.audit;
        let webhook = if a.webhook_enabled {
            format!(
                " · webhook sent {} failed {} dropped {}",
                a.webhook_sent, a.webhook_failed, a.webhook_dropped
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "context: accuracy {:.2}% ({} of {}) · audit records {}{} · runtime reconnects {} · token requests {}",
            ctx.accuracy_rate * 100.0,
            ctx.updates_successful,
            ctx.updates_total,
            a.records_written,
            webhook,
            r.counter(Counter::RuntimeReconnects),
            ctx.token_requests
        );
    }
}

/// Failures by cause and their hints.
fn failures(r: &RunReport, s: &mut String) {
    if !r.errors.is_empty() {
        let causes: Vec<String> = r.errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(s, "failures by cause: {}", causes.join(" · "));
    }
    for hint in &r.hints {
        let _ = writeln!(s, "hint: {hint}");
    }
}

/// What the run cost the generator and its self-check (saturation loud).
fn generator(r: &RunReport, s: &mut String) {
    let g = &r.generator;
    let _ = writeln!(
        s,
        "generator: {:.0} ms CPU ({:.0}% of a core){}, peak RSS {:.1} MiB",
        g.cpu_ms_client,
        g.cpu_percent,
        match (g.cpu_ms_emulator, g.includes_embedded_emulator) {
            (Some(e), _) => format!(", embedded emulator {e:.0} ms more"),
            (None, true) => " (includes the embedded emulator)".to_string(),
            (None, false) => String::new(),
        },
        g.max_rss_kib as f64 / 1024.0,
    );
    let sc = &r.self_check;
    let _ = writeln!(
        s,
        "self-check: scheduler lag p50 {:.3} ms, p99 {:.3} ms (budget {:.3} ms), CPU max {:.0}% of {} cores",
        sc.lag_p50_us as f64 / 1000.0,
        sc.lag_p99_us as f64 / 1000.0,
        sc.lag_p99_budget_us as f64 / 1000.0,
        sc.cpu_percent_max,
        sc.cpu_cores
    );
    if sc.saturated {
        let _ = writeln!(
            s,
            "!!! THE RUN WAS SATURATED: {} — its latencies include the generator's own delays",
            sc.reasons.join("; ")
        );
        // The cause and remedy, unless the status line below already says them.
        let diagnosis = sc
            .diagnosis()
            .filter(|d| !r.status_reason.contains(d.as_str()));
        let evidence = sc.evidence_text().map(|e| format!("evidence: {e}"));
        for line in [diagnosis, evidence].into_iter().flatten() {
            let _ = writeln!(s, "!!! {line}");
        }
    }
}

/// Each judged threshold: pass / FAIL / INVALID, value and limit.
fn thresholds(r: &RunReport, s: &mut String) {
    if !r.thresholds.is_empty() {
        let _ = writeln!(s, "thresholds:");
        for t in &r.thresholds {
            let mark = match t.outcome {
                Outcome::Pass => "pass   ",
                Outcome::Fail => "FAIL   ",
                Outcome::Invalid => "INVALID",
            };
            let _ = writeln!(
                s,
                "  {mark} {:<40} {:>14}  limit {}{}",
                t.threshold,
                t.value_text(),
                t.limit_text(),
                if t.outcome == Outcome::Invalid {
                    format!(" — {}", t.message)
                } else {
                    String::new()
                }
            );
        }
    }
}

/// Rows as aligned columns, each as wide as its widest cell (so long tags
/// never push the numbers out of line): the first column left-aligned, the
/// others right-aligned.
fn columns(rows: &[Vec<String>]) -> String {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|j| {
            rows.iter()
                .filter_map(|r| r.get(j))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut s = String::new();
    for row in rows {
        let mut line = String::new();
        for (j, cell) in row.iter().enumerate() {
            let pad = " ".repeat(widths[j].saturating_sub(cell.chars().count()));
            if j == 0 {
                line.push_str(cell);
                line.push_str(&pad);
            } else {
                line.push_str("  ");
                line.push_str(&pad);
                line.push_str(cell);
            }
        }
        s.push_str(line.trim_end());
        s.push('\n');
    }
    s
}

pub fn print_final_table(r: &RunReport) {
    print!("{}", final_table(r));
}

#[cfg(test)]
mod tests {
    use super::columns;

    #[test]
    fn columns_stay_aligned_with_long_cells() {
        let rows = vec![
            vec!["tag".to_string(), "ok".to_string(), "p99".to_string()],
            vec![
                "scenario=a-very-long-scenario-name,step=checkout-with-coupon".to_string(),
                "12".to_string(),
                "1.500".to_string(),
            ],
            vec![
                "scenario=b".to_string(),
                "3".to_string(),
                "120.250".to_string(),
            ],
        ];
        let out = columns(&rows);
        let lines: Vec<&str> = out.lines().collect();
        // Right-aligned numbers end in the same column on every line.
        let ends: Vec<usize> = lines.iter().map(|l| l.chars().count()).collect();
        assert!(ends.iter().all(|e| *e == ends[0]), "{out}");
        let ok_end = |l: &str| {
            l.find("12")
                .or_else(|| l.find(" 3 "))
                .or_else(|| l.find("ok"))
        };
        assert!(
            ok_end(lines[0]).is_some() && ok_end(lines[2]).is_some(),
            "{out}"
        );
        assert!(lines[2].starts_with("scenario=b "), "{out}");
    }
}
