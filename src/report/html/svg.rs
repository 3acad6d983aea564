//! Inline SVG chart primitives for `report.html`: a line chart (linear axes,
//! optional custom x ticks for the log-percentile spectrum, gaps where a
//! series has no value) and a horizontal bar chart. Output is plain SVG text
//! with a `<title>` and an `aria-label`, no scripts, no external references,
//! colours from the Okabe–Ito palette (readable with colour-vision
//! deficiencies) and a dash pattern per series so lines differ without colour.

use super::esc;
use std::fmt::Write;

/// Okabe–Ito colours, in the order series get them.
pub const BLUE: &str = "#0072B2";
pub const ORANGE: &str = "#E69F00";
pub const VERMILLION: &str = "#D55E00";
pub const GREEN: &str = "#009E73";
pub const PURPLE: &str = "#CC79A7";
pub const BLACK: &str = "#000000";

/// How a line is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dash {
    Solid,
    Dashed,
    Dotted,
}

impl Dash {
    fn attr(self) -> &'static str {
        match self {
            Dash::Solid => "",
            Dash::Dashed => " stroke-dasharray=\"7 4\"",
            Dash::Dotted => " stroke-dasharray=\"2 3\"",
        }
    }
}

/// One line: points in data units; `None` breaks the line (no data there).
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub color: &'static str,
    pub dash: Dash,
    pub points: Vec<Option<(f64, f64)>>,
}

impl Series {
    pub fn new(name: impl Into<String>, color: &'static str, dash: Dash) -> Series {
        Series {
            name: name.into(),
            color,
            dash,
            points: Vec::new(),
        }
    }

    /// Points with a finite value.
    fn finite(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.points
            .iter()
            .flatten()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
    }

    /// The runs of consecutive points between gaps.
    fn segments(&self) -> Vec<Vec<(f64, f64)>> {
        let mut out = vec![Vec::new()];
        for p in &self.points {
            match p {
                Some((x, y)) if x.is_finite() && y.is_finite() => {
                    if let Some(last) = out.last_mut() {
                        last.push((*x, *y));
                    }
                }
                _ => {
                    if out.last().is_some_and(|s| !s.is_empty()) {
                        out.push(Vec::new());
                    }
                }
            }
        }
        out.retain(|s| !s.is_empty());
        out
    }
}

/// A line chart with linear axes; `x_ticks` replaces the automatic x ticks
/// (data position, label), e.g. for the percentile spectrum.
#[derive(Debug, Clone)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    pub x_ticks: Option<Vec<(f64, String)>>,
    /// Where the x axis starts when it is left of the data (e.g. 0 s).
    pub x_min: Option<f64>,
}

const W: f64 = 640.0;
const H: f64 = 300.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 64.0;
const FONT: &str = "font-family=\"system-ui, sans-serif\"";

