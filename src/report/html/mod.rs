//! `report.html`: one self-contained page per run — no network, no
//! JavaScript — with inline SVG charts made from the run's [`Timeline`]
//! (every latency metric over time as small multiples with its threshold
//! limits, throughput and active VUs, failures over time by cause, generator
//! health, the percentile spectrum of the merged histograms on log axes) and
//! tables made from the [`RunReport`] (status, thresholds, latency, failures
//! by cause, tags, context updates, counters in human units, manifest). A
//! last interval shorter than the others is left out of the time charts (its
//! few samples would draw a spike) and the page says so. Every text taken from the run is
//! HTML-escaped. Without a timeline (a report regenerated from
//! `summary.json`) the page says the time charts need the original run and
//! shows the rest. It only formats numbers the report already holds.

pub mod svg;

use super::{human_count, ms, Exporter, RunReport};
use crate::metrics::{Counter, Metric, Timeline};
use crate::report::RunStatus;
use crate::thresholds::{Outcome, ThresholdResult, Unit, ATTEMPT_COUNTERS, ERROR_COUNTERS};
use std::fmt::Write as _;
use std::io::Write;
use svg::{Bar, BarChart, Dash, Limit, LineChart, Series};

/// File name inside the run folder.
pub const HTML_FILE: &str = "report.html";

pub struct ReportHtml;

impl Exporter for ReportHtml {
    fn file_name(&self) -> &'static str {
        HTML_FILE
    }

    fn write(&self, report: &RunReport, out: &mut dyn Write) -> std::io::Result<()> {
        out.write_all(render(report).as_bytes())
    }
}

