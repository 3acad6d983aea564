//! Execution segments: for random scenarios (every executor, weighted
//! `scenarios:`, stages, ramp-up, Poisson and uniform arrivals) and random
//! `N`, the union of the `N` segment plans is the whole plan — the same VUs
//! with the same `{{vu}}` numbers and start offsets, none twice; the same
//! arrival instants, none twice — and the shares differ by at most one.
//! Feeder rows: `unique` rows are partitioned, `sequential` picks interleave
//! into the single-process sequence.

use super::support::config;
use finalping::engine::segment::{self, Segment};
use finalping::engine::{groups_of, Group};
use finalping::scenario::feeder::{CsvData, FeederTable};
use finalping::scenario::{load_str, FeederMode, FeederTables, Feeders};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::sync::Arc;

/// A `load:` block for any executor, as YAML flow text.
fn load() -> impl Strategy<Value = String> {
    let stages = proptest::collection::vec((1u32..4000, 0u32..30), 1..4).prop_map(|st| {
        st.iter()
            .map(|(ms, t)| format!("{{duration: {ms}ms, target: {t}}}"))
            .collect::<Vec<_>>()
            .join(", ")
    });
    let arrival = prop_oneof![Just("uniform"), Just("poisson")];
    prop_oneof![
        (1u32..60, 1u32..5000, 0u32..8000).prop_map(|(vus, ms, ramp)| format!(
            "{{vus: {vus}, duration: {ms}ms, ramp_up: {ramp}ms}}"
        )),
        (1u32..60, 1u64..5, 0u32..3000).prop_map(|(vus, it, ramp)| format!(
            "{{vus: {vus}, iterations: {it}, ramp_up: {ramp}ms, pacing: 1s}}"
        )),
        (0u32..10, stages.clone()).prop_map(|(start, st)| format!(
            "{{executor: ramping-vus, start_vus: {start}, stages: [{st}, {{duration: 1s, target: 3}}]}}"
        )),
        (1u32..400, 1u32..8000, 8u32..80, arrival.clone()).prop_map(|(rate10, ms, max, a)| format!(
            "{{executor: constant-arrival-rate, rate: {}, duration: {ms}ms, max_vus: {max}, arrival: {a}}}",
            f64::from(rate10) / 10.0
        )),
        (0u32..20, stages, 8u32..80, arrival).prop_map(|(start, st, max, a)| format!(
            "{{executor: ramping-arrival-rate, start_rate: {start}, stages: [{st}], max_vus: {max}, arrival: {a}}}"
        )),
    ]
}

/// A scenario file: one script, or weighted `scenarios:` (some with their own load).
fn scenario_yaml() -> impl Strategy<Value = String> {
    let steps = "[connect, {send: {text: \"hi {{vu}}\"}}]";
    let single = load().prop_map(move |l| format!("name: p\nload: {l}\nsteps: {steps}\n"));
    let sub = (1u32..5, proptest::option::weighted(0.3, load()));
    let multi = (load(), proptest::collection::vec(sub, 1..4)).prop_map(move |(top, subs)| {
        let subs: String = subs
            .iter()
            .enumerate()
            .map(|(i, (w, own))| match own {
                Some(l) => format!("  - {{name: s{i}, load: {l}, steps: {steps}}}\n"),
                None => format!("  - {{name: s{i}, weight: {w}, steps: {steps}}}\n"),
            })
            .collect();
        format!("name: p\nload: {top}\nscenarios:\n{subs}")
    });
    prop_oneof![single, multi]
}

fn groups(yaml: &str) -> Result<Vec<Group>, TestCaseError> {
    let s =
        load_str(yaml, "segments.yaml").map_err(|e| TestCaseError::fail(format!("{e}\n{yaml}")))?;
    Ok(groups_of(&s).0)
}

fn segments(n: u32) -> impl Iterator<Item = Segment> {
    (0..n).filter_map(move |i| Segment::new(i, n))
}