/// A "nice" tick step (1, 2 or 5 × 10^k) giving about `target` ticks over `span`.
pub fn nice_step(span: f64, target: f64) -> f64 {
    if !(span.is_finite() && span > 0.0) {
        return 1.0;
    }
    let raw = span / target.max(1.0);
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// A tick label without float noise (`0.1`, `250`, `1.5k`).
pub fn tick_label(v: f64, step: f64) -> String {
    if v.abs() >= 10_000.0 && step >= 1000.0 {
        return format!("{}k", trim(v / 1000.0, step / 1000.0));
    }
    trim(v, step)
}

fn trim(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    format!("{v:.decimals$}")
}

/// Ticks from 0 (or `lo`) to at least `hi`: (rounded top, step, ticks).
fn axis_ticks(lo: f64, hi: f64) -> (f64, f64, Vec<f64>) {
    let step = nice_step(hi - lo, 5.0);
    let top = (hi / step).ceil() * step;
    let top = if top <= lo { lo + step } else { top };
    let n = ((top - lo) / step).round() as usize;
    let ticks = (0..=n.min(50)).map(|i| lo + step * i as f64).collect();
    (top, step, ticks)
}

impl LineChart {
    /// The SVG element, or `None` when no series has data.
    pub fn render(&self) -> Option<String> {
        let (mut x0, mut x1, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, 0.0f64);
        for (x, y) in self.series.iter().flat_map(Series::finite) {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y1 = y1.max(y);
        }
        if !x0.is_finite() {
            return None;
        }
        if let Some(lo) = self.x_min {
            x0 = x0.min(lo);
        }
        if let Some(ticks) = &self.x_ticks {
            for (x, _) in ticks {
                x0 = x0.min(*x);
                x1 = x1.max(*x);
            }
        }
        if x1 <= x0 {
            x1 = x0 + 1.0;
        }
        if y1 <= 0.0 {
            y1 = 1.0;
        }
        let (y_top, y_step, y_ticks) = axis_ticks(0.0, y1);
        let x_ticks: Vec<(f64, String)> = match &self.x_ticks {
            Some(t) => t.clone(),
            None => {
                let step = nice_step(x1 - x0, 8.0);
                let first = (x0 / step).ceil() * step;
                let n = ((x1 - first) / step).floor().max(0.0) as usize;
                (0..=n.min(50))
                    .map(|i| {
                        let v = first + step * i as f64;
                        (v, tick_label(v, step))
                    })
                    .collect()
            }
        };
        let pw = W - LEFT - RIGHT;
        let ph = H - TOP - BOTTOM;
        let sx = |x: f64| LEFT + (x - x0) / (x1 - x0) * pw;
        let sy = |y: f64| TOP + ph - (y / y_top).clamp(0.0, 1.0) * ph;

        let mut s = String::new();
        let label = format!(
            "{}: {} against {}; series: {}",
            self.title,
            self.y_label,
            self.x_label,
            self.series
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        open_svg(&mut s, &self.title, &label);
        // Grid and y ticks.
        for t in &y_ticks {
            let y = sy(*t);
            let _ = write!(
                s,
                "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"12\" {FONT}>{}</text>",
                W - RIGHT,
                LEFT - 6.0,
                y + 4.0,
                esc(&tick_label(*t, y_step))
            );
        }
        for (x, l) in &x_ticks {
            let px = sx(*x);
            let _ = write!(
                s,
                "<line x1=\"{px:.1}\" x2=\"{px:.1}\" y1=\"{TOP}\" y2=\"{:.1}\" stroke=\"#eee\"/>\
                 <text x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"12\" {FONT}>{}</text>",
                TOP + ph,
                TOP + ph + 16.0,
                esc(l)
            );
        }
        axes(&mut s, pw, ph, &self.x_label, &self.y_label);
        // Lines.
        for series in &self.series {
            for seg in series.segments() {
                if seg.len() == 1 {
                    let (x, y) = seg[0];
                    let _ = write!(
                        s,
                        "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{}\"/>",
                        sx(x),
                        sy(y),
                        series.color
                    );
                    continue;
                }
                let pts: Vec<String> = seg
                    .iter()
                    .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
                    .collect();
                let _ = write!(
                    s,
                    "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{} points=\"{}\"/>",
                    series.color,
                    series.dash.attr(),
                    pts.join(" ")
                );
            }
        }
        legend(&mut s, &self.series);
        s.push_str("</svg>");
        Some(s)
    }
}

fn open_svg(s: &mut String, title: &str, label: &str) {
    let _ = write!(
        s,
        "<svg viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}\" class=\"chart\">\
         <title>{}</title>\
         <text x=\"{LEFT}\" y=\"20\" font-size=\"15\" font-weight=\"600\" {FONT}>{}</text>",
        esc(label),
        esc(title),
        esc(title)
    );
}

fn axes(s: &mut String, pw: f64, ph: f64, x_label: &str, y_label: &str) {
    let _ = write!(
        s,
        "<line x1=\"{LEFT}\" x2=\"{LEFT}\" y1=\"{TOP}\" y2=\"{:.1}\" stroke=\"#333\"/>\
         <line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#333\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"12\" {FONT}>{}</text>\
         <text transform=\"translate(14 {:.1}) rotate(-90)\" text-anchor=\"middle\" font-size=\"12\" {FONT}>{}</text>",
        TOP + ph,
        LEFT + pw,
        TOP + ph,
        TOP + ph,
        LEFT + pw / 2.0,
        TOP + ph + 34.0,
        esc(x_label),
        TOP + ph / 2.0,
        esc(y_label)
    );
}

fn legend(s: &mut String, series: &[Series]) {
    let mut x = LEFT;
    let y = H - 10.0;
    for se in series {
        let _ = write!(
            s,
            "<line x1=\"{x:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{}\" stroke-width=\"3\"{}/>\
             <text x=\"{:.1}\" y=\"{y:.1}\" font-size=\"12\" {FONT}>{}</text>",
            x + 22.0,
            y - 4.0,
            y - 4.0,
            se.color,
            se.dash.attr(),
            x + 27.0,
            esc(&se.name)
        );
        x += 40.0 + 7.0 * se.name.chars().count() as f64;
    }
}

/// A horizontal bar chart of labelled counts (e.g. failures by cause),
/// optionally with an error bar (a confidence interval) per bar.
#[derive(Debug, Clone)]
pub struct BarChart {
    pub title: String,
    pub x_label: String,
    pub bars: Vec<(String, u64)>,
    pub color: &'static str,
    /// Per bar (same order), a `(low, high)` range drawn as a whisker; empty
    /// or `None` = no whisker.
    pub ranges: Vec<Option<(u64, u64)>>,
}

impl BarChart {
    /// The SVG element, or `None` without bars.
    pub fn render(&self) -> Option<String> {
        if self.bars.is_empty() {
            return None;
        }
        let range = |i: usize| self.ranges.get(i).copied().flatten();
        let max = self
            .bars
            .iter()
            .enumerate()
            .map(|(i, b)| b.1.max(range(i).map_or(0, |r| r.1)))
            .max()
            .unwrap_or(1)
            .max(1) as f64;
        let longest = self
            .bars
            .iter()
            .map(|b| b.0.chars().count())
            .max()
            .unwrap_or(0);
        let left = (16.0 + 7.2 * longest as f64).clamp(80.0, 300.0);
        let bar_h = 22.0;
        let top = 34.0;
        let h = top + bar_h * self.bars.len() as f64 + 44.0;
        let pw = W - left - 70.0;
        let mut s = String::new();
        let label = format!(
            "{}: {}",
            self.title,
            self.bars
                .iter()
                .enumerate()
                .map(|(i, (l, v))| match range(i) {
                    Some((lo, hi)) => format!("{l} {v} (range {lo}–{hi})"),
                    None => format!("{l} {v}"),
                })
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = write!(
            s,
            "<svg viewBox=\"0 0 {W} {h:.0}\" role=\"img\" aria-label=\"{}\" class=\"chart\">\
             <title>{}</title>\
             <text x=\"{left:.1}\" y=\"20\" font-size=\"15\" font-weight=\"600\" {FONT}>{}</text>",
            esc(&label),
            esc(&self.title),
            esc(&self.title)
        );
        for (i, (name, v)) in self.bars.iter().enumerate() {
            let y = top + bar_h * i as f64;
            let w = (*v as f64 / max * pw).max(1.0);
            let mut label_x = left + w + 5.0;
            let mut label = v.to_string();
            if let Some((lo, hi)) = range(i) {
                let (x1, x2) = (left + lo as f64 / max * pw, left + hi as f64 / max * pw);
                let (cy, t, b) = (y + bar_h / 2.0, y + 6.0, y + bar_h - 6.0);
                let _ = write!(
                    s,
                    "<g stroke=\"#222\" stroke-width=\"1.5\"><title>{lo}–{hi}</title>\
                     <line x1=\"{x1:.1}\" x2=\"{x2:.1}\" y1=\"{cy:.1}\" y2=\"{cy:.1}\"/>\
                     <line x1=\"{x1:.1}\" x2=\"{x1:.1}\" y1=\"{t:.1}\" y2=\"{b:.1}\"/>\
                     <line x1=\"{x2:.1}\" x2=\"{x2:.1}\" y1=\"{t:.1}\" y2=\"{b:.1}\"/></g>"
                );
                label_x = label_x.max(x2 + 5.0);
                label = format!("{v} [{lo}–{hi}]");
            }
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"12\" {FONT}>{}</text>\
                 <rect x=\"{left:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{}\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" {FONT}>{label}</text>",
                left - 6.0,
                y + bar_h / 2.0 + 4.0,
                esc(name),
                y + 3.0,
                bar_h - 6.0,
                self.color,
                label_x,
                y + bar_h / 2.0 + 4.0,
            );
        }
        let base = top + bar_h * self.bars.len() as f64;
        let _ = write!(
            s,
            "<line x1=\"{left:.1}\" x2=\"{left:.1}\" y1=\"{top}\" y2=\"{base:.1}\" stroke=\"#333\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"12\" {FONT}>{}</text></svg>",
            left + pw / 2.0,
            base + 28.0,
            esc(&self.x_label)
        );
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps_and_labels() {
        assert_eq!(nice_step(10.0, 5.0), 2.0);
        assert_eq!(nice_step(0.9, 5.0), 0.2);
        assert_eq!(nice_step(700.0, 5.0), 200.0);
        assert_eq!(tick_label(0.30000000000000004, 0.1), "0.3");
        assert_eq!(tick_label(20_000.0, 5_000.0), "20k");
        let (top, step, ticks) = axis_ticks(0.0, 47.0);
        assert_eq!((top, step, ticks.len()), (50.0, 10.0, 6));
    }

    #[test]
    fn gaps_split_polylines_and_empty_charts_render_nothing() {
        let mut s = Series::new("p50", BLUE, Dash::Solid);
        s.points = vec![
            Some((0.0, 1.0)),
            Some((1.0, 2.0)),
            None,
            Some((3.0, 1.0)),
            Some((4.0, 5.0)),
        ];
        let chart = LineChart {
            title: "t <x>".into(),
            x_label: "s".into(),
            y_label: "ms".into(),
            series: vec![s],
            x_ticks: None,
            x_min: None,
        };
        let svg = chart.render().unwrap();
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("<title>t &lt;x&gt;</title>"));
        assert!(!svg.contains("<x>"));
        let empty = LineChart {
            series: vec![Series::new("p50", BLUE, Dash::Solid)],
            ..chart
        };
        assert!(empty.render().is_none());
    }

    #[test]
    fn bar_chart_has_a_bar_per_cause() {
        let chart = BarChart {
            title: "Failures".into(),
            x_label: "count".into(),
            bars: vec![("turn_timeout".into(), 3), ("bot_error".into(), 1)],
            color: VERMILLION,
            ranges: Vec::new(),
        };
        let svg = chart.render().unwrap();
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.contains("turn_timeout"));
        assert!(!svg.contains("<g stroke"));
    }

    #[test]
    fn bar_chart_draws_error_bars_inside_the_plot() {
        let chart = BarChart {
            title: "p99".into(),
            x_label: "µs".into(),
            bars: vec![("a".into(), 100), ("b".into(), 80)],
            color: BLUE,
            ranges: vec![Some((90, 130)), None],
        };
        let svg = chart.render().unwrap();
        assert_eq!(svg.matches("<g stroke").count(), 1);
        assert!(svg.contains("100 [90–130]") && svg.contains("range 90–130"));
        // The axis is scaled to the highest whisker: it ends at the plot's
        // right edge (labels are one character: the plot starts at x = 80).
        let right = 80.0 + (W - 80.0 - 70.0);
        assert!(svg.contains(&format!("x2=\"{right:.1}\"")), "{svg}");
    }
}