/// HTML-escapes text for element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1a1a1a;background:#fafafa;line-height:1.4}
main{max-width:1320px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:1.5rem;margin:.2em 0}h2{font-size:1.2rem;margin:1.6em 0 .5em;border-bottom:1px solid #ccc;padding-bottom:.2em}
.status{padding:12px 16px;border-radius:6px;margin:12px 0;font-size:1.05rem;border:2px solid}
.status b{font-size:1.3rem;text-transform:uppercase;letter-spacing:.04em}
.passed{background:#e6f4ee;border-color:#009E73}.failed{background:#fde9e0;border-color:#D55E00}
.invalid{background:#fde9e0;border-color:#D55E00;border-width:4px}.interrupted,.incomplete{background:#fff4db;border-color:#E69F00}
.warn{background:#fff4db;border:2px solid #E69F00;padding:10px 14px;border-radius:6px;margin:12px 0}
.note{color:#444;font-style:italic}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:10px 0}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:120px}
.card .v{font-size:1.3rem;font-weight:600}.card .k{font-size:.85rem;color:#444}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:12px;align-items:start}
.wide{display:grid;grid-template-columns:1fr;gap:12px}
.chart{display:block;box-sizing:border-box;width:100%;height:auto;background:#fff;border:1px solid #ddd;border-radius:6px}
figure{margin:12px 0}
td.v-passed,td.v-better{background:#e6f4ee}td.v-breached,td.v-worse{background:#fde9e0}td.v-invalid{background:#fde9e0;font-weight:600}td.v-saturated{background:#fff4db}
table{border-collapse:collapse;background:#fff;margin:6px 0;font-size:.92rem}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;overflow-wrap:break-word}
table.summary{font-size:.85rem}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
th{background:#f0f0f0}tr.fail td{background:#fde9e0}tr.invalid td{background:#fde9e0;font-weight:600}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em}
pre{background:#fff;border:1px solid #ddd;padding:10px;overflow:auto;font-size:.85rem}
nav{margin:8px 0;font-size:.95rem}details{margin:8px 0}summary{cursor:pointer;font-weight:600}
";

/// A page of its own (sweep, capacity): a title, an intro line, an HTML table
/// (`cell_classes` gives a CSS class per cell — `v-passed`, `v-breached`,
/// `v-invalid`, `v-saturated`, `v-better`, `v-worse` colour it; may be
/// shorter than `rows`) and charts already rendered by [`svg`], same style as
/// the run page, self-contained.
pub fn render_summary_page(
    title: &str,
    intro: &str,
    header: &[&str],
    rows: &[Vec<String>],
    cell_classes: &[Vec<&str>],
    charts: &[String],
) -> String {
    let mut h = String::with_capacity(16 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>finalping · {}</title><style>{STYLE}</style></head><body><main>\n<h1>{}</h1><p>{}</p>\n",
        esc(title),
        esc(title),
        esc(intro)
    );
    h.push_str("<div class=\"charts\">\n");
    for svg in charts {
        let _ = writeln!(h, "<figure>{svg}</figure>");
    }
    h.push_str("</div>\n<table class=\"summary\"><thead><tr>");
    for c in header {
        let _ = write!(h, "<th>{}</th>", esc(c));
    }
    h.push_str("</tr></thead><tbody>\n");
    for (i, row) in rows.iter().enumerate() {
        h.push_str("<tr>");
        for (j, cell) in row.iter().enumerate() {
            match cell_classes
                .get(i)
                .and_then(|c| c.get(j))
                .filter(|c| !c.is_empty())
            {
                Some(class) => {
                    let _ = write!(h, "<td class=\"{class}\">{}</td>", esc(cell));
                }
                None => {
                    let _ = write!(h, "<td>{}</td>", esc(cell));
                }
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table>\n</main></body></html>\n");
    h
}

/// The whole page of a run.
pub fn render(r: &RunReport) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>finalping · {} · {}</title><style>{STYLE}</style></head><body><main>\n",
        esc(&r.scenario),
        esc(r.status.as_str())
    );
    header(&mut h, r);
    nav(&mut h, r);
    thresholds(&mut h, r);
    match r.timeline.as_deref() {
        Some(t) if !t.is_empty() => time_charts(&mut h, r, t),
        Some(_) => {
            h.push_str("<h2 id=\"over-time\">Over time</h2><p class=\"note\">The run recorded no intervals, so there are no time charts.</p>\n");
        }
        None => {
            h.push_str(
                "<h2 id=\"over-time\">Over time</h2><p class=\"note\">This page was regenerated from <code>summary.json</code>, \
                 which does not hold per-interval data: the charts over time and the percentile spectrum \
                 need the original run (its <code>report.html</code>, or <code>timeseries.csv</code> and the \
                 <code>.hlog</code> files).</p>\n",
            );
        }
    }
    latency_table(&mut h, r);
    failures(&mut h, r);
    tags(&mut h, r);
    generator(&mut h, r);
    segments(&mut h, r);
    context(&mut h, r);
    counters(&mut h, r);
    manifest(&mut h, r);
    let _ = writeln!(
        h,
        "<p class=\"note\">finalping {} · run <code>{}</code></p></main></body></html>",
        esc(&r.manifest.finalping_version),
        esc(&r.run_id)
    );
    h
}

/// Links to the sections this page has.
fn nav(h: &mut String, r: &RunReport) {
    let timeline = r.timeline.as_deref().is_some_and(|t| !t.is_empty());
    let links = [
        ("thresholds", "Thresholds", !r.thresholds.is_empty()),
        ("over-time", "Over time", true),
        ("throughput", "Throughput", timeline),
        ("spectrum", "Spectrum", timeline),
        ("latency", "Latency", true),
        ("failures", "Failures", true),
        ("tags", "Per scenario and step", !r.tags.is_empty()),
        ("generator", "Generator health", true),
        ("segments", "Segments", !r.segments.is_empty()),
        ("context", "Context updates", r.context.is_some()),
        ("counters", "Counters", true),
        ("manifest", "Manifest", true),
    ];
    let items: Vec<String> = links
        .iter()
        .filter(|l| l.2)
        .map(|(id, name, _)| format!("<a href=\"#{id}\">{name}</a>"))
        .collect();
    let _ = writeln!(
        h,
        "<nav aria-label=\"sections\">{}</nav>",
        items.join(" · ")
    );
}

fn status_class(s: RunStatus) -> &'static str {
    s.as_str()
}

fn header(h: &mut String, r: &RunReport) {
    let _ = writeln!(
        h,
        "<h1>finalping run: {}</h1><p>run <code>{}</code> · target {}</p>",
        esc(&r.scenario),
        esc(&r.run_id),
        esc(&r.manifest.target.url)
    );
    let mark = match r.status {
        RunStatus::Passed => "✔",
        RunStatus::Failed => "✘",
        RunStatus::Invalid => "⚠",
        RunStatus::Interrupted => "■",
        RunStatus::Incomplete => "◔",
    };
    let extra = match r.status {
        RunStatus::Invalid => " — the numbers below do not measure the target",
        RunStatus::Incomplete => {
            " — the run did not finish; the numbers cover it up to its last interval"
        }
        _ => "",
    };
    let _ = writeln!(
        h,
        "<div class=\"status {}\" role=\"status\">{mark} <b>{}</b>{extra}<br>{}</div>",
        status_class(r.status),
        esc(r.status.as_str()),
        esc(&r.status_reason)
    );
    if r.self_check.saturated {
        let _ = writeln!(
            h,
            "<div class=\"warn\"><b>The run was saturated</b>: {}. Its latencies include the generator's own delays.<br>{}</div>",
            esc(&r.self_check.reasons.join("; ")),
            esc(&r.self_check.diagnosis().unwrap_or_default())
        );
    }
    let fp = r.metrics.get(Metric::FinalPing.name());
    let failed = r.counter(Counter::TurnsTimeout)
        + r.counter(Counter::TurnsError)
        + r.counter(Counter::TurnsDisconnected)
        + r.counter(Counter::TurnsInterrupted);
    let cards = [
        ("started (UTC)", esc(&r.started_at)),
        ("duration", format!("{:.1} s", r.duration_s)),
        ("peak VUs", r.peak_vus.to_string()),
        ("turns completed", r.counter(Counter::TurnsOk).to_string()),
        ("throughput", format!("{:.1} turns/s", r.turns_per_sec())),
        ("turns failed", failed.to_string()),
        (
            "final_ping p50",
            fp.filter(|m| m.count > 0)
                .map_or("—".into(), |m| format!("{} ms", ms(m.p50_ms))),
        ),
        (
            "final_ping p99",
            fp.filter(|m| m.count > 0)
                .map_or("—".into(), |m| format!("{} ms", ms(m.p99_ms))),
        ),
    ];
    h.push_str("<div class=\"cards\">");
    for (k, v) in cards {
        let _ = write!(
            h,
            "<div class=\"card\"><div class=\"k\">{k}</div><div class=\"v\">{v}</div></div>"
        );
    }
    h.push_str("</div>\n");
}

fn thresholds(h: &mut String, r: &RunReport) {
    if r.thresholds.is_empty() {
        return;
    }
    h.push_str("<h2 id=\"thresholds\">Thresholds</h2><table><tr><th>threshold</th><th class=\"n\">value</th><th class=\"n\">limit</th><th>result</th></tr>\n");
    for t in &r.thresholds {
        let (class, result) = match t.outcome {
            Outcome::Pass => ("pass", "✔ pass".to_string()),
            Outcome::Fail => ("fail", "✘ FAIL".to_string()),
            Outcome::Invalid => ("invalid", format!("⚠ INVALID: {}", esc(&t.message))),
        };
        let _ = writeln!(
            h,
            "<tr class=\"{class}\"><td><code>{}</code></td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{result}</td></tr>",
            esc(&t.threshold),
            esc(&t.value_text()),
            esc(&t.limit_text())
        );
    }
    h.push_str("</table>\n");
}

/// Seconds from the run start at the end of each interval.
fn t_end(t: &Timeline) -> impl Iterator<Item = f64> + '_ {
    t.intervals().iter().map(|i| i.end().as_secs_f64())
}

/// An interval as long as the others (the last one of a run is usually
/// shorter: its few samples or a few ms of rate would draw a spike).
fn complete(t: &Timeline, i: &crate::metrics::Interval) -> bool {
    i.length().as_secs_f64() >= t.interval().as_secs_f64() * 0.9
}

/// The intervals drawn over time: every complete one.
fn drawn(t: &Timeline) -> impl Iterator<Item = (&crate::metrics::Interval, f64)> + '_ {
    t.intervals()
        .iter()
        .zip(t_end(t))
        .filter(move |(i, _)| complete(t, i))
}

/// Threshold limits on `metric` (whole run, in ms) as lines for its charts.
fn latency_limits(r: &RunReport, metric: &str) -> Vec<Limit> {
    r.thresholds
        .iter()
        .filter(|t| t.metric == metric && t.unit == Unit::Ms)
        .map(|t| Limit {
            name: format!("limit {}", t.threshold),
            value: t.limit,
        })
        .collect()
}

fn latency_over_time(r: &RunReport, t: &Timeline, metric: Metric) -> Option<String> {
    let mut p50 = Series::new("p50", svg::BLUE, Dash::Solid);
    let mut p90 = Series::new("p90", svg::ORANGE, Dash::Dashed);
    let mut p99 = Series::new("p99", svg::VERMILLION, Dash::Dotted);
    for (i, x) in drawn(t) {
        let s = i.stats(metric);
        let at = |f: fn(&crate::metrics::IntervalStats) -> u64| {
            s.as_ref().map(|s| (x, f(s) as f64 / 1000.0))
        };
        p50.points.push(at(|s| s.p50_us));
        p90.points.push(at(|s| s.p90_us));
        p99.points.push(at(|s| s.p99_us));
    }
    LineChart {
        title: format!("{} latency over time", metric.name()),
        x_label: "time since start (s)".into(),
        y_label: "latency (ms)".into(),
        series: vec![p50, p90, p99],
        x_min: Some(0.0),
        limits: latency_limits(r, metric.name()),
        ..LineChart::default()
    }
    .render()
}

fn per_second(count: u64, i: &crate::metrics::Interval) -> f64 {
    let len = i.length().as_secs_f64();
    if len > 0.0 {
        count as f64 / len
    } else {
        0.0
    }
}

/// A counter of an interval by its name (0 for a name that is not one).
fn interval_counter(i: &crate::metrics::Interval, name: &str) -> u64 {
    Counter::named(name).map_or(0, |c| i.counter(c))
}

const LINE_STYLES: [(&str, Dash); 6] = [
    (svg::VERMILLION, Dash::Solid),
    (svg::ORANGE, Dash::Dashed),
    (svg::PURPLE, Dash::Dotted),
    (svg::BLUE, Dash::Dashed),
    (svg::GREEN, Dash::Dotted),
    (svg::BLACK, Dash::Solid),
];

fn time_charts(h: &mut String, r: &RunReport, t: &Timeline) {
    h.push_str("<h2 id=\"over-time\">Latency over time</h2>\n");
    if let Some(last) = t.intervals().last().filter(|i| !complete(t, i)) {
        let _ = writeln!(
            h,
            "<p class=\"note\">Per interval of {} s. The last interval ({:.2} s long, ending at {:.1} s) is partial and not drawn; its samples are in every table and in the spectrum.</p>",
            t.interval().as_secs_f64(),
            last.length().as_secs_f64(),
            last.end().as_secs_f64()
        );
    }
    h.push_str("<div class=\"charts\">\n");
    let mut any = false;
    for m in t.metrics_with_samples() {
        if let Some(svg) = latency_over_time(r, t, m) {
            h.push_str(&svg);
            h.push('\n');
            any = true;
        }
    }
    if !any {
        h.push_str("<p class=\"note\">No latency sample in any complete interval.</p>");
    }
    h.push_str(
        "</div>\n<h2 id=\"throughput\">Throughput and active VUs</h2><div class=\"wide\">\n",
    );
    let mut done = Series::new("turns completed/s", svg::BLUE, Dash::Solid);
    let mut failed = Series::new("turns failed/s", svg::VERMILLION, Dash::Dashed);
    let mut upd = Series::new("updates completed/s", svg::GREEN, Dash::Dotted);
    let mut vus = Series::new("active VUs", svg::PURPLE, Dash::Solid);
    let has_updates = r.counter(Counter::UpdatesSent) > 0;
    for (i, x) in t.intervals().iter().zip(t_end(t)) {
        vus.points.push(Some((x, i.gauges().active_vus as f64)));
    }
    for (i, x) in drawn(t) {
        done.points
            .push(Some((x, per_second(i.counter(Counter::TurnsOk), i))));
        failed
            .points
            .push(Some((x, per_second(i.turns_failed(), i))));
        upd.points
            .push(Some((x, per_second(i.counter(Counter::UpdatesOk), i))));
    }
    let mut series = vec![done, failed];
    if has_updates {
        series.push(upd);
    }
    let charts = [
        LineChart {
            title: "Throughput per interval".into(),
            x_label: "time since start (s)".into(),
            y_label: "throughput (operations/s)".into(),
            series,
            x_min: Some(0.0),
            width: svg::FULL_W,
            ..LineChart::default()
        },
        LineChart {
            title: "Active VUs".into(),
            x_label: "time since start (s)".into(),
            y_label: "VUs (count)".into(),
            series: vec![vus],
            x_min: Some(0.0),
            width: svg::FULL_W,
            ..LineChart::default()
        },
    ];
    for c in charts {
        if let Some(svg) = c.render() {
            h.push_str(&svg);
            h.push('\n');
        }
    }
    failures_over_time(h, r, t);
    h.push_str("</div>\n");
    spectrum(h, r, t);
}

/// Failed operations per complete interval, one line per failure counter
/// that is not zero in the run, as % of the operations attempted in the
/// interval (the definition of `errors.rate`, whose limits are drawn).
fn failures_over_time(h: &mut String, r: &RunReport, t: &Timeline) {
    let causes: Vec<&str> = ERROR_COUNTERS
        .iter()
        .copied()
        .filter(|c| r.counters.get(*c).copied().unwrap_or(0) > 0)
        .collect();
    if causes.is_empty() {
        return;
    }
    let mut series: Vec<Series> = causes
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let (color, dash) = LINE_STYLES[k % LINE_STYLES.len()];
            Series::new(*c, color, dash)
        })
        .collect();
    for (i, x) in drawn(t) {
        let attempts: u64 = ATTEMPT_COUNTERS
            .iter()
            .map(|c| interval_counter(i, c))
            .sum();
        for (s, c) in series.iter_mut().zip(&causes) {
            let pct = (attempts > 0)
                .then(|| (x, 100.0 * interval_counter(i, c) as f64 / attempts as f64));
            s.points.push(pct);
        }
    }
    let limits = r
        .thresholds
        .iter()
        .filter(|t| t.metric == "errors" && t.unit == Unit::Percent)
        .map(|t: &ThresholdResult| Limit {
            name: format!("limit {}", t.threshold),
            value: t.limit,
        })
        .collect();
    let chart = LineChart {
        title: "Failures over time by cause".into(),
        x_label: "time since start (s)".into(),
        y_label: "failed (% of operations attempted)".into(),
        series,
        x_min: Some(0.0),
        limits,
        width: svg::FULL_W,
        ..LineChart::default()
    };
    if let Some(svg) = chart.render() {
        h.push_str(&svg);
        h.push('\n');
    }
}

/// Quantile positions for the spectrum: x = log10(1 / (1 - q)), 0 … 4 (99.99 %).
const SPECTRUM_MAX_X: f64 = 4.0;
const SPECTRUM_STEPS: usize = 160;

fn spectrum(h: &mut String, r: &RunReport, t: &Timeline) {
    h.push_str("<h2 id=\"spectrum\">Percentile spectrum</h2><div class=\"wide\">\n");
    let mut series = Vec::new();
    let mut errors = Vec::new();
    let mut limits = Vec::new();
    let mut widest = 1.0f64;
    let metrics = t.metrics_with_samples();
    for (k, m) in metrics.iter().enumerate() {
        let (color, dash) = [
            (svg::BLUE, Dash::Solid),
            (svg::ORANGE, Dash::Dashed),
            (svg::GREEN, Dash::Solid),
            (svg::PURPLE, Dash::Dotted),
            (svg::BLACK, Dash::Dashed),
            (svg::SKY, Dash::Solid),
            (svg::VERMILLION, Dash::Dotted),
        ][k % 7];
        match t.merged(*m) {
            Ok(hist) if !hist.is_empty() => {
                let mut s = Series::new(m.name(), color, dash);
                // Beyond 1 − 1/count the percentiles are all the maximum.
                let max_x = (hist.len() as f64).log10().clamp(0.0, SPECTRUM_MAX_X);
                widest = widest.max(max_x);
                for k in 0..=SPECTRUM_STEPS {
                    let x = SPECTRUM_MAX_X * k as f64 / SPECTRUM_STEPS as f64;
                    if x > max_x + 1e-9 {
                        break;
                    }
                    let q = 1.0 - 10f64.powf(-x);
                    s.points
                        .push(Some((x, hist.value_at_quantile(q) as f64 / 1000.0)));
                }
                s.points.push(Some((max_x, hist.max() as f64 / 1000.0)));
                series.push(s);
                limits.extend(latency_limits(r, m.name()));
            }
            Ok(_) => {}
            Err(e) => errors.push(e.to_string()),
        }
    }
    // The axis ends at the first decade past the rarest percentile measured.
    let last = widest.ceil() as usize;
    let ticks = ["0%", "90%", "99%", "99.9%", "99.99%"]
        .iter()
        .enumerate()
        .take(last + 1)
        .map(|(i, l)| (i as f64, l.to_string()))
        .collect();
    let chart = LineChart {
        title: "Latency by percentile (all intervals merged)".into(),
        x_label: "percentile (log scale: each step is ten times rarer)".into(),
        y_label: "latency (ms, log scale)".into(),
        series,
        x_ticks: Some(ticks),
        y_log: true,
        limits,
        width: svg::FULL_W,
        ..LineChart::default()
    };
    match chart.render() {
        Some(svg) => h.push_str(&svg),
        None => h.push_str("<p class=\"note\">No latency samples.</p>"),
    }
    h.push_str("</div>\n");
    for e in errors {
        let _ = write!(h, "<p class=\"warn\">{}</p>", esc(&e));
    }
}

fn generator_charts(h: &mut String, r: &RunReport, t: &Timeline) {
    h.push_str("<div class=\"charts\">\n");
    let mut cpu = Series::new("CPU % of one core", svg::BLUE, Dash::Solid);
    let mut cpu_limit = Series::new("saturation line", svg::BLACK, Dash::Dashed);
    let mut rss = Series::new("RSS (MiB)", svg::PURPLE, Dash::Solid);
    let mut lag = Series::new("scheduler lag p99", svg::VERMILLION, Dash::Solid);
    let mut budget = Series::new("budget", svg::BLACK, Dash::Dashed);
    let budget_ms = r.self_check.lag_p99_budget_us as f64 / 1000.0;
    for (i, x) in t.intervals().iter().zip(t_end(t)) {
        let g = i.gauges();
        // CPU % of a last partial interval of a few ms is mostly noise.
        if i.length().as_secs_f64() >= t.interval().as_secs_f64() / 2.0 {
            cpu.points.push(Some((x, g.cpu_percent)));
        }
        cpu_limit
            .points
            .push(Some((x, r.self_check.cpu_saturation_percent)));
        rss.points.push(Some((x, g.rss_kib as f64 / 1024.0)));
        lag.points
            .push(Some((x, g.scheduler_lag_p99_us as f64 / 1000.0)));
        budget.points.push(Some((x, budget_ms)));
    }
    let mut cpu_series = vec![cpu];
    if r.self_check.cpu_saturation_percent > 0.0 {
        cpu_series.push(cpu_limit);
    }
    let mut lag_series = vec![lag];
    if budget_ms > 0.0 {
        lag_series.push(budget);
    }
    let charts = [
        LineChart {
            title: "Generator CPU".into(),
            x_label: "time since start (s)".into(),
            y_label: "CPU (% of one core)".into(),
            series: cpu_series,
            x_min: Some(0.0),
            ..LineChart::default()
        },
        LineChart {
            title: "Scheduler lag p99".into(),
            x_label: "time since start (s)".into(),
            y_label: "lag (ms)".into(),
            series: lag_series,
            x_min: Some(0.0),
            ..LineChart::default()
        },
        LineChart {
            title: "Generator memory".into(),
            x_label: "time since start (s)".into(),
            y_label: "resident (MiB)".into(),
            series: vec![rss],
            x_min: Some(0.0),
            ..LineChart::default()
        },
    ];
    for c in charts {
        if let Some(svg) = c.render() {
            h.push_str(&svg);
            h.push('\n');
        }
    }
    h.push_str("</div>\n");
}

fn latency_table(h: &mut String, r: &RunReport) {
    h.push_str("<h2 id=\"latency\">Latency (ms)</h2><table><tr><th>metric</th><th class=\"n\">count</th><th class=\"n\">min</th><th class=\"n\">mean</th><th class=\"n\">p50</th><th class=\"n\">p90</th><th class=\"n\">p95</th><th class=\"n\">p99</th><th class=\"n\">p99.9</th><th class=\"n\">p99.99</th><th class=\"n\">max</th></tr>\n");
    let mut any = false;
    for (name, m) in r.metrics.iter().filter(|(_, m)| m.count > 0) {
        any = true;
        let _ = write!(
            h,
            "<tr><td><code>{}</code></td><td class=\"n\">{}</td>",
            esc(name),
            m.count
        );
        for v in [
            m.min_ms,
            m.mean_ms,
            m.p50_ms,
            m.p90_ms,
            m.p95_ms,
            m.p99_ms,
            m.p99_9_ms,
            m.p99_99_ms,
            m.max_ms,
        ] {
            let _ = write!(h, "<td class=\"n\">{}</td>", ms(v));
        }
        h.push_str("</tr>\n");
    }
    if !any {
        h.push_str("<tr><td colspan=\"11\">no samples</td></tr>");
    }
    h.push_str("</table>\n");
}

fn failures(h: &mut String, r: &RunReport) {
    h.push_str("<h2 id=\"failures\">Failures by cause</h2>\n");
    let mut bars: Vec<Bar> = r
        .errors
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(c, n)| Bar::new(c.clone(), *n as f64, svg::VERMILLION))
        .collect();
    if bars.is_empty() {
        h.push_str("<p>No failures.</p>\n");
        return;
    }
    bars.sort_by(|a, b| {
        b.value
            .total_cmp(&a.value)
            .then_with(|| a.label.cmp(&b.label))
    });
    let chart = BarChart {
        title: "Failures by cause".into(),
        x_label: "failures (count)".into(),
        bars,
        ..BarChart::default()
    };
    if let Some(svg) = chart.render() {
        let _ = writeln!(h, "<div class=\"charts\">{svg}</div>");
    }
}

fn tags(h: &mut String, r: &RunReport) {
    if r.tags.is_empty() {
        return;
    }
    h.push_str("<h2 id=\"tags\">Per scenario and step</h2><table><tr><th>tag</th><th>metric</th><th class=\"n\">count</th><th class=\"n\">p50</th><th class=\"n\">p90</th><th class=\"n\">p99</th><th class=\"n\">max</th></tr>\n");
    for (tag, t) in &r.tags {
        for (name, m) in &t.metrics {
            let _ = writeln!(
                h,
                "<tr><td><code>{}</code></td><td><code>{}</code></td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                esc(tag),
                esc(name),
                m.count,
                ms(m.p50_ms),
                ms(m.p90_ms),
                ms(m.p99_ms),
                ms(m.max_ms)
            );
        }
    }
    h.push_str("</table>\n");
}

fn generator(h: &mut String, r: &RunReport) {
    let s = &r.self_check;
    h.push_str("<h2 id=\"generator\">Generator health</h2>\n");
    if let Some(t) = r.timeline.as_deref().filter(|t| !t.is_empty()) {
        generator_charts(h, r, t);
    }
    let verdict = if s.saturated {
        if r.status == RunStatus::Invalid {
            "<b>saturated</b>: the run is invalid".to_string()
        } else {
            "<b>saturated</b> (reported only: <code>--self-check warn</code>)".to_string()
        }
    } else {
        "not saturated".to_string()
    };
    let g = &r.generator;
    let rows = [
        ("verdict", verdict),
        (
            "reasons",
            if s.reasons.is_empty() {
                "—".to_string()
            } else {
                esc(&s.reasons.join("; "))
            },
        ),
        ("cause", esc(&s.diagnosis().unwrap_or_else(|| "—".into()))),
        ("machine", esc(&s.evidence_text().unwrap_or_else(|| "—".into()))),
        (
            "scheduler lag p50 / p99 / max",
            format!(
                "{} / {} / {} ms (budget p99 ≤ {} ms, {} samples)",
                ms(s.lag_p50_us as f64 / 1000.0),
                ms(s.lag_p99_us as f64 / 1000.0),
                ms(s.lag_max_us as f64 / 1000.0),
                ms(s.lag_p99_budget_us as f64 / 1000.0),
                s.lag_samples
            ),
        ),
        (
            "CPU mean / max",
            format!(
                "{:.1} % / {:.1} % of one core ({} cores; saturated at ≥ {:.0} % for {} intervals, longest run {})",
                s.cpu_percent_mean,
                s.cpu_percent_max,
                s.cpu_cores,
                s.cpu_saturation_percent,
                s.cpu_window_intervals,
                s.cpu_longest_saturated_intervals
            ),
        ),
        (
            "CPU time",
            format!(
                "client {:.0} ms ({:.1} % of one core on average){}",
                g.cpu_ms_client,
                g.cpu_percent,
                match (g.cpu_ms_emulator, g.includes_embedded_emulator) {
                    (Some(e), _) => format!("; embedded emulator {e:.0} ms on its own threads"),
                    (None, true) => ", embedded emulator included".to_string(),
                    (None, false) => String::new(),
                }
            ),
        ),
        (
            "peak RSS",
            format!("{:.1} MiB", g.max_rss_kib as f64 / 1024.0),
        ),
    ];
    h.push_str("<table>");
    for (k, v) in rows {
        let _ = write!(h, "<tr><th>{k}</th><td>{v}</td></tr>");
    }
    h.push_str("</table>\n");
}

/// A merged run: each segment process's own figures.
fn segments(h: &mut String, r: &RunReport) {
    if r.segments.is_empty() {
        return;
    }
    let _ = writeln!(
        h,
        "<h2 id=\"segments\">Segments</h2><p class=\"note\">This run merges {} segment runs \
         (histograms added exactly, counters summed); each process's own figures:</p>\
         <table><tr><th class=\"n\">segment</th><th>run id</th><th>status</th><th>started</th>\
         <th class=\"n\">late ms</th><th class=\"n\">duration s</th><th class=\"n\">peak VUs</th>\
         <th class=\"n\">turns ok</th><th class=\"n\">turns failed</th><th class=\"n\">client CPU ms</th>\
         <th class=\"n\">peak RSS MiB</th><th class=\"n\">lag p99 ms</th><th>saturated</th></tr>",
        r.segments.len()
    );
    for s in &r.segments {
        let _ = writeln!(
            h,
            "<tr><td class=\"n\">{}</td><td><code>{}</code></td><td class=\"{}\">{}</td><td>{}</td>\
             <td class=\"n\">{:.1}</td><td class=\"n\">{:.1}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{:.0}</td><td class=\"n\">{:.1}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            s.index,
            esc(&s.run_id),
            status_class(s.status),
            s.status.as_str(),
            esc(&s.started_at),
            s.start_late_ms,
            s.duration_s,
            s.peak_vus,
            s.turns_ok,
            s.turns_failed,
            s.generator.cpu_ms_client,
            s.generator.max_rss_kib as f64 / 1024.0,
            ms(s.lag_p99_us as f64 / 1000.0),
            if s.saturated { "<b>yes</b>" } else { "no" }
        );
    }
    h.push_str("</table>\n");
}

fn context(h: &mut String, r: &RunReport) {
    let Some(c) = &r.context else {
        return;
    };
    h.push_str("<h2 id=\"context\">Context updates</h2><table>");
    let a = &c.audit;
    let rows = [
        ("runtime URL", esc(&c.runtime_url)),
        ("codec", esc(&c.codec)),
        ("heartbeat", esc(&c.heartbeat)),
        (
            "updates (ok / failed / total)",
            format!(
                "{} / {} / {}",
                c.updates_successful, c.updates_failed, c.updates_total
            ),
        ),
        ("accuracy", format!("{:.2} %", c.accuracy_rate * 100.0)),
        (
            "conflicts / retries",
            format!("{} / {}", c.conflicts, c.conflict_retries),
        ),
        (
            "token requests / failures",
            format!("{} / {}", c.token_requests, c.token_failures),
        ),
        (
            "audit records (submitted / written / lost)",
            format!(
                "{} / {} / {}",
                a.records_submitted, a.records_written, a.records_lost
            ),
        ),
        (
            "webhook (sent / failed / dropped)",
            if a.webhook_enabled {
                format!(
                    "{} / {} / {}",
                    a.webhook_sent, a.webhook_failed, a.webhook_dropped
                )
            } else {
                "off".to_string()
            },
        ),
    ];
    for (k, v) in rows {
        let _ = write!(h, "<tr><th>{k}</th><td>{v}</td></tr>");
    }
    if let Some(e) = &a.file_error {
        let _ = write!(
            h,
            "<tr class=\"fail\"><th>audit file error</th><td>{}</td></tr>",
            esc(e)
        );
    }
    h.push_str("</table>\n");
}

fn counters(h: &mut String, r: &RunReport) {
    h.push_str("<h2 id=\"counters\">Counters</h2><table><tr><th>counter</th><th class=\"n\">value</th></tr>\n");
    let (nonzero, zero): (Vec<_>, Vec<_>) = r.counters.iter().partition(|(_, v)| **v > 0);
    for (name, v) in &nonzero {
        let _ = writeln!(
            h,
            "<tr><td><code>{}</code></td><td class=\"n\" title=\"{v}\">{}</td></tr>",
            esc(name),
            human_count(name, **v)
        );
    }
    h.push_str("</table>\n");
    if !zero.is_empty() {
        let names: Vec<String> = zero
            .iter()
            .map(|(n, _)| format!("<code>{}</code>", esc(n)))
            .collect();
        let _ = writeln!(
            h,
            "<details><summary>{} counters are zero</summary><p>{}</p></details>",
            zero.len(),
            names.join(", ")
        );
    }
}

fn manifest(h: &mut String, r: &RunReport) {
    let json = serde_json::to_string_pretty(&r.manifest)
        .unwrap_or_else(|e| format!("manifest cannot be shown: {e}"));
    let _ = writeln!(
        h,
        "<h2 id=\"manifest\">Run manifest</h2><details><summary>manifest.json (finalping version, scenario file and hash, seed, host, settings)</summary><pre>{}</pre></details>",
        esc(&json)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }
}
