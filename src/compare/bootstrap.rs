//! The statistics of `finalping compare` and of the sweep/capacity tables:
//! percentiles of pooled interval histograms, a percentile-bootstrap
//! confidence interval of each percentile of one side ([`percentile_cis`]),
//! and of the relative change of each percentile between a baseline and a
//! current side ([`deltas`]).
//!
//! The resampling unit is one interval histogram (one line of a `.hlog`,
//! `metrics.interval` long), not one sample: latencies within an interval are
//! correlated (same load, same GC pause, same noisy neighbour), intervals much
//! less, so resampling whole intervals keeps that correlation in the band (a
//! block bootstrap). With several runs on a side the bootstrap is two-stage:
//! each replicate first draws runs with replacement, then intervals within
//! each drawn run, so run-to-run variation of repeated baselines widens the
//! band instead of being averaged away.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One interval histogram: `(value index, count)` pairs over a shared value axis.
pub type Sparse = Vec<(usize, u64)>;

/// One side of a comparison: per run, its non-empty intervals.
#[derive(Debug, Clone, Default)]
pub struct Side {
    pub runs: Vec<Vec<Sparse>>,
}

impl Side {
    pub fn intervals(&self) -> usize {
        self.runs.iter().map(Vec::len).sum()
    }

    pub fn samples(&self) -> u64 {
        self.runs.iter().flatten().flatten().map(|(_, c)| *c).sum()
    }

    /// Sums every interval of every run into `dense`.
    fn pool(&self, dense: &mut [u64]) {
        dense.fill(0);
        for (i, c) in self.runs.iter().flatten().flatten() {
            if let Some(d) = dense.get_mut(*i) {
                *d += c;
            }
        }
    }

    /// One bootstrap replicate into `dense`: runs drawn with replacement,
    /// then that run's intervals drawn with replacement.
    fn resample(&self, rng: &mut StdRng, dense: &mut [u64]) {
        dense.fill(0);
        let n_runs = self.runs.len();
        for _ in 0..n_runs {
            let Some(run) = self.runs.get(rng.random_range(0..n_runs)) else {
                continue;
            };
            let n = run.len();
            if n == 0 {
                continue;
            }
            for _ in 0..n {
                if let Some(interval) = run.get(rng.random_range(0..n)) {
                    for (i, c) in interval {
                        if let Some(d) = dense.get_mut(*i) {
                            *d += c;
                        }
                    }
                }
            }
        }
    }
}

/// The value at quantile `q` (0..=1) of counts `dense` over `values`, the way
/// HdrHistogram defines it: the smallest value whose cumulative count reaches
/// `ceil(q × total)` (at least 1). None when empty.
pub fn quantile(values: &[f64], dense: &[u64], q: f64) -> Option<f64> {
    let total: u64 = dense.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (v, c) in values.iter().zip(dense) {
        seen += c;
        if seen >= rank {
            return Some(*v);
        }
    }
    values.last().copied()
}

/// Settings of the bootstrap.
#[derive(Debug, Clone, Copy)]
pub struct BootstrapSettings {
    pub resamples: u32,
    /// Two-sided confidence level, e.g. 0.95.
    pub confidence: f64,
    pub seed: u64,
}

/// The change of one percentile, current vs baseline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Delta {
    pub percentile: f64,
    pub baseline: f64,
    pub current: f64,
    /// (current − baseline) / baseline × 100.
    pub delta_pct: f64,
    /// The confidence interval of `delta_pct`.
    pub ci_low_pct: f64,
    pub ci_high_pct: f64,
}

/// One percentile of one side with its confidence interval (same unit as the axis).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PercentileCi {
    pub percentile: f64,
    /// The percentile of every interval of every run pooled.
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
}

/// The `(alpha, 1 − alpha)` quantiles of the replicates `reps` for a two-sided
/// `confidence` (nearest rank); `fallback` when there are none.
fn bounds(reps: &mut [f64], confidence: f64, fallback: f64) -> (f64, f64) {
    let alpha = (1.0 - confidence.clamp(0.5, 0.9999)) / 2.0;
    reps.sort_by(f64::total_cmp);
    let at = |q: f64| -> f64 {
        let last = reps.len().saturating_sub(1);
        let idx = ((q * last as f64).round() as usize).min(last);
        reps.get(idx).copied().unwrap_or(fallback)
    };
    (at(alpha), at(1.0 - alpha))
}

