//! The report of `finalping capacity`: the steps of the load ramp (and its
//! bisection) sorted by load, each with a status that says what happened
//! (`passed` / `breached` / `invalid` / `saturated` / `interrupted`), its
//! throughput and latencies (blank / `null` where the step did not measure a
//! metric), and the conclusion; written as `capacity.json`, `capacity.md` and
//! `report.html` (latency against load with the SLO limits and the knee) by
//! the exporters below, and as a console table. Only formats: the steps are
//! run and judged by the `capacity` command.

use super::html::svg::{self, Dash, Limit, LineChart, Mark, Series};
use super::Exporter;
use serde::Serialize;
use std::io::Write;

/// The files of a capacity report, in the order written.
pub fn exporters() -> Vec<Box<dyn Exporter<CapacityReport>>> {
    vec![
        Box::new(CapacityJson),
        Box::new(CapacityMarkdown),
        Box::new(CapacityHtml),
    ]
}

/// `capacity.json`.
pub struct CapacityJson;

impl Exporter<CapacityReport> for CapacityJson {
    fn file_name(&self) -> &'static str {
        "capacity.json"
    }

    fn write(&self, r: &CapacityReport, out: &mut dyn Write) -> std::io::Result<()> {
        out.write_all(
            serde_json::to_string_pretty(r)
                .unwrap_or_default()
                .as_bytes(),
        )
    }
}

/// `capacity.md`: the conclusion and the steps as a Markdown table.
pub struct CapacityMarkdown;

impl Exporter<CapacityReport> for CapacityMarkdown {
    fn file_name(&self) -> &'static str {
        "capacity.md"
    }

    fn write(&self, r: &CapacityReport, out: &mut dyn Write) -> std::io::Result<()> {
        out.write_all(markdown(r).as_bytes())
    }
}

/// `report.html`: the step table and the charts.
pub struct CapacityHtml;

