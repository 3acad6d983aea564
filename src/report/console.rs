//! The final table printed to the terminal after a run.

use super::{ms, RunReport};
use crate::metrics::Counter;
use crate::thresholds::Outcome;
use std::fmt::Write as _;

/// Renders the end-of-run table (latencies, turn accounting, failures).
pub fn final_table(r: &RunReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n{} — {} in {:.1} s, peak {} VUs, {:.1} turns/s",
        r.scenario,
        r.status.as_str().to_uppercase(),
        r.duration_s,
        r.peak_vus,
        r.turns_per_sec()
    );
    let _ = writeln!(
        s,
        "{:<20} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "metric (ms)", "count", "min", "p50", "p90", "p99", "p99.9", "max"
    );
    // Metrics the run did not produce (e.g. context metrics in a chat-only run) are left out.
    for (name, m) in r.metrics.iter().filter(|(_, m)| m.count > 0) {
        let _ = writeln!(
            s,
            "{:<20} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
            name,
            m.count,
            ms(m.min_ms),
            ms(m.p50_ms),
            ms(m.p90_ms),
            ms(m.p99_ms),
            ms(m.p99_9_ms),
            ms(m.max_ms)
        );
    }
    // Per scenario / named step, when there is more than the one scenario.
    if r.tags.len() > 1 {
        let _ = writeln!(
            s,
            "{:<40} {:>8} {:>8} {:>12} {:>12} {:>12}",
            "tag", "ok", "failed", "final_ping p50", "p99", "update p99"
        );
        for (tag, t) in &r.tags {
            let ok = t.counters.get("turns_ok").copied().unwrap_or(0)
                + t.counters.get("updates_ok").copied().unwrap_or(0);
            let sent = t.counters.get("turns_sent").copied().unwrap_or(0)
                + t.counters.get("updates_sent").copied().unwrap_or(0);
            let p = |m: &str, f: fn(&crate::metrics::MetricSummary) -> f64| {
                t.metrics.get(m).map_or("-".to_string(), |x| ms(f(x)))
            };
            let _ = writeln!(
                s,
                "{:<40} {:>8} {:>8} {:>12} {:>12} {:>12}",
                tag,
                ok,
                sent.saturating_sub(ok),
                p("final_ping", |x| x.p50_ms),
                p("final_ping", |x| x.p99_ms),
                p("context_update", |x| x.p99_ms)
            );
        }
    }
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
            c(Counter::RuntimeReconnects),
            ctx.token_requests
        );
    }
    if !r.errors.is_empty() {
        let causes: Vec<String> = r.errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(s, "failures by cause: {}", causes.join(" · "));
    }
    for hint in &r.hints {
        let _ = writeln!(s, "hint: {hint}");
    }
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
            "!!! THE LOAD GENERATOR WAS SATURATED: {} — its latencies include its own delays",
            sc.reasons.join("; ")
        );
    }
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
    let _ = writeln!(s, "{}", r.status_reason);
    s
}

pub fn print_final_table(r: &RunReport) {
    print!("{}", final_table(r));
}
