//! The command line (clap derive): `run`, `serve`, `validate`, `compare`, `report`,
//! `merge`, `deploy`. Only flag definitions live here; `commands` carries them out.
//! Flags override YAML.

use crate::duration::HumanDuration;
use crate::emulator_config::Delay;
pub use crate::report::OutputFormat;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

const EXIT_CODES: &str = "\
Exit codes:
  0  passed: every turn and connect succeeded and every threshold held
  1  failed: a threshold was breached, or turns/updates/connects failed (unless an
     errors.* threshold allows them); compare: a metric got worse
  2  invalid: nothing was measured, the load generator was saturated, a
     thresholded metric had zero samples, or a threshold names an unknown
     metric or tag; compare: an input run is invalid or nothing could be judged
  3  usage or configuration error (bad YAML or threshold, bad flag, missing env var)
  4  internal error
  130 interrupted by Ctrl-C / SIGTERM (partial reports are written)";

/// Load-test and benchmark conversational endpoints (Socket.IO Endpoint).
#[derive(Debug, Parser)]
#[command(name = "finalping", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// More log detail on stderr: `-v` info, `-vv` debug (each failed
    /// connect with its HTTP status), `-vvv` trace. `RUST_LOG` overrides.
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less output: no progress lines (run, sweep, capacity), no final
    /// table (merge). Warnings are still logged.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
    /// Log lines as plain text (default; no colour unless stderr is a
    /// terminal) or one JSON object per line.
    #[arg(long, value_enum, global = true, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where a run goes and what it changes, shared by `run`, `sweep` and
/// `capacity` (each passes them on to the runs it starts).
#[derive(Debug, Clone, Default, Args)]
pub struct TargetArgs {
    /// Endpoint URL (overrides target.url), e.g. `https://host/<URLToken>`
    /// or `http://127.0.0.1:8080`; a trailing URL token is taken as the
    /// token when the scenario sets none.
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// The Endpoint's URL token (overrides target.url_token; secret: never
    /// printed). Also read from FINALPING_URL_TOKEN.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "FINALPING_URL_TOKEN",
        hide_env_values = true
    )]
    pub url_token: Option<String>,
    /// Change a scenario setting by its path, e.g. `--set runtime.codec=json`
    /// or `--set load.vus=20` (repeatable; values are YAML scalars).
    #[arg(long = "set", value_name = "PATH=VALUE", value_parser = parse_setting)]
    pub settings: Vec<(String, String)>,
    /// Seed for think-time jitter and other draws (overrides the scenario's seed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Accept any TLS certificate (self-signed test deployments). Off by
    /// default; a warning is printed and manifest.json records it.
    #[arg(long)]
    pub insecure: bool,
}

impl TargetArgs {
    /// The flags for a child `finalping run` (the URL token goes through
    /// the environment, see [`TargetArgs::child_env`], never the command line).
    pub fn child_args(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(t) = &self.target {
            v.extend(["--target".to_string(), t.clone()]);
        }
        if let Some(seed) = self.seed {
            v.extend(["--seed".to_string(), seed.to_string()]);
        }
        for (k, val) in &self.settings {
            v.extend(["--set".to_string(), format!("{k}={val}")]);
        }
        if self.insecure {
            v.push("--insecure".to_string());
        }
        v
    }

