//! `finalping sweep`: a 2×2 matrix (codec × heartbeat) at small size against
//! the embedded emulator: every cell runs, the sweep report has every cell,
//! and MessagePack sends fewer bytes per update than JSON.

use crate::common;

use common::*;
use std::time::Duration;

#[test]
fn a_two_by_two_sweep_runs_every_cell_and_compares_codecs() {
    let w = Workdir::new();
    let scenario = w.file(
        "s.yaml",
        "name: sweep\nmetrics: {interval: 200ms}\nload: {vus: 2, duration: 1500ms}\nsteps:\n  - update_context: {scope: session, vars: {a: \"value {{vu}}\", b: 12345, c: [1, 2, 3]}}\n  - think: 20ms\n",
    );
    let matrix = w.file(
        "m.yaml",
        "runtime.codec: [msgpack, json]\nruntime.heartbeat: [200ms, 25s]\n",
    );
    let out_dir = w.path("sweep");
    let out = run_finalping(
        &[
            "sweep",
            scenario.to_str().unwrap(),
            "--matrix",
            matrix.to_str().unwrap(),
            "--repeats",
            "1",
            "--out",
            out_dir.to_str().unwrap(),
        ],
        Duration::from_secs(180),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = read_json(&out_dir.join("sweep.json"));
    let cells = s["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 4, "{s}");
    for c in cells {
        assert_eq!(c["rounds"], 1, "{c}");
        assert!(
            c["latency"]["context_update"][0].as_f64().unwrap() > 0.0,
            "{c}"
        );
        // Every cell's p50 and p99 come with a confidence interval around them.
        let ci = c["latency_ci"].as_object().unwrap();
        assert!(ci.contains_key("context_update"), "{c}");
        for (metric, l) in ci {
            for p in ["p50", "p99"] {
                let est = l[format!("{p}_ms")].as_f64().unwrap();
                let range = l[format!("{p}_ci_ms")].as_array().unwrap();
                let (lo, hi) = (range[0].as_f64().unwrap(), range[1].as_f64().unwrap());
                assert!(
                    0.0 < lo && lo <= est && est <= hi,
                    "{metric} {p}: {lo} ≤ {est} ≤ {hi} in {c}"
                );
            }
            assert!(l["intervals"].as_u64().unwrap() >= 5, "{metric}: {l}");
        }
        assert!(c["cpu_ms_per_op"].as_f64().unwrap() > 0.0, "{c}");
    }
    assert_eq!(s["confidence_intervals"]["resamples"], 1000);
    let bytes = |codec: &str| -> f64 {
        cells
            .iter()
            .filter(|c| c["settings"]["runtime.codec"] == codec)
            .map(|c| c["bytes_per_update"].as_f64().unwrap())
            .sum::<f64>()
    };
    assert!(
        bytes("msgpack") < bytes("json"),
        "msgpack {} vs json {}",
        bytes("msgpack"),
        bytes("json")
    );
    assert_eq!(s["ranking"].as_array().unwrap().len(), 4);
    // Six pairs of four cells, each judged per metric.
    let pairs = s["pairs"].as_array().unwrap();
    let distinct: std::collections::BTreeSet<(String, String)> = pairs
        .iter()
        .map(|p| (p["baseline"].to_string(), p["current"].to_string()))
        .collect();
    assert_eq!(distinct.len(), 6, "{s}");
    let md = std::fs::read_to_string(out_dir.join("sweep.md")).unwrap();
    assert!(
        md.contains("runtime.codec=json,runtime.heartbeat=25s"),
        "{md}"
    );
    assert!(
        md.contains("confidence interval") && md.contains("1000 resamples"),
        "{md}"
    );
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert!(
        html.matches("<svg").count() >= 3 && !html.contains("<script"),
        "sweep page"
    );
    // context_update p50 and p99 charts: one error bar per cell each.
    assert!(
        html.matches("<g stroke=").count() >= 8,
        "sweep page error bars"
    );
    // Each cell's run is a complete report folder.
    assert!(out_dir.join("cell-4/round-1/summary.json").is_file());
}

#[test]
fn a_bad_matrix_is_a_usage_error() {
    let w = Workdir::new();
    let scenario = w.file(
        "s.yaml",
        "name: s\nload: {vus: 1}\nsteps:\n  - send: {text: hi}\n",
    );
    let matrix = w.file("m.yaml", "load.vus: [1, zero]\n");
    let out = run_finalping(
        &[
            "sweep",
            scenario.to_str().unwrap(),
            "--matrix",
            matrix.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("load.vus=zero"),
        "{}",
        text(&out)
    );
}