/// Point estimate and percentile-bootstrap confidence interval of each
/// percentile (0 < p <= 100) of `side` over the axis `values`: the same
/// replicates as [`deltas`] (runs, then intervals within each run, drawn with
/// replacement). On a discrete axis the bootstrap quantiles can miss the
/// point estimate by a bucket; the interval is widened to include it.
/// None when the side has no samples.
pub fn percentile_cis(
    values: &[f64],
    side: &Side,
    percentiles: &[f64],
    s: BootstrapSettings,
) -> Option<Vec<PercentileCi>> {
    let mut dense = vec![0u64; values.len()];
    side.pool(&mut dense);
    let points = percentiles
        .iter()
        .map(|p| quantile(values, &dense, p / 100.0))
        .collect::<Option<Vec<f64>>>()?;
    let mut rng = StdRng::seed_from_u64(s.seed);
    let mut reps: Vec<Vec<f64>> = vec![Vec::with_capacity(s.resamples as usize); percentiles.len()];
    for _ in 0..s.resamples {
        side.resample(&mut rng, &mut dense);
        for (p, out) in percentiles.iter().zip(reps.iter_mut()) {
            if let Some(v) = quantile(values, &dense, p / 100.0) {
                out.push(v);
            }
        }
    }
    Some(
        percentiles
            .iter()
            .zip(points)
            .zip(reps)
            .map(|((p, estimate), mut r)| {
                let (low, high) = bounds(&mut r, s.confidence, estimate);
                PercentileCi {
                    percentile: *p,
                    estimate,
                    low: low.min(estimate),
                    high: high.max(estimate),
                }
            })
            .collect(),
    )
}