    /// Environment for a child `finalping run`: the URL token, if given.
    pub fn child_env(&self) -> Option<(&'static str, &str)> {
        self.url_token
            .as_deref()
            .map(|t| ("FINALPING_URL_TOKEN", t))
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario (against the embedded emulator unless target.url / --target is set).
    #[command(after_help = EXIT_CODES)]
    Run(RunArgs),
    /// Serve the emulator (Socket.IO Endpoint, EIO3 + EIO4) until Ctrl-C.
    Serve(ServeArgs),
    /// Run a scenario once per cell of a settings matrix, interleaved in rounds.
    Sweep(SweepArgs),
    /// Step the load up until an SLO breaks (or the generator saturates), then refine.
    Capacity(CapacityArgs),
    /// Check a scenario file without running it (exit 3 listing every problem found).
    Validate(ValidateArgs),
    /// Compare a run with one or more baseline runs (report folders): per
    /// metric and percentile the change with a bootstrap confidence interval
    /// and a verdict better / same / worse. Exit 1 on any `worse`.
    #[command(after_help = EXIT_CODES)]
    Compare(CompareArgs),
    /// Regenerate summary.md, percentiles.csv, manifest.json and junit.xml of
    /// a finished run from its summary.json; for a run that never finished
    /// (killed), rebuild its summary and report.html from timeseries.csv and
    /// the .hlog files, marked incomplete.
    Report(ReportArgs),
    /// Merge the run folders of the segments of one run (`run --segment i/N`)
    /// into one run folder with every report: histograms added exactly,
    /// counters summed, thresholds judged on the merged data.
    #[command(after_help = EXIT_CODES)]
    Merge(MergeArgs),
    /// Render what an engine needs to run a scenario as N segments and merge
    /// them (nothing is applied).
    #[command(subcommand)]
    Deploy(DeployTarget),
    /// Print a shell completion script, e.g. `finalping completions bash >
    /// /etc/bash_completion.d/finalping` (bash, zsh, fish, powershell, elvish).
    Completions(CompletionsArgs),
    /// Print the JSON Schema (Draft 2020-12) of scenario files, for editors
    /// (`# yaml-language-server: $schema=…`) and CI checks.
    Schema,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Engines `finalping deploy` renders for.
#[derive(Debug, Subcommand)]
pub enum DeployTarget {
    /// Kubernetes manifests: a ConfigMap with the scenario, a results
    /// PersistentVolumeClaim, an Indexed Job with one pod per segment and a
    /// merge Job whose exit code is the run's verdict. Apply them with
    /// `kubectl apply -f`.
    Kubernetes(KubernetesArgs),
}

#[derive(Debug, Args)]
pub struct KubernetesArgs {
    /// Scenario YAML file (shipped in the ConfigMap with its feeder files).
    pub scenario: PathBuf,
    /// Segments: pods of the Indexed Job, all running at once.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub segments: u32,
    /// Container image with `finalping` on the PATH (see the Dockerfile).
    #[arg(long)]
    pub image: String,
    /// Namespace of every object (default: kubectl's current namespace).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Run id: names the objects and the folder on the results volume
    /// (default: <scenario>-<UTC time>).
    #[arg(long)]
    pub run_id: Option<String>,
    /// Write one file per object into this folder (default: one YAML stream on stdout).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Secret whose keys become environment variables of the segment pods:
    /// required when the scenario reads `${env:NAME}` (one key per NAME).
    #[arg(long)]
    pub secret: Option<String>,
    /// StorageClass of the results volume (default: the cluster's default).
    #[arg(long)]
    pub storage_class: Option<String>,
    /// Size of the results volume.
    #[arg(long, default_value = "1Gi")]
    pub storage: String,
    /// Access mode of the results volume: `read-write-once` only works when
    /// every pod lands on one node (kind, minikube).
    #[arg(long, value_enum, default_value_t = crate::deploy::kubernetes::AccessMode::ReadWriteMany)]
    pub access_mode: crate::deploy::kubernetes::AccessMode,
    /// CPU request of each segment pod (no CPU limit is set: throttling
    /// would show up as generator lag).
    #[arg(long, default_value = "1")]
    pub cpu: String,
    /// Memory request and limit of each segment pod.
    #[arg(long, default_value = "1Gi")]
    pub memory: String,
    /// How long a segment waits at the start barrier for the others.
    #[arg(long, default_value = "10m")]
    pub barrier_timeout: HumanDuration,
    /// How long the segments may take, start to end, before Kubernetes stops
    /// them (default: barrier timeout + the scenario's planned duration + 10m;
    /// iteration-bound scenarios: + 1h).
    #[arg(long)]
    pub deadline: Option<HumanDuration>,
    /// Port of the segments' Prometheus endpoint (`--metrics-listen`) and of
    /// their scrape annotations.
    #[arg(long, default_value_t = 9464)]
    pub metrics_port: u16,
    /// As for `run` (and passed on to every segment): allow a load above
    /// the vendor's shared-SaaS per-IP limits.
    #[arg(long = "i-own-this-capacity")]
    pub own_capacity: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario YAML file.
    pub scenario: PathBuf,
    /// Number of virtual users (overrides load.vus).
    #[arg(long)]
    pub vus: Option<u32>,
    /// Run time, e.g. `30s`, `2m` (overrides load.duration).
    #[arg(long)]
    pub duration: Option<HumanDuration>,
    /// Iterations per VU (overrides load.iterations).
    #[arg(long)]
    pub iterations: Option<u64>,
    /// Report folder (default: reports/<run-id>); must be empty or new.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Clear a non-empty --out folder first (without it such a folder is refused).
    #[arg(long)]
    pub overwrite: bool,
    #[command(flatten)]
    pub common: TargetArgs,
    /// No live progress; only the final table (set by the global `-q`).
    #[arg(skip)]
    pub quiet: bool,
    /// Print summary.json on stdout (instead of the console table); the
    /// report files are written as usual.
    #[arg(long)]
    pub json: bool,
    /// What a saturated load generator means: `strict` marks the run invalid
    /// (exit 2); `warn` reports it loudly but keeps the status.
    #[arg(long, value_enum, default_value_t = SelfCheckMode::Strict)]
    pub self_check: SelfCheckMode,
    /// Allow a load above the vendor's shared-SaaS per-IP limits: you state
    /// that you own the capacity of that deployment (printed in the manifest).
    #[arg(long = "i-own-this-capacity")]
    pub own_capacity: bool,
    /// Report files to write besides summary.json, manifest.json and
    /// histograms.json (always written: compare, report and merge read
    /// them), comma-separated; default all.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub output_format: Vec<OutputFormat>,
    /// Run only execution segment `i` of `N` (0-based, e.g. `0/3`) so that
    /// N processes or pods together run the scenario once: VUs, arrivals and
    /// feeder rows are split by a stride. Give all segments the same --run-id.
    #[arg(long, value_name = "i/N")]
    pub segment: Option<crate::engine::Segment>,
    /// The run's id (letters, digits, `.`, `_`, `-`; default: generated from
    /// the scenario name and the time). Shared by the segments of one run;
    /// without --seed it also seeds the run's random draws.
    #[arg(long, value_name = "ID", value_parser = parse_run_id)]
    pub run_id: Option<String>,
    /// Start the schedule at this wall-clock time (RFC 3339, e.g.
    /// `2026-12-07T15:30:00Z`), waiting until then. A start more than 1 s late
    /// makes the run invalid.
    #[arg(long, value_name = "TIME", value_parser = parse_start_at, conflicts_with = "start_barrier")]
    pub start_at: Option<chrono::DateTime<chrono::Utc>>,
    /// With --segment: check in to this shared folder (a ready file per
    /// segment), wait until all N segments have, then start together.
    #[arg(long, value_name = "DIR", requires = "segment")]
    pub start_barrier: Option<PathBuf>,
    /// How long --start-barrier waits for the other segments.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "10m",
        requires = "start_barrier"
    )]
    pub barrier_timeout: HumanDuration,
    /// Run the scenario as N segment processes of finalping on this machine
    /// (each with its own file limit), started together at a barrier, shown
    /// as one progress line; their reports go into the run folder.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024),
          conflicts_with_all = ["segment", "start_at", "start_barrier"])]
    pub workers: Option<u32>,
    /// Progress as one JSON line per interval on stderr (what `--workers` reads from its segments).
    #[arg(long, hide = true)]
    pub progress_json: bool,
    /// Serve live metrics at http://ADDR/metrics (Prometheus/OpenMetrics text)
    /// while the run lasts: a port (`9464` = 127.0.0.1:9464) or an explicit
    /// `IP:PORT` (`0.0.0.0:9464` to be scraped from other hosts). Overrides
    /// `metrics.listen`.
    #[arg(long, value_name = "ADDR", value_parser = crate::export::parse_listen)]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// How long /metrics stays up after the run so the last scrape sees the
    /// final values (default 15s; Ctrl-C ends it). Overrides `metrics.linger`.
    #[arg(long, value_name = "DURATION")]
    pub metrics_linger: Option<HumanDuration>,
    /// Push the live metrics to this Prometheus remote-write URL once per
    /// interval (e.g. http://127.0.0.1:9090/api/v1/write). Overrides
    /// `metrics.remote_write`.
    #[arg(long, value_name = "URL")]
    pub prometheus_remote_write: Option<String>,
}

