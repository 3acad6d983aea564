//! The formats of a [`CompareReport`]: console table, Markdown (for a CI job
//! summary or PR comment), JSON (the report itself) and JUnit XML (one test
//! case per compared metric). Formatting only.

use super::{CompareReport, Verdict};
use crate::report::{write_junit, JunitCase, JunitSuite};
use std::fmt::Write as _;
use std::io::{self, Write};

fn pct(v: f64) -> String {
    format!("{v:+.1}%")
}

fn p_label(p: f64) -> String {
    format!("p{p}")
}

/// The console table.
pub fn console(r: &CompareReport) -> String {
    let mut s = String::new();
    let bases: Vec<&str> = r.baselines.iter().map(|b| b.run_id.as_str()).collect();
    let _ = writeln!(
        s,
        "compare: current {} vs baseline {} — tolerance {:.1}%, {:.0}% confidence, {} resamples",
        r.current.run_id,
        bases.join(" + "),
        r.max_regression_pct,
        r.confidence * 100.0,
        r.resamples
    );
    let _ = writeln!(
        s,
        "{:<16} {:>6} {:>12} {:>12} {:>9} {:>22}  verdict",
        "metric", "pct", "baseline ms", "current ms", "delta", "CI of delta"
    );
    for m in &r.metrics {
        if m.percentiles.is_empty() {
            let _ = writeln!(
                s,
                "{:<16} {:>6} {:>12} {:>12} {:>9} {:>22}  {} ({})",
                m.metric,
                "-",
                "-",
                "-",
                "-",
                "-",
                m.verdict.as_str(),
                m.note.as_deref().unwrap_or("")
            );
            continue;
        }
        for p in &m.percentiles {
            let _ = writeln!(
                s,
                "{:<16} {:>6} {:>12.3} {:>12.3} {:>9} {:>22}  {}",
                m.metric,
                p_label(p.percentile),
                p.baseline_ms,
                p.current_ms,
                pct(p.delta_pct),
                format!("[{}, {}]", pct(p.ci_low_pct), pct(p.ci_high_pct)),
                p.verdict.as_str()
            );
        }
        let _ = writeln!(
            s,
            "{:<16} => {} (tolerance {:.1}%)",
            m.metric,
            m.verdict.as_str().to_uppercase(),
            m.tolerance_pct
        );
    }
    for w in &r.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    if let Some(why) = &r.invalid {
        let _ = writeln!(s, "!!! {why}");
    }
    let _ = writeln!(s, "verdict: {}", summary_line(r));
    s
}

fn summary_line(r: &CompareReport) -> String {
    let names = |v: Verdict| -> Vec<&str> {
        r.metrics
            .iter()
            .filter(|m| m.verdict == v)
            .map(|m| m.metric.as_str())
            .collect()
    };
    match (&r.invalid, r.verdict) {
        (Some(why), _) => format!("INVALID — {why}"),
        (None, Verdict::Worse) => {
            format!("WORSE — regression in {}", names(Verdict::Worse).join(", "))
        }
        (None, Verdict::Better) => {
            format!("BETTER — faster: {}", names(Verdict::Better).join(", "))
        }
        (None, Verdict::Same) => "SAME — no change beyond the tolerance".to_string(),
        (None, Verdict::Insufficient) => {
            "INSUFFICIENT — no metric had enough intervals on both sides".to_string()
        }
    }
}

/// Markdown: a summary line and one table row per metric and percentile.
pub fn markdown(r: &CompareReport, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "# finalping compare\n")?;
    writeln!(out, "**{}**\n", summary_line(r))?;
    writeln!(
        out,
        "- current: `{}` ({})",
        r.current.run_id, r.current.scenario
    )?;
    for b in &r.baselines {
        writeln!(out, "- baseline: `{}` ({})", b.run_id, b.scenario)?;
    }
    writeln!(
        out,
        "- tolerance {:.1}% · {:.0}% confidence intervals · bootstrap over interval histograms, {} resamples, seed {}\n",
        r.max_regression_pct,
        r.confidence * 100.0,
        r.resamples,
        r.seed
    )?;
    writeln!(
        out,
        "| metric | percentile | baseline ms | current ms | delta | CI of delta | verdict |"
    )?;
    writeln!(out, "|---|---:|---:|---:|---:|---:|---|")?;
    for m in &r.metrics {
        if m.percentiles.is_empty() {
            writeln!(
                out,
                "| `{}` | | | | | | {}: {} |",
                m.metric,
                m.verdict.as_str(),
                m.note.as_deref().unwrap_or("")
            )?;
        }
        for p in &m.percentiles {
            let verdict = match p.verdict {
                Verdict::Worse => "❌ **worse**",
                Verdict::Better => "✅ better",
                _ => p.verdict.as_str(),
            };
            writeln!(
                out,
                "| `{}` | {} | {:.3} | {:.3} | {} | [{}, {}] | {verdict} |",
                m.metric,
                p_label(p.percentile),
                p.baseline_ms,
                p.current_ms,
                pct(p.delta_pct),
                pct(p.ci_low_pct),
                pct(p.ci_high_pct)
            )?;
        }
    }
    for w in &r.warnings {
        writeln!(out, "\n> warning: {w}")?;
    }
    Ok(())
}

/// JSON: the report as is.
pub fn json(r: &CompareReport, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, r)?;
    writeln!(out)
}

/// JUnit: one test case per metric (failure when worse, skipped when it could
/// not be judged), plus an error case when an input run is invalid.
pub fn junit(r: &CompareReport, out: &mut dyn Write) -> io::Result<()> {
    let classname = format!("finalping.compare.{}", r.current.scenario);
    let mut cases: Vec<JunitCase> = r
        .metrics
        .iter()
        .map(|m| {
            let detail: Vec<String> = m
                .percentiles
                .iter()
                .map(|p| {
                    format!(
                        "{}: {:.3} ms -> {:.3} ms, {} [{}, {}] {}",
                        p_label(p.percentile),
                        p.baseline_ms,
                        p.current_ms,
                        pct(p.delta_pct),
                        pct(p.ci_low_pct),
                        pct(p.ci_high_pct),
                        p.verdict.as_str()
                    )
                })
                .collect();
            let detail = if detail.is_empty() {
                m.note.clone().unwrap_or_default()
            } else {
                detail.join("\n")
            };
            let msg = format!(
                "{}: {} (tolerance {:.1}%)",
                m.metric,
                m.verdict.as_str(),
                m.tolerance_pct
            );
            let mut c = JunitCase {
                classname: classname.clone(),
                name: m.metric.clone(),
                ..JunitCase::default()
            };
            match m.verdict {
                Verdict::Worse => c.failure = Some((msg, detail)),
                Verdict::Insufficient => c.skipped = Some(format!("{msg}: {detail}")),
                Verdict::Same | Verdict::Better => c.system_out = Some(format!("{msg}\n{detail}")),
            }
            c
        })
        .collect();
    if let Some(why) = &r.invalid {
        cases.push(JunitCase {
            classname: classname.clone(),
            name: "inputs".to_string(),
            error: Some((why.clone(), why.clone())),
            ..JunitCase::default()
        });
    }
    let suite = JunitSuite {
        name: format!("finalping compare: {}", r.current.scenario),
        time_s: 0.0,
        properties: vec![
            ("current".to_string(), r.current.run_id.clone()),
            (
                "baselines".to_string(),
                r.baselines
                    .iter()
                    .map(|b| b.run_id.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            ("verdict".to_string(), r.verdict.as_str().to_string()),
        ],
        cases,
    };
    write_junit(&[suite], out)
}
