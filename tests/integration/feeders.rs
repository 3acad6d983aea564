//! CSV data feeders end to end: the real binary against its embedded emulator
//! (which echoes "You said: <text>"), with the CSV next to the scenario in a
//! temp folder while the binary runs from the crate folder (so `file:` must be
//! resolved relative to the scenario). Plus load-level checks through the
//! library API.

use crate::common;

use common::*;
use finalping::scenario::{self, FeederMode, ScenarioError};
use std::path::Path;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

/// Five users; `greeting` is what the emulator answers to `hello <name>`.
const USERS: &str = "name,email,greeting
Ada,ada@example.com,You said: hello Ada
Brian,brian@example.com,You said: hello Brian
Chloe,chloe@example.com,You said: hello Chloe
Dmitri,dmitri@example.com,You said: hello Dmitri
Eve,eve@example.com,You said: hello Eve
";

fn workdir_with_users() -> Workdir {
    let w = Workdir::new();
    std::fs::create_dir(w.path("data")).expect("mkdir data");
    w.file("data/users.csv", USERS);
    w
}

/// Runs `finalping run <scenario> --out <w>/report --quiet`.
fn run(w: &Workdir, scenario: &Path) -> (std::process::Output, std::path::PathBuf) {
    let out_dir = w.path("report");
    let out = run_finalping(
        &[
            "run",
            scenario.to_str().expect("utf-8 path"),
            "--out",
            out_dir.to_str().expect("utf-8 path"),
            "--quiet",
        ],
        LIMIT,
    );
    (out, out_dir)
}

fn causes(s: &serde_json::Value) -> serde_json::Value {
    s["errors"].clone()
}

#[test]
fn feeder_columns_fill_text_and_expect_with_one_row_per_iteration() {
    let w = workdir_with_users();
    // `steps` before `feeders`: references are checked after the whole file is read.
    // Both sends of an iteration must see the same row: the greeting of the
    // second send only matches when `name` and `greeting` come from one row.
    let scenario = w.file(
        "s.yaml",
        r#"name: feeders-ok
load: { vus: 5, iterations: 2 }
emulator: { delay: 1ms, outputs: 1 }
target:
  user_id: "{{users.email}}"
steps:
  - connect
  - send:
      text: "{{users.name}}"
      expect: { text_contains: "{{users.name}}" }
  - send:
      text: "hello {{users.name}}"
      data: { email: "{{users.email}}" }
      expect: { text_contains: "{{users.greeting}}" }
  - disconnect
feeders:
  users: { file: data/users.csv, mode: sequential }
"#,
    );
    let (out, dir) = run(&w, &scenario);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = read_json(&dir.join("summary.json"));
    assert_eq!(s["status"], "passed");
    assert_eq!(counter(&s, "turns_sent"), 20);
    assert_eq!(counter(&s, "turns_ok"), 20);
    assert_eq!(counter(&s, "expect_failed"), 0);
}

#[test]
fn feeder_needles_are_real_values_so_a_wrong_column_fails_the_expectation() {
    // Control for the test above: an empty rendering would match any output.
    let w = workdir_with_users();
    let scenario = w.file(
        "s.yaml",
        r#"name: feeders-wrong-column
load: { vus: 2, iterations: 2 }
emulator: { delay: 1ms, outputs: 1 }
feeders:
  users: { file: data/users.csv, mode: random }
steps:
  - send: { text: "no expectation" }
  - send:
      text: "hello {{users.name}}"
      expect: { text_contains: "{{users.email}}" }
"#,
    );
    let (out, dir) = run(&w, &scenario);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let s = read_json(&dir.join("summary.json"));
    assert_eq!(counter(&s, "turns_sent"), 8);
    assert_eq!(counter(&s, "turns_ok"), 4);
    assert_eq!(counter(&s, "expect_failed"), 4);
    assert_eq!(causes(&s)["expect_text_contains"], 4);
}

#[test]
fn unique_feeder_hands_out_each_row_once_then_stops_the_vus() {
    let w = workdir_with_users();
    let scenario = w.file(
        "s.yaml",
        r#"name: feeders-unique
load: { vus: 3, iterations: 4 }
emulator: { delay: 1ms, outputs: 1 }
feeders:
  users: { file: data/users.csv, mode: unique }
steps:
  - send:
      text: "hello {{users.name}}"
      expect: { text_contains: "{{users.greeting}}" }
"#,
    );
    let (out, dir) = run(&w, &scenario);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = read_json(&dir.join("summary.json"));
    // 12 iterations wanted, 5 rows: 5 turns, then each of the 3 VUs stops once.
    assert_eq!(counter(&s, "turns_sent"), 5);
    assert_eq!(counter(&s, "turns_ok"), 5);
    assert_eq!(causes(&s)["feeder_exhausted"], 3);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("has no rows left").count(),
        1,
        "logged once: {stderr}"
    );
}

#[test]
fn missing_column_is_a_usage_error_at_the_template() {
    let w = workdir_with_users();
    let scenario = w.file(
        "s.yaml",
        r#"name: feeders-bad-column
load: { vus: 1 }
steps:
  - send:
      text: "login as {{users.mail}}"
feeders:
  users: { file: data/users.csv }
"#,
    );
    let (out, _) = run(&w, &scenario);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let at = format!(
        "{}:5:13: feeder `users` has no column `mail`",
        scenario.display()
    );
    assert!(stderr.contains(&at), "{stderr}");
    assert!(
        stderr.contains("hint: did you mean `email`? columns in the header row of `data/users.csv`: name, email, greeting"),
        "{stderr}"
    );
}

