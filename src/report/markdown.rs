//! `summary.md`: a human summary suitable for a CI job summary or a PR comment.
//! Order: status, thresholds (as written), latency (metrics with samples
//! only), per scenario and step, failures by cause, segments, then the
//! counters that are not zero (in human units, exact value beside them) and
//! the names of those that are.

use super::{human_count, ms, Exporter, RunReport};
use crate::thresholds::Outcome;
use std::io::Write;

pub struct SummaryMarkdown;

impl Exporter for SummaryMarkdown {
    fn file_name(&self) -> &'static str {
        "summary.md"
    }

    fn write(&self, r: &RunReport, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(out, "# finalping run {}\n", code(&r.run_id))?;
        writeln!(out, "- scenario: **{}**", text(&r.scenario))?;
        writeln!(
            out,
            "- status: **{}** — {}",
            r.status.as_str(),
            text(&r.status_reason)
        )?;
        writeln!(out, "- target: {}", text(&r.manifest.target.url))?;
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
                "> **The run was saturated**: {}. Its latencies include the generator's own delays.{}{}\n",
                r.self_check.reasons.join("; "),
                r.self_check.diagnosis().map_or(String::new(), |d| format!("\n>\n> {d}")),
                r.self_check.evidence_text().map_or(String::new(), |e| format!("\n>\n> Evidence: {e}"))
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
                        format!("⚠️ **invalid**: {}", text(&t.message))
                    }
                };
                writeln!(
                    out,
                    "| {} | {} | {} | {result} |",
                    code(&t.threshold.to_string()),
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
        for (name, m) in r.metrics.iter().filter(|(_, m)| m.count > 0) {
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                code(name),
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
                        "| {} | {} | {} | {} | {} | {} | {} |",
                        code(tag),
                        code(name),
                        m.count,
                        ms(m.p50_ms),
                        ms(m.p90_ms),
                        ms(m.p99_ms),
                        ms(m.max_ms)
                    )?;
                }
            }
        }
        if !r.errors.is_empty() {
            writeln!(out, "\n## Failures by cause\n")?;
            writeln!(out, "| cause | count |\n|---|---:|")?;
            for (cause, n) in &r.errors {
                writeln!(out, "| {} | {n} |", code(cause))?;
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
        writeln!(out, "\n## Counters\n")?;
        let (nonzero, zero): (Vec<_>, Vec<_>) = r.counters.iter().partition(|(_, v)| **v > 0);
        if !nonzero.is_empty() {
            writeln!(out, "| counter | value | exact |\n|---|---:|---:|")?;
            for (name, v) in &nonzero {
                writeln!(out, "| {} | {} | {v} |", code(name), human_count(name, **v))?;
            }
        }
        if !zero.is_empty() {
            let names: Vec<String> = zero.iter().map(|(n, _)| code(n)).collect();
            writeln!(out, "\nZero: {}", names.join(", "))?;
        }
        Ok(())
    }
}

/// User-supplied text (scenario names, reasons, URLs) as Markdown text: HTML
/// and Markdown syntax escaped, table pipes escaped, one line.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in crate::scenario::error::escape_controls(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A name (tag, metric, cause, threshold) as a Markdown code span that no
/// backtick, pipe or newline in it can break out of.
fn code(s: &str) -> String {
    // Newlines and other control characters come out as `\u{…}` escapes.
    let cell = crate::scenario::error::escape_controls(s).replace('|', "\\|");
    if cell.contains('`') {
        format!("`` {cell} ``")
    } else {
        format!("`{cell}`")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_cannot_inject_html_or_break_tables() {
        let t = text("<script>alert(1)</script> | **x** [l](u)");
        assert!(!t.contains('<') && !t.contains(" | "), "{t}");
        assert!(t.contains("&lt;script&gt;"), "{t}");
        let c = code("a`b|c\nd");
        assert_eq!(c, "`` a`b\\|c\\u{000a}d ``");
    }
}
