//! Inline SVG chart primitives for the report pages: a line chart (linear or
//! log latency axis, custom x ticks for the log-percentile spectrum, gaps
//! where a series has no value, 95 % interval whiskers, horizontal limit
//! lines for thresholds/SLOs, vertical marks such as the knee) and a
//! horizontal bar chart (fractional values, interval whiskers, per-bar
//! colours, x-axis ticks, value labels in a reserved margin so they always
//! fit). Every chart has a `<title>`, an `aria-label`, axis labels with units
//! (`class="axis-label"`) and a legend (`class="legend"`); it is drawn at its
//! own width (`max-width`), so text never scales past its font size. Output
//! is plain SVG text: no scripts, no external references, colours from the
//! Okabe–Ito palette (readable with colour-vision deficiencies) and a dash
//! pattern per series so lines differ without colour.

use super::esc;
use std::fmt::Write;

/// Okabe–Ito colours, in the order series get them.
pub const BLUE: &str = "#0072B2";
pub const ORANGE: &str = "#E69F00";
pub const VERMILLION: &str = "#D55E00";
pub const GREEN: &str = "#009E73";
pub const PURPLE: &str = "#CC79A7";
pub const SKY: &str = "#56B4E9";
pub const YELLOW: &str = "#F0E442";
pub const BLACK: &str = "#000000";
pub const GREY: &str = "#999999";

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
/// `ranges` (same order as `points`, may be shorter) adds a whisker
/// (e.g. a 95 % confidence interval) at a point.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub color: &'static str,
    pub dash: Dash,
    pub points: Vec<Option<(f64, f64)>>,
    pub ranges: Vec<Option<(f64, f64)>>,
}