/// `--run-id`: a safe folder name.
pub fn parse_run_id(s: &str) -> Result<String, String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if s.is_empty() || s.len() > 128 {
        return Err("a run id has 1 to 128 characters".to_string());
    }
    if !s.chars().all(ok_char) {
        return Err(format!(
            "`{s}` is not a safe folder name: use only letters, digits, `.`, `_` and `-` (e.g. `checkout-2026-12-07`)"
        ));
    }
    if s.starts_with(['.', '-']) {
        return Err(format!("`{s}` must start with a letter, a digit or `_`"));
    }
    Ok(s.to_string())
}

/// `--start-at`: an RFC 3339 time with a zone (`Z` or `+01:00`).
fn parse_start_at(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| {
            format!("`{s}` is not an RFC 3339 time ({e}); write e.g. `2026-12-07T15:30:00Z` or `2026-12-07T16:30:00+01:00`")
        })
}

/// How the generator self-check affects the run's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SelfCheckMode {
    Strict,
    Warn,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to bind (loopback by default).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port (0 = pick a free one; the URL is printed on start).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Emulator settings file (YAML, same keys as a scenario's `emulator:` block).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Accept only Engine.IO 3 clients.
    #[arg(long, conflicts_with = "eio4_only")]
    pub eio3_only: bool,
    /// Accept only Engine.IO 4 clients.
    #[arg(long)]
    pub eio4_only: bool,
    /// Reply delay before the first output: `50ms`, `uniform(20ms, 80ms)`,
    /// `normal(50ms, 10ms)`, `lognormal(50ms, 0.5)`, `bimodal(0.9, 30ms, 300ms)`.
    #[arg(long)]
    pub delay: Option<Delay>,
    /// Delay between consecutive outputs of a turn (same forms as --delay).
    #[arg(long)]
    pub output_gap: Option<Delay>,
    /// Outputs per turn.
    #[arg(long)]
    pub outputs: Option<u32>,
    /// Do not send typingStatus events.
    #[arg(long)]
    pub no_typing: bool,
    /// Engine.IO ping interval announced to clients.
    #[arg(long)]
    pub ping_interval: Option<HumanDuration>,
    /// Engine.IO ping timeout announced to clients.
    #[arg(long)]
    pub ping_timeout: Option<HumanDuration>,
    /// Also serve `<prefix>/socket.io/`, e.g. `/cognigy`.
    #[arg(long)]
    pub path_prefix: Option<String>,
    /// Accept only this URL token (repeatable; default: any token).
    #[arg(long = "url-token")]
    pub url_tokens: Vec<String>,
    /// Seed for the delay distributions (worker k of --workers uses seed + k).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Emulator processes sharing the port (SO_REUSEPORT: the kernel spreads
    /// new connections over them), supervised by this one, which prints one
    /// banner, forwards Ctrl-C/SIGTERM and sums their counters at the end.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub workers: u32,
    /// Internal: serve as worker K of `serve --workers` (settings from the parent).
    #[arg(long, hide = true, conflicts_with = "workers")]
    pub worker_index: Option<u32>,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Scenario YAML file.
    pub scenario: PathBuf,
    /// As for `run`: allow a load above the shared-SaaS per-IP limits.
    #[arg(long = "i-own-this-capacity")]
    pub own_capacity: bool,
    /// Also show what execution segment `i` of `N` would run (see `run --segment`).
    #[arg(long, value_name = "i/N")]
    pub segment: Option<crate::engine::Segment>,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// `BASELINE CURRENT`, or just `CURRENT` with `--baseline`: report
    /// folders (or their summary.json) written by `finalping run`.
    #[arg(num_args = 1..=2, value_name = "RUN")]
    pub runs: Vec<PathBuf>,
    /// A baseline run folder (repeatable): baselines are pooled, and their
    /// run-to-run differences widen the confidence band.
    #[arg(long = "baseline", value_name = "DIR")]
    pub baselines: Vec<PathBuf>,
    /// Allowed slowdown: `5%` for every metric, or `final_ping=10%` for one
    /// (repeatable).
    #[arg(
        long = "max-regression",
        value_name = "[METRIC=]PCT",
        default_value = "5%"
    )]
    pub max_regression: Vec<String>,
    /// Percentiles to compare, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "50,90,99")]
    pub percentiles: Vec<f64>,
    /// Compare only this metric (repeatable; default: every metric both sides have).
    #[arg(long = "metric")]
    pub metrics: Vec<String>,
    /// Bootstrap resamples.
    #[arg(long, default_value_t = 1000)]
    pub resamples: u32,
    /// Confidence level of the intervals, in percent.
    #[arg(long, default_value_t = 95.0)]
    pub confidence: f64,
    /// Seed of the bootstrap (the same inputs and seed give the same result).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also write the comparison as Markdown to this file.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Also write the comparison as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Also write JUnit XML (one test case per metric) to this file.
    #[arg(long)]
    pub junit: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A run's report folder (with summary.json).
    pub dir: PathBuf,
    /// Write the regenerated files here instead of into DIR.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The run folders of the segments (each written by `finalping run --segment i/N`).
    #[arg(required = true, value_name = "SEGMENT_DIR")]
    pub dirs: Vec<PathBuf>,
    /// Folder for the merged run's reports.
    #[arg(long)]
    pub out: PathBuf,
    /// What a saturated segment means: `strict` makes the merged run invalid
    /// (exit 2); `warn` reports it but keeps the status.
    #[arg(long, value_enum, default_value_t = SelfCheckMode::Strict)]
    pub self_check: SelfCheckMode,
    /// A segment that started its load later than this after the others
    /// makes the merged run invalid.
    #[arg(long, default_value = "1s")]
    pub start_tolerance: HumanDuration,
    /// No final table (set by the global `-q`).
    #[arg(skip)]
    pub quiet: bool,
    /// Report files to write besides summary.json, manifest.json and
    /// histograms.json (always written), comma-separated; default all.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub output_format: Vec<OutputFormat>,
}

