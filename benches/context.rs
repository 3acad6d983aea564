//! Context-update benchmark: `cargo bench --bench context`.
//!
//! `finalping serve` on core 1, `finalping run` on core 0 (taskset when there
//! are ≥ 2 cores). For each codec (msgpack, json) and variables per update
//! (1, 10, 100): 50 VUs × 100 updates each, back to back, no chat turns.
//! Reports updates/s, client CPU-ms per update, update round-trip p50/p99 and
//! runtime bytes sent per update — all from the runs' own reports, measured
//! side by side in one invocation.

mod common;

use common::{run_scenario, Pinning, Server};

fn main() {
    let pin = Pinning::detect();
    println!("pinning: {}", pin.describe());
    let server = Server::start(&pin, &[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rows = Vec::new();
    for vars in [1usize, 10, 100] {
        for codec in ["msgpack", "json"] {
            let vars_yaml: Vec<String> = (0..vars)
                .map(|i| format!("var_{i}: \"value {i} of VU {{{{vu}}}}\""))
                .collect();
            let body = format!(
                "load: {{vus: 50, iterations: 100}}\nruntime: {{url: \"{}\", codec: {codec}, oauth: {{token_url: \"{}\", client_id: finalping, client_secret: finalping-secret}}}}\ntarget: {{url: \"{}\"}}\nsteps:\n  - update_context: {{scope: session, vars: {{{}}}}}\n",
                server.url.replace("http://", "ws://") + "/v2/runtime",
                server.url.clone() + "/oauth/token",
                server.url,
                vars_yaml.join(", ")
            );
            let s = run_scenario(
                &pin,
                &server.url,
                dir.path(),
                &format!("{codec}-{vars}"),
                &body,
            );
            let updates = s["counters"]["updates_ok"].as_f64().unwrap_or(0.0);
            let secs = s["duration_s"].as_f64().unwrap_or(1.0);
            let cpu = s["generator"]["cpu_ms"].as_f64().unwrap_or(0.0);
            let bytes = s["counters"]["runtime_bytes_sent"].as_f64().unwrap_or(0.0);
            rows.push(format!(
                "| {vars} | {codec} | {:.0} | {:.4} | {:.3} / {:.3} | {:.0} |",
                updates / secs,
                cpu / updates.max(1.0),
                s["metrics"]["context_update"]["p50_ms"]
                    .as_f64()
                    .unwrap_or(0.0),
                s["metrics"]["context_update"]["p99_ms"]
                    .as_f64()
                    .unwrap_or(0.0),
                bytes / updates.max(1.0)
            ));
        }
    }
    println!();
    println!("| variables | codec | updates/s | CPU-ms per update | round trip p50 / p99 ms | bytes sent per update |");
    println!("|---:|---|---:|---:|---:|---:|");
    for r in rows {
        println!("{r}");
    }
}