/// The largest and smallest of some counts differ by at most one.
fn balanced(counts: &[usize]) -> bool {
    let max = counts.iter().max().copied().unwrap_or(0);
    let min = counts.iter().min().copied().unwrap_or(0);
    max - min <= 1
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn segment_vus_add_up_to_the_whole_plan(yaml in scenario_yaml(), n in 1u32..9) {
        let g = groups(&yaml)?;
        let whole = segment::vus(&g, Segment::WHOLE);
        let vus: u64 = g.iter().map(|g| u64::from(g.vus)).sum();
        prop_assert_eq!(whole.len() as u64, vus);
        prop_assert_eq!(
            whole.iter().map(|v| v.vu).collect::<Vec<_>>(),
            (1..=vus).collect::<Vec<_>>(),
            "whole plan: VU numbers 1..=vus"
        );
        let mut union = Vec::new();
        let mut counts = Vec::new();
        let mut group_counts = vec![Vec::new(); g.len()];
        for seg in segments(n) {
            let mine = segment::vus(&g, seg);
            counts.push(mine.len());
            for (gi, c) in group_counts.iter_mut().enumerate() {
                c.push(mine.iter().filter(|v| v.group == gi).count());
            }
            union.extend(mine);
        }
        union.sort();
        prop_assert_eq!(&union, &whole, "union of {} segments", n);
        prop_assert!(balanced(&counts), "VUs per segment {:?}", counts);
        for c in &group_counts {
            prop_assert!(balanced(c), "VUs of a group per segment {:?}", c);
        }
    }

    #[test]
    fn segment_arrivals_add_up_to_the_whole_schedule(
        yaml in scenario_yaml(),
        n in 1u32..9,
        seed in any::<u64>(),
    ) {
        let g = groups(&yaml)?;
        for gi in 0..g.len() {
            let whole = segment::arrivals(&g, gi, Segment::WHOLE, seed);
            let mut union = Vec::new();
            let mut counts = Vec::new();
            for seg in segments(n) {
                let mine = segment::arrivals(&g, gi, seg, seed);
                prop_assert!(mine.windows(2).all(|w| w[0] <= w[1]), "in order");
                counts.push(mine.len());
                union.extend(mine);
            }
            union.sort();
            prop_assert_eq!(&union, &whole, "group {} over {} segments", gi, n);
            prop_assert!(balanced(&counts), "arrivals per segment {:?}", counts);
            if g[gi].schedule.is_open() && g[gi].vus >= n {
                // Every segment that takes arrivals has a VU of the group for them.
                for seg in segments(n) {
                    let vus = segment::group_vus(&g, gi, seg).len();
                    prop_assert!(vus >= 1, "segment {} has no VU of open group {}", seg, gi);
                }
            }
        }
    }

    #[test]
    fn unique_feeder_rows_are_partitioned(rows in 1usize..60, n in 1u32..9) {
        let tables = table(FeederMode::Unique, rows);
        let mut used = Vec::new();
        for seg in segments(n) {
            let f = Feeders::strided(&tables, u64::from(seg.index()), u64::from(seg.count()));
            let mut rng = StdRng::seed_from_u64(1);
            let mut it = 0;
            while let Ok(picked) = f.pick(1, it, &mut rng) {
                used.push(picked.row(0).unwrap_or(usize::MAX));
                it += 1;
                prop_assert!(it <= rows as u64, "segment {} never runs out", seg);
            }
        }
        used.sort_unstable();
        prop_assert_eq!(used, (0..rows).collect::<Vec<_>>());
    }

    #[test]
    fn sequential_feeder_picks_interleave(rows in 1usize..40, n in 1u32..9, picks in 1u64..30) {
        let tables = table(FeederMode::Sequential, rows);
        let mut rng = StdRng::seed_from_u64(1);
        let whole = Feeders::new(&tables);
        let mut expected: Vec<usize> = (0..picks * u64::from(n))
            .map(|it| whole.pick(1, it, &mut rng).ok().and_then(|r| r.row(0)).unwrap_or(usize::MAX))
            .collect();
        let mut union = Vec::new();
        for seg in segments(n) {
            let f = Feeders::strided(&tables, u64::from(seg.index()), u64::from(seg.count()));
            for it in 0..picks {
                let row = f.pick(1, it, &mut rng).ok().and_then(|r| r.row(0));
                prop_assert_eq!(
                    row,
                    Some(((u64::from(seg.index()) + it * u64::from(n)) % rows as u64) as usize)
                );
                union.push(row.unwrap_or(usize::MAX));
            }
        }
        union.sort_unstable();
        expected.sort_unstable();
        prop_assert_eq!(union, expected);
    }
}

/// One used feeder `u` with `rows` rows (column `n` = the row number).
fn table(mode: FeederMode, rows: usize) -> FeederTables {
    let csv: String = std::iter::once("n".to_string())
        .chain((0..rows).map(|i| i.to_string()))
        .collect::<Vec<_>>()
        .join("\n");
    let data = CsvData::parse("u.csv", csv.as_bytes()).expect("csv");
    FeederTables::new(vec![FeederTable {
        name: "u".to_string(),
        mode,
        file: "u.csv".to_string(),
        data: Arc::new(data),
        used: true,
    }])
}

#[test]
fn one_segment_is_the_whole_run() {
    assert_eq!("0/1".parse::<Segment>(), Ok(Segment::WHOLE));
    let g = groups("name: p\nload: {executor: constant-arrival-rate, rate: 7, duration: 3s, max_vus: 4, arrival: poisson}\nsteps: [{send: {text: hi}}]\n")
        .expect("scenario");
    assert_eq!(
        segment::arrivals(&g, 0, Segment::WHOLE, 9).len(),
        segment::arrivals(&g, 0, Segment::new(0, 1).expect("0/1"), 9).len()
    );
}