#[test]
fn missing_file_is_a_usage_error_naming_the_file() {
    let w = workdir_with_users();
    let scenario = w.file(
        "s.yaml",
        r#"name: feeders-missing-file
load: { vus: 1 }
steps:
  - send: { text: "{{users.name}}" }
feeders:
  users:
    file: data/nobody.csv
"#,
    );
    for command in ["run", "validate"] {
        let out = run_finalping(&[command, scenario.to_str().expect("utf-8")], LIMIT);
        assert_eq!(out.status.code(), Some(3), "{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let at = format!(
            "{}:7:11: cannot read feeder file `data/nobody.csv`",
            scenario.display()
        );
        assert!(stderr.contains(&at), "{stderr}");
        assert!(stderr.contains("scenario file's folder"), "{stderr}");
    }
}

// ------------------------------------------------------------ library level

#[test]
fn fixture_files_load_relative_to_their_folder() {
    let dir = repo_path("tests/fixtures/scenarios/feeders");
    let s = scenario::load(&dir.join("valid.yaml")).expect("valid.yaml loads");
    let users = s.feeder_tables.iter().find(|t| t.name == "users");
    assert_eq!(
        users.map(|t| (t.mode, t.data.len(), t.used)),
        Some((FeederMode::Unique, 5, true))
    );
    for (file, pos) in [
        ("bad_column.yaml", (5, 13)),
        ("bad_feeder.yaml", (9, 13)),
        ("missing_file.yaml", (7, 11)),
        ("bad_mode.yaml", (6, 40)),
    ] {
        let e = scenario::load(&dir.join(file)).expect_err(file);
        assert_eq!(e.position(), Some(pos), "{file}: {e}");
    }
}

fn load_in(dir: &Path, yaml: &str) -> Result<scenario::Scenario, ScenarioError> {
    scenario::load_str_in(yaml, "s.yaml", dir)
}

#[test]
fn load_str_in_resolves_files_and_serialises_config_only() {
    let w = workdir_with_users();
    let s = load_in(
        w.dir.path(),
        r#"name: x
load: { vus: 1 }
steps: [{ send: { text: "{{ users.name }}" } }]
feeders:
  users: { file: data/users.csv, mode: random }
  unused: { file: data/users.csv }
"#,
    )
    .expect("loads");
    let tables: Vec<_> = s.feeder_tables.iter().collect();
    assert_eq!(tables.len(), 2);
    assert_eq!((tables[0].name.as_str(), tables[0].used), ("unused", false));
    assert_eq!((tables[1].name.as_str(), tables[1].used), ("users", true));
    assert_eq!(tables[1].mode, FeederMode::Random);
    assert_eq!(tables[1].data.len(), 5);
    assert_eq!(tables[1].data.columns, ["name", "email", "greeting"]);
    let json = serde_json::to_value(&s).expect("serialise");
    assert_eq!(
        json["feeders"],
        serde_json::json!({
            "unused": {"file": "data/users.csv", "mode": "sequential"},
            "users": {"file": "data/users.csv", "mode": "random"},
        })
    );
    assert!(!json.to_string().contains("Brian"), "no CSV data in {json}");
}

#[test]
fn feeder_load_errors_have_positions_and_hints() {
    let w = workdir_with_users();
    w.file("data/header_only.csv", "name,email\n");
    let cases: [(&str, (u64, u64), &str, &str); 6] = [
        (
            "name: x\nload: { vus: 1 }\nsteps: [{ send: { text: \"{{users.name}}\" } }]\n",
            (3, 25),
            "unknown feeder `users` in `{{users.name}}`",
            "no feeders are declared",
        ),
        (
            "name: x\nload: { vus: 1 }\nfeeders: { users: { file: data/header_only.csv } }\nsteps: [{ send: { text: hi } }]\n",
            (3, 27),
            "feeder file `data/header_only.csv` has a header row but no data rows",
            "add at least one row",
        ),
        (
            "name: x\nload: { vus: 1 }\nfeeders: { 1users: { file: data/users.csv } }\nsteps: [{ send: { text: hi } }]\n",
            (3, 12),
            "invalid feeder name `1users`",
            "starting with a letter",
        ),
        (
            "name: x\nload: { vus: 1 }\nfeeders: { users: { fil: data/users.csv } }\nsteps: [{ send: { text: hi } }]\n",
            (3, 21),
            "unknown field `fil`",
            "did you mean `file`?",
        ),
        (
            // An error earlier in the file wins over the feeder error.
            "name: x\nload: { vus: 0 }\nfeeders: { users: { file: nope.csv } }\nsteps: [{ send: { text: hi } }]\n",
            (2, 14),
            "`vus` must be a positive integer",
            "number of concurrent virtual users",
        ),
        (
            "name: x\ntarget: { url: \"http://h/{{users.name}}\" }\nload: { vus: 1 }\nfeeders: { users: { file: data/users.csv } }\nsteps: [{ send: { text: hi } }]\n",
            (2, 16),
            "uses a feeder, but this value is set once per run",
            "per-VU values",
        ),
    ];
    for (yaml, pos, message, hint) in cases {
        let e = load_in(w.dir.path(), yaml).expect_err(yaml);
        let shown = e.to_string();
        assert_eq!(e.position(), Some(pos), "{shown}");
        assert!(shown.contains(message), "{shown}");
        assert!(e.hint().contains(hint), "{shown}");
    }
}