impl Series {
    pub fn new(name: impl Into<String>, color: &'static str, dash: Dash) -> Series {
        Series {
            name: name.into(),
            color,
            dash,
            points: Vec::new(),
            ranges: Vec::new(),
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

/// A horizontal line across a chart: a threshold or SLO limit.
#[derive(Debug, Clone)]
pub struct Limit {
    /// Legend text, e.g. `limit final_ping.p99 < 800ms`.
    pub name: String,
    pub value: f64,
}

/// A vertical line at an x position, labelled (e.g. the knee).
#[derive(Debug, Clone)]
pub struct Mark {
    pub name: String,
    pub x: f64,
}

/// A line chart; `x_ticks` replaces the automatic x ticks (data position,
/// label), e.g. for the percentile spectrum. `width` 0 = [`W`].
#[derive(Debug, Clone, Default)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    pub x_ticks: Option<Vec<(f64, String)>>,
    /// Where the x axis starts when it is left of the data (e.g. 0 s).
    pub x_min: Option<f64>,
    /// A logarithmic y axis (decades with 1-2-5 ticks).
    pub y_log: bool,
    pub limits: Vec<Limit>,
    pub marks: Vec<Mark>,
    pub width: f64,
}

/// Default chart width in SVG user units (= CSS pixels at most).
pub const W: f64 = 640.0;
/// The width of a chart that spans the run page.
pub const FULL_W: f64 = 1240.0;
const PLOT_H: f64 = 202.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 34.0;
const FONT: &str = "font-family=\"system-ui, sans-serif\"";
/// Approximate advance of one 12 px character, for layout.
const CHAR_W: f64 = 7.0;
const LEGEND_ROW: f64 = 18.0;
/// A limit is drawn when it is at most this many times the highest value.
const LIMIT_ROOM: f64 = 4.0;

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

/// Log axis from the decade at or below `lo` to the one at or above `hi`:
/// (bottom, top, ticks as (value, label)). Ticks at 1, 2, 5 × 10^k when the
/// axis spans few decades, else at each decade.
fn log_ticks(lo: f64, hi: f64) -> (f64, f64, Vec<(f64, String)>) {
    let lo = lo.max(0.001);
    let hi = hi.max(lo * 10.0);
    let (d0, d1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let mults: &[f64] = if d1 - d0 <= 3 {
        &[1.0, 2.0, 5.0]
    } else {
        &[1.0]
    };
    let mut ticks = Vec::new();
    for d in d0..=d1 {
        for m in mults {
            let v = m * 10f64.powi(d);
            if v >= 10f64.powi(d0) - 1e-12 && v <= 10f64.powi(d1) + 1e-12 {
                let label = if v >= 1.0 {
                    tick_label(v, 1.0)
                } else {
                    format!("{v}")
                };
                ticks.push((v, label));
            }
        }
    }
    (10f64.powi(d0), 10f64.powi(d1), ticks)
}

/// Data value → pixel on one axis.
type Scale = dyn Fn(f64) -> f64;

/// One legend entry: a line sample (solid/dashed/dotted) or a block.
struct LegendItem {
    name: String,
    color: &'static str,
    dash: Dash,
    block: bool,
}

/// Legend rows: items wrap at `width - RIGHT`; returns (x, row) per item.
fn legend_layout(items: &[LegendItem], left: f64, width: f64) -> (Vec<(f64, usize)>, usize) {
    let mut out = Vec::new();
    let (mut x, mut row) = (left, 0usize);
    for it in items {
        let w = 34.0 + CHAR_W * it.name.chars().count() as f64;
        if x + w > width - 8.0 && x > left {
            x = left;
            row += 1;
        }
        out.push((x, row));
        x += w + 12.0;
    }
    (out, if items.is_empty() { 0 } else { row + 1 })
}

fn legend(s: &mut String, items: &[LegendItem], left: f64, width: f64, top: f64) {
    let (pos, _) = legend_layout(items, left, width);
    s.push_str("<g class=\"legend\">");
    for (it, (x, row)) in items.iter().zip(pos) {
        let y = top + LEGEND_ROW * row as f64 + 12.0;
        if it.block {
            let _ = write!(
                s,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"22\" height=\"10\" fill=\"{}\"/>",
                y - 9.0,
                it.color
            );
        } else {
            let _ = write!(
                s,
                "<line x1=\"{x:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{}\" stroke-width=\"3\"{}/>",
                x + 22.0,
                y - 4.0,
                y - 4.0,
                it.color,
                it.dash.attr()
            );
        }
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{y:.1}\" font-size=\"12\" {FONT}>{}</text>",
            x + 27.0,
            esc(&it.name)
        );
    }
    s.push_str("</g>");
}

fn open_svg(s: &mut String, width: f64, height: f64, title: &str, label: &str, title_x: f64) {
    let _ = write!(
        s,
        "<svg viewBox=\"0 0 {width:.0} {height:.0}\" role=\"img\" aria-label=\"{}\" class=\"chart\" style=\"max-width:{width:.0}px\">\
         <title>{}</title>\
         <text x=\"{title_x:.1}\" y=\"20\" font-size=\"15\" font-weight=\"600\" {FONT}>{}</text>",
        esc(label),
        esc(title),
        esc(title)
    );
}

impl LineChart {
    fn width(&self) -> f64 {
        if self.width > 0.0 {
            self.width
        } else {
            W
        }
    }

    fn legend_items(&self, data_max: f64) -> Vec<LegendItem> {
        let mut items: Vec<LegendItem> = self
            .series
            .iter()
            .filter(|s| s.finite().next().is_some())
            .map(|s| LegendItem {
                name: s.name.clone(),
                color: s.color,
                dash: s.dash,
                block: false,
            })
            .collect();
        for l in &self.limits {
            let off = data_max > 0.0 && l.value > data_max * LIMIT_ROOM;
            items.push(LegendItem {
                name: if off {
                    format!("{} (far above the data, not drawn)", l.name)
                } else {
                    l.name.clone()
                },
                color: BLACK,
                dash: Dash::Dashed,
                block: false,
            });
        }
        for m in &self.marks {
            items.push(LegendItem {
                name: m.name.clone(),
                color: GREY,
                dash: Dash::Dotted,
                block: false,
            });
        }
        if self
            .series
            .iter()
            .any(|s| s.ranges.iter().any(Option::is_some))
        {
            items.push(LegendItem {
                name: "whiskers: 95 % confidence interval".into(),
                color: "#222222",
                dash: Dash::Solid,
                block: false,
            });
        }
        items
    }

    /// The SVG element, or `None` when no series has data.
    pub fn render(&self) -> Option<String> {
        let width = self.width();
        let (mut x0, mut x1) = (f64::INFINITY, f64::NEG_INFINITY);
        let (mut ylo, mut y1) = (f64::INFINITY, 0.0f64);
        for (x, y) in self.series.iter().flat_map(Series::finite) {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y1 = y1.max(y);
            if y > 0.0 {
                ylo = ylo.min(y);
            }
        }
        if !x0.is_finite() {
            return None;
        }
        for se in &self.series {
            for (lo, hi) in se.ranges.iter().flatten() {
                y1 = y1.max(*hi);
                if *lo > 0.0 {
                    ylo = ylo.min(*lo);
                }
            }
        }
        // A limit far above the data would squash the lines: it is named in
        // the legend as off the chart instead.
        let data_max = y1;
        let on_chart = |l: &&Limit| data_max <= 0.0 || l.value <= data_max * LIMIT_ROOM;
        for l in self.limits.iter().filter(on_chart) {
            y1 = y1.max(l.value);
            if l.value > 0.0 {
                ylo = ylo.min(l.value);
            }
        }
        for m in &self.marks {
            x0 = x0.min(m.x);
            x1 = x1.max(m.x);
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
        let pw = width - LEFT - RIGHT;
        let ph = PLOT_H;
        // y axis: (value → pixel), ticks.
        let (y_ticks, sy): (Vec<(f64, String)>, Box<Scale>) = if self.y_log {
            let lo = if ylo.is_finite() { ylo } else { y1 / 10.0 };
            let (bottom, top, ticks) = log_ticks(lo, y1);
            let (lb, lt) = (bottom.log10(), top.log10());
            (
                ticks,
                Box::new(move |y: f64| {
                    let f = ((y.max(bottom)).log10() - lb) / (lt - lb);
                    TOP + ph - f.clamp(0.0, 1.0) * ph
                }),
            )
        } else {
            let (top, step, ticks) = axis_ticks(0.0, y1);
            (
                ticks.iter().map(|t| (*t, tick_label(*t, step))).collect(),
                Box::new(move |y: f64| TOP + ph - (y / top).clamp(0.0, 1.0) * ph),
            )
        };
        let x_ticks: Vec<(f64, String)> = match &self.x_ticks {
            Some(t) => t.clone(),
            None => {
                let step = nice_step(x1 - x0, (pw / 80.0).max(2.0));
                let first = (x0 / step).ceil() * step;
                let n = ((x1 - first) / step + 1e-9).floor().max(0.0) as usize;
                (0..=n.min(50))
                    .map(|i| {
                        let v = first + step * i as f64;
                        (v, tick_label(v, step))
                    })
                    .collect()
            }
        };
        let sx = |x: f64| LEFT + (x - x0) / (x1 - x0) * pw;
        let items = self.legend_items(data_max);
        let (_, rows) = legend_layout(&items, LEFT, width);
        let legend_top = TOP + ph + 48.0;
        let height = legend_top + LEGEND_ROW * rows as f64 + 8.0;

        let mut s = String::new();
        let label = format!(
            "{}: {} against {}{}; series: {}",
            self.title,
            self.y_label,
            self.x_label,
            if self.y_log { " (log scale)" } else { "" },
            items
                .iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        open_svg(&mut s, width, height, &self.title, &label, LEFT);
        s.push_str("<g class=\"ticks\">");
        for (t, l) in &y_ticks {
            let y = sy(*t);
            let _ = write!(
                s,
                "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"12\" {FONT}>{}</text>",
                width - RIGHT,
                LEFT - 6.0,
                y + 4.0,
                esc(l)
            );
        }
        for (x, l) in &x_ticks {
            let px = sx(*x);
            let _ = write!(
                s,
                "<line x1=\"{px:.1}\" x2=\"{px:.1}\" y1=\"{TOP}\" y2=\"{:.1}\" stroke=\"#eee\"/>\
                 <line x1=\"{px:.1}\" x2=\"{px:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#333\"/>\
                 <text x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"12\" {FONT}>{}</text>",
                TOP + ph,
                TOP + ph,
                TOP + ph + 4.0,
                TOP + ph + 20.0,
                esc(l)
            );
        }
        s.push_str("</g>");
        axes(&mut s, LEFT, pw, ph, &self.x_label, &self.y_label);
        for l in self.limits.iter().filter(on_chart) {
            let y = sy(l.value);
            let _ = write!(
                s,
                "<line class=\"limit\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"{BLACK}\" stroke-width=\"1.5\"{}><title>{}</title></line>",
                LEFT + pw,
                Dash::Dashed.attr(),
                esc(&l.name)
            );
        }
        for m in &self.marks {
            let x = sx(m.x);
            let _ = write!(
                s,
                "<line class=\"mark\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{TOP}\" y2=\"{:.1}\" stroke=\"{GREY}\" stroke-width=\"2\"{}><title>{}</title></line>",
                TOP + ph,
                Dash::Dotted.attr(),
                esc(&m.name)
            );
        }
        for series in &self.series {
            for (p, r) in series.points.iter().zip(&series.ranges) {
                if let (Some((x, _)), Some((lo, hi))) = (p, r) {
                    let (px, a, b) = (sx(*x), sy(*lo), sy(*hi));
                    let _ = write!(
                        s,
                        "<g stroke=\"#222\" stroke-width=\"1.2\"><line x1=\"{px:.1}\" x2=\"{px:.1}\" y1=\"{a:.1}\" y2=\"{b:.1}\"/>\
                         <line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{a:.1}\" y2=\"{a:.1}\"/><line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{b:.1}\" y2=\"{b:.1}\"/></g>",
                        px - 4.0,
                        px + 4.0,
                        px - 4.0,
                        px + 4.0
                    );
                }
            }
            for seg in series.segments() {
                if seg.len() == 1 {
                    let (x, y) = seg[0];
                    let _ = write!(
                        s,
                        "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{}\"/>",
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
        legend(&mut s, &items, LEFT, width, legend_top);
        s.push_str("</svg>");
        Some(s)
    }
}

fn axes(s: &mut String, left: f64, pw: f64, ph: f64, x_label: &str, y_label: &str) {
    let _ = write!(
        s,
        "<line x1=\"{left}\" x2=\"{left}\" y1=\"{TOP}\" y2=\"{:.1}\" stroke=\"#333\"/>\
         <line x1=\"{left}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#333\"/>\
         <text class=\"axis-label x\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"12\" {FONT}>{}</text>",
        TOP + ph,
        left + pw,
        TOP + ph,
        TOP + ph,
        left + pw / 2.0,
        TOP + ph + 38.0,
        esc(x_label),
    );
    if !y_label.is_empty() {
        let _ = write!(
            s,
            "<text class=\"axis-label y\" transform=\"translate(14 {:.1}) rotate(-90)\" text-anchor=\"middle\" font-size=\"12\" {FONT}>{}</text>",
            TOP + ph / 2.0,
            esc(y_label)
        );
    }
}

/// One bar: a labelled value, an optional range drawn as a whisker, its colour.
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub range: Option<(f64, f64)>,
    pub color: &'static str,
}

impl Bar {
    pub fn new(label: impl Into<String>, value: f64, color: &'static str) -> Bar {
        Bar {
            label: label.into(),
            value,
            range: None,
            color,
        }
    }
}

/// A horizontal bar chart of labelled values (failures by cause, p99 per
/// sweep cell), with an x axis with ticks, value labels that always fit and
/// a legend (colour blocks; `legend` empty = one block named by `x_label`).
#[derive(Debug, Clone, Default)]
pub struct BarChart {
    pub title: String,
    /// The value axis label, with its unit.
    pub x_label: String,
    pub bars: Vec<Bar>,
    pub legend: Vec<(String, &'static str)>,
    /// Decimals of the value labels.
    pub decimals: usize,
    pub width: f64,
}

/// Longest bar label shown in full; longer ones are cut with `…` (the full
/// text stays in the bar's tooltip and in the page's table).
const BAR_LABEL_MAX: usize = 40;

impl BarChart {
    fn value_text(&self, b: &Bar) -> String {
        let d = self.decimals;
        match b.range {
            Some((lo, hi)) => format!("{:.d$} [{lo:.d$}–{hi:.d$}]", b.value),
            None => format!("{:.d$}", b.value),
        }
    }

    /// The SVG element, or `None` without bars.
    pub fn render(&self) -> Option<String> {
        if self.bars.is_empty() {
            return None;
        }
        let width = if self.width > 0.0 { self.width } else { W };
        let max = self
            .bars
            .iter()
            .map(|b| b.value.max(b.range.map_or(0.0, |r| r.1)))
            .fold(0.0f64, f64::max);
        let max = if max > 0.0 && max.is_finite() {
            max
        } else {
            1.0
        };
        let (top_v, step, ticks) = axis_ticks(0.0, max);
        let shown = |l: &str| -> String {
            if l.chars().count() > BAR_LABEL_MAX {
                let cut: String = l.chars().take(BAR_LABEL_MAX - 1).collect();
                format!("{cut}…")
            } else {
                l.to_string()
            }
        };
        let longest = self
            .bars
            .iter()
            .map(|b| shown(&b.label).chars().count())
            .max()
            .unwrap_or(0);
        let left = (16.0 + CHAR_W * longest as f64).max(60.0);
        let longest_value = self
            .bars
            .iter()
            .map(|b| self.value_text(b).chars().count())
            .max()
            .unwrap_or(0);
        let right = 14.0 + CHAR_W * longest_value as f64;
        let pw = (width - left - right).max(80.0);
        let width = left + pw + right;
        let bar_h = 22.0;
        let top = 34.0;
        let base = top + bar_h * self.bars.len() as f64;
        let items: Vec<LegendItem> = if self.legend.is_empty() {
            vec![LegendItem {
                name: self.x_label.clone(),
                color: self.bars[0].color,
                dash: Dash::Solid,
                block: true,
            }]
        } else {
            self.legend
                .iter()
                .map(|(n, c)| LegendItem {
                    name: n.clone(),
                    color: c,
                    dash: Dash::Solid,
                    block: true,
                })
                .collect()
        };
        let mut items = items;
        if self.bars.iter().any(|b| b.range.is_some()) {
            items.push(LegendItem {
                name: "whiskers: 95 % confidence interval".into(),
                color: "#222222",
                dash: Dash::Solid,
                block: false,
            });
        }
        let (_, rows) = legend_layout(&items, 10.0, width);
        let legend_top = base + 44.0;
        let h = legend_top + LEGEND_ROW * rows as f64 + 8.0;
        let sx = |v: f64| left + (v / top_v).clamp(0.0, 1.0) * pw;
        let mut s = String::new();
        let label = format!(
            "{} ({}): {}",
            self.title,
            self.x_label,
            self.bars
                .iter()
                .map(|b| format!("{} {}", b.label, self.value_text(b)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        open_svg(&mut s, width, h, &self.title, &label, 10.0);
        s.push_str("<g class=\"ticks\">");
        for t in &ticks {
            let x = sx(*t);
            let _ = write!(
                s,
                "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{top}\" y2=\"{base:.1}\" stroke=\"#eee\"/>\
                 <line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{base:.1}\" y2=\"{:.1}\" stroke=\"#333\"/>\
                 <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"12\" {FONT}>{}</text>",
                base + 4.0,
                base + 17.0,
                esc(&tick_label(*t, step))
            );
        }
        s.push_str("</g>");
        for (i, b) in self.bars.iter().enumerate() {
            let y = top + bar_h * i as f64;
            let w = (sx(b.value) - left).max(1.0);
            let mut label_x = left + w + 5.0;
            if let Some((lo, hi)) = b.range {
                let (x1, x2) = (sx(lo), sx(hi));
                let (cy, t, bt) = (y + bar_h / 2.0, y + 6.0, y + bar_h - 6.0);
                let _ = write!(
                    s,
                    "<g stroke=\"#222\" stroke-width=\"1.5\">\
                     <line x1=\"{x1:.1}\" x2=\"{x2:.1}\" y1=\"{cy:.1}\" y2=\"{cy:.1}\"/>\
                     <line x1=\"{x1:.1}\" x2=\"{x1:.1}\" y1=\"{t:.1}\" y2=\"{bt:.1}\"/>\
                     <line x1=\"{x2:.1}\" x2=\"{x2:.1}\" y1=\"{t:.1}\" y2=\"{bt:.1}\"/></g>"
                );
                label_x = label_x.max(x2 + 5.0);
            }
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"12\" {FONT}>{}</text>\
                 <rect x=\"{left:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}: {}</title></rect>\
                 <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" {FONT}>{}</text>",
                left - 6.0,
                y + bar_h / 2.0 + 4.0,
                esc(&shown(&b.label)),
                y + 3.0,
                bar_h - 6.0,
                b.color,
                esc(&b.label),
                esc(&self.value_text(b)),
                label_x,
                y + bar_h / 2.0 + 4.0,
                esc(&self.value_text(b)),
            );
        }
        let _ = write!(
            s,
            "<line x1=\"{left:.1}\" x2=\"{left:.1}\" y1=\"{top}\" y2=\"{base:.1}\" stroke=\"#333\"/>\
             <line x1=\"{left:.1}\" x2=\"{:.1}\" y1=\"{base:.1}\" y2=\"{base:.1}\" stroke=\"#333\"/>\
             <text class=\"axis-label x\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"12\" {FONT}>{}</text>",
            left + pw,
            left + pw / 2.0,
            base + 34.0,
            esc(&self.x_label)
        );
        legend(&mut s, &items, 10.0, width, legend_top);
        s.push_str("</svg>");
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
    fn log_ticks_cover_the_range_in_decades() {
        let (lo, hi, ticks) = log_ticks(0.4, 60.0);
        assert_eq!((lo, hi), (0.1, 100.0));
        let labels: Vec<&str> = ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(
            labels,
            ["0.1", "0.2", "0.5", "1", "2", "5", "10", "20", "50", "100"]
        );
        let (_, _, wide) = log_ticks(0.01, 10_000.0);
        assert_eq!(wide.len(), 7, "{wide:?}");
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
            ..LineChart::default()
        };
        let svg = chart.render().unwrap();
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("<title>t &lt;x&gt;</title>"));
        assert!(!svg.contains("<x>"));
        assert!(svg.contains("class=\"legend\"") && svg.contains("class=\"axis-label x\""));
        let empty = LineChart {
            series: vec![Series::new("p50", BLUE, Dash::Solid)],
            ..chart
        };
        assert!(empty.render().is_none());
    }

    #[test]
    fn limits_marks_and_whiskers_are_drawn_and_in_the_legend() {
        let mut s = Series::new("p99", BLUE, Dash::Solid);
        s.points = vec![Some((10.0, 5.0)), Some((20.0, 9.0))];
        s.ranges = vec![Some((4.0, 6.0)), None];
        let svg = LineChart {
            title: "p99 by load".into(),
            x_label: "VUs".into(),
            y_label: "latency (ms)".into(),
            series: vec![s],
            limits: vec![Limit {
                name: "SLO final_ping.p99 < 8 ms".into(),
                value: 8.0,
            }],
            marks: vec![Mark {
                name: "knee".into(),
                x: 20.0,
            }],
            y_log: true,
            ..LineChart::default()
        }
        .render()
        .unwrap();
        assert_eq!(svg.matches("class=\"limit\"").count(), 1);
        assert_eq!(svg.matches("class=\"mark\"").count(), 1);
        assert_eq!(svg.matches("<g stroke=\"#222\"").count(), 1);
        for t in ["SLO final_ping.p99 &lt; 8 ms", "knee", "95 % confidence"] {
            assert!(svg.contains(t), "{t} missing");
        }
    }

    #[test]
    fn bar_chart_has_a_bar_per_cause_and_ticks() {
        let chart = BarChart {
            title: "Failures".into(),
            x_label: "count".into(),
            bars: vec![
                Bar::new("turn_timeout", 3.0, VERMILLION),
                Bar::new("bot_error", 1.0, VERMILLION),
            ],
            ..BarChart::default()
        };
        let svg = chart.render().unwrap();
        assert_eq!(svg.matches("<rect").count(), 3, "2 bars and a legend block");
        assert!(svg.contains("turn_timeout"));
        assert!(!svg.contains("<g stroke"));
        assert!(svg.contains("class=\"ticks\""));
    }

    #[test]
    fn bar_chart_reserves_room_for_value_labels() {
        let mut a = Bar::new("a", 128.319, BLUE);
        a.range = Some((120.5, 131.25));
        let chart = BarChart {
            title: "p99".into(),
            x_label: "p99 (ms)".into(),
            bars: vec![a, Bar::new("b", 80.0, BLUE)],
            decimals: 3,
            ..BarChart::default()
        };
        let svg = chart.render().unwrap();
        assert_eq!(svg.matches("<g stroke").count(), 1);
        assert!(svg.contains("128.319 [120.500–131.250]"));
        // The axis runs 0…150 (ticks every 50) over the plot; the label's
        // reserved margin (its characters × 7 px + 14) lies between the plot
        // and the edge, so the label after the whisker ends inside the chart.
        let label = "128.319 [120.500–131.250]".chars().count() as f64;
        let plot_right = W - (14.0 + CHAR_W * label);
        assert!(
            svg.contains(&format!("x2=\"{plot_right:.1}\" y1=\"78.0\"")),
            "{svg}"
        );
        let hi_x = 60.0 + 131.25 / 150.0 * (plot_right - 60.0);
        assert!(svg.contains(&format!("x2=\"{hi_x:.1}\"")), "{svg}");
        assert!(hi_x + 5.0 + CHAR_W * label <= W, "label past the edge");
    }
}