impl Exporter<CapacityReport> for CapacityHtml {
    fn file_name(&self) -> &'static str {
        super::HTML_FILE
    }

    fn write(&self, r: &CapacityReport, out: &mut dyn Write) -> std::io::Result<()> {
        out.write_all(html(r).as_bytes())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CapacityStep {
    pub load: f64,
    pub dir: String,
    /// What the step shows: `passed` (every SLO met), `breached` (an SLO
    /// failed), `invalid` (an SLO could not be judged, or the run itself is
    /// invalid), `saturated` (the generator saturated, `--self-check strict`),
    /// `interrupted` (stopped by Ctrl-C: partial).
    pub status: String,
    /// The status of the step's own run (`summary.json`).
    pub run_status: String,
    /// SLO judged ok (and the generator not saturated).
    pub ok: bool,
    pub saturated: bool,
    /// When saturated: the self-check's remedy for its cause (a busy
    /// machine, CPU steal or the generator itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saturation_hint: Option<String>,
    /// Turns completed per second of the step.
    pub turns_per_sec: f64,
    /// Percentiles in ms; `null` when the step has no sample of the metric.
    pub final_ping_p50_ms: Option<f64>,
    pub final_ping_p99_ms: Option<f64>,
    pub context_update_p99_ms: Option<f64>,
    /// 95 % confidence intervals of the three percentiles above (bootstrap
    /// over the step's interval histograms); absent without samples.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub final_ping_p50_ci_ms: Option<[f64; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub final_ping_p99_ci_ms: Option<[f64; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_update_p99_ci_ms: Option<[f64; 2]>,
    pub errors: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct CapacityReport {
    pub schema_version: u32,
    pub variable: String,
    pub slos: Vec<String>,
    pub steps: Vec<CapacityStep>,
    /// Highest load that met every SLO.
    pub max_sustainable: Option<f64>,
    /// Lowest load that broke an SLO (the knee).
    pub knee: Option<f64>,
    /// The generator saturated before any SLO broke: the answer is "at least".
    pub generator_bound: bool,
    pub conclusion: String,
    /// SLO limits in ms (metric, expression, limit), drawn on the chart.
    #[serde(skip)]
    pub limits: Vec<(String, String, f64)>,
}

/// `12.345 [12.100–13.000]`, the value alone without an interval, or empty
/// for a metric the step did not measure.
fn with_ci(v: Option<f64>, ci: Option<[f64; 2]>) -> String {
    match (v, ci) {
        (Some(v), Some([lo, hi])) => format!("{v:.3} [{lo:.3}–{hi:.3}]"),
        (Some(v), None) => format!("{v:.3}"),
        (None, _) => String::new(),
    }
}

/// What the SLO column says about a step.
fn slo_text(st: &CapacityStep) -> String {
    if st.saturated {
        "generator saturated".to_string()
    } else if st.errors.is_empty() {
        "met".to_string()
    } else {
        st.errors.join("; ")
    }
}

/// The table's cells per step (console, Markdown and HTML share them).
fn rows(r: &CapacityReport) -> Vec<Vec<String>> {
    r.steps
        .iter()
        .map(|st| {
            vec![
                st.load.to_string(),
                st.status.clone(),
                format!("{:.1}", st.turns_per_sec),
                with_ci(st.final_ping_p50_ms, st.final_ping_p50_ci_ms),
                with_ci(st.final_ping_p99_ms, st.final_ping_p99_ci_ms),
                with_ci(st.context_update_p99_ms, st.context_update_p99_ci_ms),
                slo_text(st),
            ]
        })
        .collect()
}

fn header(r: &CapacityReport) -> [&str; 7] {
    [
        r.variable.as_str(),
        "status",
        "turns/s",
        "final_ping p50 ms [95 % CI]",
        "final_ping p99 ms [95 % CI]",
        "context_update p99 ms [95 % CI]",
        "SLO",
    ]
}

/// The console table: one line per step.
pub fn console(r: &CapacityReport) -> String {
    let rows = rows(r);
    let head = header(r);
    let width = |j: usize| {
        rows.iter()
            .map(|row| row[j].chars().count())
            .chain([head[j].chars().count()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..6).map(width).collect();
    let line = |cells: &[&str]| {
        let mut s = String::new();
        for (j, c) in cells.iter().enumerate().take(6) {
            let pad = widths[j].saturating_sub(c.chars().count());
            s.push_str(&" ".repeat(pad));
            s.push_str(c);
            s.push_str("  ");
        }
        s.push_str(cells.get(6).copied().unwrap_or(""));
        s.push('\n');
        s
    };
    let mut s = String::from("\n");
    s.push_str(&line(&head));
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        s.push_str(&line(&cells));
    }
    s
}

/// `capacity.md`: the conclusion and the steps as a Markdown table.
fn markdown(r: &CapacityReport) -> String {
    let mut md = format!(
        "# finalping capacity\n\nSLOs: {}\n\n**{}**\n\nSteps sorted by load. Brackets: 95 % confidence intervals (bootstrap over the step's interval histograms); a blank cell: the step did not measure that metric.\n\n| {} |\n|---:|---|---:|---:|---:|---:|---|\n",
        r.slos.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(" · "),
        r.conclusion,
        header(r).join(" | ")
    );
    for row in rows(r) {
        let cells: Vec<String> = row.iter().map(|c| c.replace('|', "\\|")).collect();
        md.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    md
}

/// The latency-versus-load chart (p50/p99 with 95 % intervals, SLO limits,
/// the knee) and the throughput-versus-load chart.
fn charts(r: &CapacityReport) -> Vec<String> {
    let unit = if r.variable == "load.vus" {
        "VUs"
    } else {
        "conversations/s"
    };
    let x_label = format!("{} ({unit})", r.variable);
    let line = |name: &str,
                color,
                dash,
                v: fn(&CapacityStep) -> Option<f64>,
                ci: fn(&CapacityStep) -> Option<[f64; 2]>| {
        let mut s = Series::new(name, color, dash);
        for st in &r.steps {
            s.points.push(v(st).map(|y| (st.load, y)));
            s.ranges.push(ci(st).map(|[lo, hi]| (lo, hi)));
        }
        s
    };
    let series = vec![
        line(
            "final_ping p50",
            svg::BLUE,
            Dash::Solid,
            |s| s.final_ping_p50_ms,
            |s| s.final_ping_p50_ci_ms,
        ),
        line(
            "final_ping p99",
            svg::VERMILLION,
            Dash::Dashed,
            |s| s.final_ping_p99_ms,
            |s| s.final_ping_p99_ci_ms,
        ),
        line(
            "context_update p99",
            svg::GREEN,
            Dash::Dotted,
            |s| s.context_update_p99_ms,
            |s| s.context_update_p99_ci_ms,
        ),
    ];
    let limits = r
        .limits
        .iter()
        .filter(|(m, _, _)| m == "final_ping" || m == "context_update")
        .map(|(_, e, v)| Limit {
            name: format!("SLO {e}"),
            value: *v,
        })
        .collect();
    let marks = r
        .knee
        .map(|k| Mark {
            name: format!("knee: the SLO breaks at {k} {unit}"),
            x: k,
        })
        .into_iter()
        .collect();
    let latency = LineChart {
        title: "Latency against load".into(),
        x_label: x_label.clone(),
        y_label: "latency (ms)".into(),
        series,
        x_min: Some(0.0),
        limits,
        marks,
        ..LineChart::default()
    };
    let mut tput = Series::new("turns completed/s", svg::BLUE, Dash::Solid);
    for st in &r.steps {
        tput.points.push(Some((st.load, st.turns_per_sec)));
    }
    let throughput = LineChart {
        title: "Throughput against load".into(),
        x_label,
        y_label: "throughput (turns/s)".into(),
        series: vec![tput],
        x_min: Some(0.0),
        ..LineChart::default()
    };
    [latency, throughput]
        .iter()
        .filter_map(LineChart::render)
        .collect()
}

/// The page: the step table (coloured by status) and the charts.
fn html(r: &CapacityReport) -> String {
    let classes: Vec<Vec<&str>> = r
        .steps
        .iter()
        .map(|st| match st.status.as_str() {
            "passed" => vec!["", "v-passed"],
            "breached" => vec!["", "v-breached"],
            "invalid" => vec!["", "v-invalid"],
            _ => vec!["", "v-saturated"],
        })
        .collect();
    super::render_summary_page(
        "finalping capacity",
        &format!(
            "{} — SLOs: {}. Steps sorted by load. Brackets and whiskers: 95 % confidence intervals (bootstrap over the step's interval histograms); a blank cell: the step did not measure that metric.",
            r.conclusion,
            r.slos.join(" · ")
        ),
        &header(r),
        &rows(r),
        &classes,
        &charts(r),
    )
}