/// `PATH=VALUE` of `--set`.
fn parse_setting(s: &str) -> Result<(String, String), String> {
    const MAX_DEPTH: usize = 16;
    match s.split_once('=') {
        Some((k, _)) if k.split('.').count() > MAX_DEPTH => Err(format!(
            "`{}…` is nested deeper than {MAX_DEPTH} levels: no scenario setting is",
            k.chars().take(40).collect::<String>()
        )),
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(format!("`{s}` is not PATH=VALUE (e.g. runtime.codec=json)")),
    }
}

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Scenario YAML file.
    pub scenario: PathBuf,
    /// Matrix YAML: setting paths to lists of values, e.g.
    /// `runtime.codec: [msgpack, json]` and `runtime.heartbeat: [1s, 25s]`.
    #[arg(long)]
    pub matrix: PathBuf,
    /// Rounds: every cell runs once per round, cells interleaved (A B A B …).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeats: u32,
    /// Refuse a matrix with more cells than this (the product of its lists).
    #[arg(long, default_value_t = 256)]
    pub max_cells: usize,
    /// Sweep folder (default: reports/sweep-<time>); one sub-folder per cell and round.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Clear a non-empty --out folder first (without it such a folder is refused).
    #[arg(long)]
    pub overwrite: bool,
    #[command(flatten)]
    pub common: TargetArgs,
    /// No progress lines (set by the global `-q`).
    #[arg(skip)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct CapacityArgs {
    /// Scenario YAML file.
    pub scenario: PathBuf,
    /// Service-level objective in threshold syntax, e.g. "final_ping.p99 < 800ms" (repeatable).
    #[arg(long = "slo", required = true)]
    pub slos: Vec<String>,
    /// First step: VUs (closed executors) or conversations/s (arrival-rate executors).
    #[arg(long, default_value_t = 10.0)]
    pub start: f64,
    /// Added per step.
    #[arg(long, default_value_t = 10.0)]
    pub step: f64,
    /// Last step tried.
    #[arg(long, default_value_t = 1000.0)]
    pub max: f64,
    /// How long each step runs.
    #[arg(long, default_value = "30s")]
    pub hold: HumanDuration,
    /// Bisection runs between the last good and the first bad step.
    #[arg(long, default_value_t = 2)]
    pub refine: u32,
    /// As for `run`: `strict` stops at a saturated generator ("at least N").
    #[arg(long, value_enum, default_value_t = SelfCheckMode::Strict)]
    pub self_check: SelfCheckMode,
    /// Capacity folder (default: reports/capacity-<time>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Clear a non-empty --out folder first (without it such a folder is refused).
    #[arg(long)]
    pub overwrite: bool,
    #[command(flatten)]
    pub common: TargetArgs,
    /// No progress lines (set by the global `-q`).
    #[arg(skip)]
    pub quiet: bool,
}
