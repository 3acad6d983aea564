//! The generator self-check in strict mode: a run whose scheduler lag exceeds
//! its budget is marked invalid in every report and exits 2; the time series
//! and `.hlog` files are written for every run. On a machine made busy by
//! other processes, the cause is `machine_busy`, not the generator.

use crate::common;

use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn a_lag_budget_the_generator_cannot_meet_makes_the_run_invalid() {
    let w = Workdir::new();
    // 1 µs: a 10 ms sleep always overshoots by more than that.
    let p = w.file(
        "s.yaml",
        "name: strict\nmetrics: {interval: 200ms, lag_p99_budget: 1us}\nload: {vus: 2, duration: 1s}\nsteps:\n  - send: {text: hi}\n  - think: 20ms\nemulator: {delay: 1ms}\n",
    );
    let out_dir = w.path("r");
    // Strict is the default: no --self-check flag here.
    let child = Command::new(bin())
        .args([
            "run",
            p.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "--quiet",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_with_limit(child, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let s = read_json(&out_dir.join("summary.json"));
    assert_eq!(s["status"], "invalid");
    assert_eq!(s["self_check"]["saturated"], true);
    assert!(s["self_check"]["lag_samples"].as_u64().unwrap() > 10, "{s}");
    assert!(s["status_reason"].as_str().unwrap().contains("saturated"));
    // Whatever the cause on this machine, it is named with its remedy.
    let cause = s["self_check"]["cause"].as_str().unwrap();
    let hint = s["self_check"]["hint"].as_str().unwrap();
    assert!(!hint.is_empty(), "{s}");
    assert!(
        s["status_reason"]
            .as_str()
            .unwrap()
            .contains(&format!("cause {cause}: {hint}")),
        "{s}"
    );
    assert!(
        counter(&s, "turns_ok") > 0,
        "it did measure, but cannot be trusted"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("SATURATED"), "{stdout}");
    let md = std::fs::read_to_string(out_dir.join("summary.md")).unwrap();
    assert!(md.contains("saturated"), "{md}");

    // The time series has a row per 200 ms interval and the hlog files exist.
    let csv = std::fs::read_to_string(out_dir.join("timeseries.csv")).unwrap();
    let rows = csv.lines().count() - 1;
    assert!((4..=12).contains(&rows), "{rows} rows:\n{csv}");
    assert!(out_dir.join("final_ping.hlog").is_file());
    assert!(out_dir.join("connect.hlog").is_file());
}

#[test]
fn warn_mode_reports_saturation_without_changing_the_status() {
    let w = Workdir::new();
    let p = w.file(
        "s.yaml",
        "name: warn\nmetrics: {lag_p99_budget: 1us}\nload: {vus: 1, iterations: 3}\nsteps:\n  - send: {text: hi}\n  - think: 100ms\nemulator: {delay: 1ms}\n",
    );
    let out_dir = w.path("r");
    let out = run_finalping(
        &[
            "run",
            p.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "--quiet",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = read_json(&out_dir.join("summary.json"));
    assert_eq!(s["status"], "passed");
    assert_eq!(s["self_check"]["saturated"], true);
    // The status line does not carry the cause here: the console says it.
    let cause = s["self_check"]["cause"].as_str().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("!!! cause {cause}: ")), "{stdout}");
}

/// CPU-burning child processes (`yes > /dev/null`), each bounded by
/// `timeout` in case the test process dies; stopped when dropped.
#[cfg(target_os = "linux")]
struct Burners(Vec<std::process::Child>);

#[cfg(target_os = "linux")]
impl Burners {
    fn start(n: usize) -> Burners {
        Burners(
            (0..n)
                .map(|_| {
                    Command::new("timeout")
                        .args(["120", "yes"])
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .spawn()
                        .expect("spawn `timeout 120 yes` (coreutils)")
                })
                .collect(),
        )
    }
}

#[cfg(target_os = "linux")]
impl Drop for Burners {
    fn drop(&mut self) {
        for child in &mut self.0 {
            // SIGTERM: `timeout` passes it on to `yes` and exits.
            let pid = i32::try_from(child.id()).unwrap();
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let _ = child.wait();
        }
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_machine_busy_with_other_processes_is_not_blamed_on_the_generator() {
    let _quiet = exclusive();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // One more CPU-bound process than the cores finalping may use.
    let burners = Burners::start(cores + 1);
    let w = Workdir::new();
    // A 1 µs lag budget: the run is always saturated, so the cause is always judged.
    let p = w.file(
        "s.yaml",
        "name: busy\nmetrics: {interval: 200ms, lag_p99_budget: 1us}\nload: {vus: 2, duration: 2s}\nsteps:\n  - send: {text: hi}\n  - think: 20ms\nemulator: {delay: 1ms}\n",
    );
    let out_dir = w.path("r");
    let child = Command::new(bin())
        .args([
            "run",
            p.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "--quiet",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_with_limit(child, Duration::from_secs(60));
    drop(burners);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let s = read_json(&out_dir.join("summary.json"));
    let sc = &s["self_check"];
    assert_eq!(sc["saturated"], true, "{sc}");

    // The evidence: the others' CPU exceeds ours (client + embedded emulator).
    let m = &sc["machine"];
    let f = |k: &str| m[k].as_f64().unwrap_or_else(|| panic!("no {k} in {m}"));
    let ours = f("own_cpu_percent") + f("emulator_cpu_percent");
    assert!(f("others_cpu_percent") > ours, "{m}");
    assert!(m["intervals"].as_u64().unwrap() >= 5, "{m}");
    assert!(m["run_queue_max"].as_u64().unwrap() >= 1, "{m}");

    // The cause is the machine, and the remedy names the other load.
    assert_ne!(sc["cause"], "generator_saturated", "{sc}");
    let measured_cpus = m["cpus"].as_u64().unwrap() as usize;
    if measured_cpus <= cores {
        // The burners can fill every CPU measured (not so in a container whose
        // CPU quota is smaller than the host's CPUs: there the others' share of
        // the host stays small).
        assert_eq!(sc["cause"], "machine_busy", "{sc}");
        let hint = sc["hint"].as_str().unwrap();
        assert!(hint.starts_with("other processes used"), "{hint}");
        assert!(hint.contains("fewer VUs will not help"), "{hint}");
        let reason = s["status_reason"].as_str().unwrap();
        assert!(
            reason.contains("cause machine_busy: other processes used"),
            "{reason}"
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("cause machine_busy: other processes"),
            "{stdout}"
        );
        assert!(stdout.contains("!!! evidence: finalping"), "{stdout}");
        let md = std::fs::read_to_string(out_dir.join("summary.md")).unwrap();
        assert!(
            md.contains("cause machine_busy") && md.contains("Evidence:"),
            "{md}"
        );
    }
}