/// Point estimates and bootstrap intervals of the relative change of each
/// percentile (0 < p <= 100) from `base` to `cur`; `values` is the shared axis.
/// None when either side has no samples.
pub fn deltas(
    values: &[f64],
    base: &Side,
    cur: &Side,
    percentiles: &[f64],
    s: BootstrapSettings,
) -> Option<Vec<Delta>> {
    let mut b = vec![0u64; values.len()];
    let mut c = vec![0u64; values.len()];
    base.pool(&mut b);
    cur.pool(&mut c);
    let rel = |b: f64, c: f64| if b > 0.0 { (c - b) / b * 100.0 } else { 0.0 };
    let mut points = Vec::with_capacity(percentiles.len());
    for p in percentiles {
        let q = p / 100.0;
        let (bv, cv) = (quantile(values, &b, q)?, quantile(values, &c, q)?);
        points.push((bv, cv));
    }
    let mut rng = StdRng::seed_from_u64(s.seed);
    let mut reps: Vec<Vec<f64>> = vec![Vec::with_capacity(s.resamples as usize); percentiles.len()];
    for _ in 0..s.resamples {
        base.resample(&mut rng, &mut b);
        cur.resample(&mut rng, &mut c);
        for (p, out) in percentiles.iter().zip(reps.iter_mut()) {
            let q = p / 100.0;
            if let (Some(bv), Some(cv)) = (quantile(values, &b, q), quantile(values, &c, q)) {
                out.push(rel(bv, cv));
            }
        }
    }
    let mut out = Vec::with_capacity(percentiles.len());
    for ((p, (bv, cv)), mut r) in percentiles.iter().zip(points).zip(reps) {
        let point = rel(bv, cv);
        let (ci_low_pct, ci_high_pct) = bounds(&mut r, s.confidence, point);
        out.push(Delta {
            percentile: *p,
            baseline: bv,
            current: cv,
            delta_pct: point,
            ci_low_pct,
            ci_high_pct,
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr::{Distribution, LogNormal};

    /// `runs` runs of `intervals` intervals of 200 lognormal samples around
    /// `median` (µs), on a 100-µs value axis of 0..200_000 µs.
    fn side(median: f64, runs: usize, intervals: usize, seed: u64) -> Side {
        let mut rng = StdRng::seed_from_u64(seed);
        let d = LogNormal::new(median.ln(), 0.2).unwrap();
        Side {
            runs: (0..runs)
                .map(|_| {
                    (0..intervals)
                        .map(|_| {
                            let mut counts = std::collections::BTreeMap::new();
                            for _ in 0..200 {
                                let v = (d.sample(&mut rng) as usize / 100).min(1999);
                                *counts.entry(v).or_insert(0u64) += 1;
                            }
                            counts.into_iter().collect()
                        })
                        .collect()
                })
                .collect(),
        }
    }

    fn axis() -> Vec<f64> {
        (0..2000).map(|v| v as f64 * 100.0).collect()
    }

    const S: BootstrapSettings = BootstrapSettings {
        resamples: 300,
        confidence: 0.95,
        seed: 7,
    };

    /// The true p50 and p99 of the lognormal of `side`: median × e^(σ·z).
    fn true_percentile(median: f64, p: f64) -> f64 {
        let z: f64 = if p == 50.0 { 0.0 } else { 2.326_347_874 }; // Φ⁻¹(0.99)
        median * (0.2 * z).exp()
    }

    #[test]
    fn the_interval_covers_the_true_percentile_and_narrows_with_data() {
        let v = axis();
        let width = |c: &PercentileCi| c.high - c.low;
        let small = side(50_000.0, 1, 5, 11);
        let large = side(50_000.0, 1, 80, 12);
        let cs = percentile_cis(&v, &small, &[50.0, 99.0], S).unwrap();
        let cl = percentile_cis(&v, &large, &[50.0, 99.0], S).unwrap();
        for (c, p) in cs.iter().chain(&cl).zip([50.0, 99.0, 50.0, 99.0]) {
            assert_eq!(c.percentile, p);
            let truth = true_percentile(50_000.0, p);
            // The axis has 100-µs buckets: allow one bucket of rounding.
            assert!(
                c.low - 100.0 <= truth && truth <= c.high + 100.0,
                "{c:?} vs {truth}"
            );
            assert!(c.low <= c.estimate && c.estimate <= c.high, "{c:?}");
            assert!(width(c) > 0.0, "{c:?}");
        }
        // 16 × the data: the interval is at least twice as narrow (√16 = 4 in theory).
        for (s, l) in cs.iter().zip(&cl) {
            assert!(width(l) * 2.0 < width(s), "{s:?} vs {l:?}");
        }
        // Deterministic for a seed.
        assert_eq!(percentile_cis(&v, &large, &[50.0, 99.0], S).unwrap(), cl);
    }

    #[test]
    fn the_interval_is_about_95_percent_right() {
        // 40 independent sides: the 95 % interval of the p50 misses the true
        // median about twice; more than 8 misses would be a broken interval.
        let v = axis();
        let truth = true_percentile(50_000.0, 50.0);
        let misses = (0..40u64)
            .filter(|seed| {
                let c =
                    percentile_cis(&v, &side(50_000.0, 1, 10, 100 + seed), &[50.0], S).unwrap()[0];
                !(c.low - 100.0 <= truth && truth <= c.high + 100.0)
            })
            .count();
        assert!(
            misses <= 8,
            "{misses} of 40 intervals missed the true median"
        );
    }

    #[test]
    fn an_empty_side_has_no_interval() {
        let v = axis();
        assert_eq!(percentile_cis(&v, &Side::default(), &[50.0], S), None);
    }

    #[test]
    fn quantile_follows_hdr_ranks() {
        let values = [1.0, 2.0, 3.0];
        assert_eq!(quantile(&values, &[1, 1, 2], 0.5), Some(2.0));
        assert_eq!(quantile(&values, &[1, 1, 2], 0.0), Some(1.0));
        assert_eq!(quantile(&values, &[1, 1, 2], 1.0), Some(3.0));
        assert_eq!(quantile(&values, &[0, 0, 0], 0.5), None);
    }

    #[test]
    fn same_distribution_has_an_interval_around_zero() {
        let v = axis();
        let d = deltas(
            &v,
            &side(50_000.0, 1, 20, 1),
            &side(50_000.0, 1, 20, 2),
            &[50.0, 99.0],
            S,
        )
        .unwrap();
        for x in &d {
            assert!(x.ci_low_pct < 0.0 && x.ci_high_pct > 0.0, "{x:?}");
            assert!(x.ci_high_pct - x.ci_low_pct < 15.0, "{x:?}");
        }
    }

    #[test]
    fn a_shift_of_twenty_percent_is_found_and_is_deterministic() {
        let v = axis();
        let (b, c) = (side(50_000.0, 1, 20, 1), side(60_000.0, 1, 20, 2));
        let d = deltas(&v, &b, &c, &[50.0, 90.0], S).unwrap();
        for x in &d {
            assert!(x.ci_low_pct > 10.0 && x.ci_high_pct < 30.0, "{x:?}");
        }
        assert_eq!(deltas(&v, &b, &c, &[50.0, 90.0], S).unwrap(), d);
    }

    #[test]
    fn differing_baselines_widen_the_band() {
        let v = axis();
        let cur = side(50_000.0, 1, 20, 9);
        let one = side(50_000.0, 1, 20, 1);
        let mut spread = side(45_000.0, 1, 20, 3);
        spread.runs.extend(side(55_000.0, 1, 20, 4).runs);
        let narrow = deltas(&v, &one, &cur, &[50.0], S).unwrap()[0];
        let wide = deltas(&v, &spread, &cur, &[50.0], S).unwrap()[0];
        assert!(
            wide.ci_high_pct - wide.ci_low_pct > 2.0 * (narrow.ci_high_pct - narrow.ci_low_pct),
            "{narrow:?} {wide:?}"
        );
    }
}
