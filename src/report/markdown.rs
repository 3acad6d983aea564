//! `summary.md`: a human summary suitable for a CI job summary or a PR comment.

use super::{ms, Exporter, RunReport};
use crate::thresholds::Outcome;
use std::io::Write;

pub struct SummaryMarkdown;

impl Exporter for SummaryMarkdown {
    fn file_name(&self) -> &'static str {
        "summary.md"
    }

    fn write(&self, r: &RunReport, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(out, "# finalping run `{}`\n", r.run_id)?;
        writeln!(out, "- scenario: **{}**", r.scenario)?;
        writeln!(
            out,
            "- status: **{}** — {}",
            r.status.as_str(),
            r.status_reason
        )?;
        writeln!(out, "- target: {}", r.manifest.target.url)?;
        writeln!(
            out,
            "- started: {} · duration: {:.1} s · peak VUs: {} · {:.1} turns/s\n",
            r.started_at,
            r.duration_s,
            r.peak_vus,
            r.turns_per_sec()
        )?;
        if r.self_check.saturated {
            writeln!(
                out,
                "> **The load generator was saturated**: {}. Its latencies include its own delays.\n",
                r.self_check.reasons.join("; ")
            )?;
        }
        if !r.thresholds.is_empty() {
            writeln!(out, "## Thresholds\n")?;
            writeln!(out, "| threshold | value | limit | result |")?;
            writeln!(out, "|---|---:|---:|---|")?;
            for t in &r.thresholds {
                let result = match t.outcome {
                    Outcome::Pass => "✅ pass".to_string(),
                    Outcome::Fail => "❌ **fail**".to_string(),
                    Outcome::Invalid => {
                        format!("⚠️ **invalid**: {}", t.message.replace('|', "\\|"))
                    }
                };
                writeln!(
                    out,
                    "| `{}` | {} | {} | {result} |",
                    t.threshold,
                    t.value_text(),
                    t.limit_text().replace('<', "&lt;").replace('>', "&gt;")
                )?;
            }
            writeln!(out)?;
        }
        writeln!(out, "## Latency (ms)\n")?;
        writeln!(
            out,
            "| metric | count | min | mean | p50 | p90 | p95 | p99 | p99.9 | max |"
        )?;
        writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")?;
        for (name, m) in &r.metrics {
            writeln!(
                out,
                "| `{name}` | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                m.count,
                ms(m.min_ms),
                ms(m.mean_ms),
                ms(m.p50_ms),
                ms(m.p90_ms),
                ms(m.p95_ms),
                ms(m.p99_ms),
                ms(m.p99_9_ms),
                ms(m.max_ms)
            )?;
        }
        if r.tags.len() > 1 {
            writeln!(out, "\n## Per scenario and step\n")?;
            writeln!(
                out,
                "| tag | metric | count | p50 | p90 | p99 | max |\n|---|---|---:|---:|---:|---:|---:|"
            )?;
            for (tag, t) in &r.tags {
                for (name, m) in &t.metrics {
                    writeln!(
                        out,
                        "| `{tag}` | `{name}` | {} | {} | {} | {} | {} |",
                        m.count,
                        ms(m.p50_ms),
                        ms(m.p90_ms),
                        ms(m.p99_ms),
                        ms(m.max_ms)
                    )?;
                }
            }
        }
        writeln!(out, "\n## Counters\n")?;
        writeln!(out, "| counter | value |\n|---|---:|")?;
        for (name, v) in &r.counters {
            writeln!(out, "| `{name}` | {v} |")?;
        }
        if !r.errors.is_empty() {
            writeln!(out, "\n## Failures by cause\n")?;
            writeln!(out, "| cause | count |\n|---|---:|")?;
            for (cause, n) in &r.errors {
                writeln!(out, "| `{cause}` | {n} |")?;
            }
            if !r.hints.is_empty() {
                writeln!(out)?;
                for hint in &r.hints {
                    writeln!(out, "- hint: {hint}")?;
                }
            }
        }
        if !r.segments.is_empty() {
            writeln!(
                out,
                "\n## Segments\n\nThis run merges {} segment runs; each process's own figures:\n",
                r.segments.len()
            )?;
            writeln!(out, "| segment | run id | status | started | late ms | duration s | peak VUs | turns ok | turns failed | client CPU ms | peak RSS MiB | lag p99 ms | saturated |")?;
            writeln!(
                out,
                "|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
            )?;
            for s in &r.segments {
                writeln!(
                    out,
                    "| {} | `{}` | {} | {} | {:.1} | {:.1} | {} | {} | {} | {:.0} | {:.1} | {} | {} |",
                    s.index,
                    s.run_id,
                    s.status.as_str(),
                    s.started_at,
                    s.start_late_ms,
                    s.duration_s,
                    s.peak_vus,
                    s.turns_ok,
                    s.turns_failed,
                    s.generator.cpu_ms_client,
                    s.generator.max_rss_kib as f64 / 1024.0,
                    ms(s.lag_p99_us as f64 / 1000.0),
                    if s.saturated { "**yes**" } else { "no" }
                )?;
            }
        }
        Ok(())
    }
}
