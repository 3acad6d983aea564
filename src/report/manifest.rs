//! `manifest.json`: how the run was set up — tool version, scenario hash, seed,
//! host, protocol and load settings — so two runs can be compared knowingly.
//! Secrets are redacted before they get here (see `secret`).

use super::{Exporter, RunReport};
use crate::emulator_config::EmulatorConfig;
use crate::engine::Plan;
use crate::secret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub finalping_version: String,
    /// `--i-own-this-capacity` was given (shared-SaaS guard overridden).
    #[serde(default)]
    pub capacity_acknowledged: bool,
    /// `--insecure` was given: TLS certificates were not verified.
    #[serde(default)]
    pub tls_insecure: bool,
    pub scenario_name: String,
    pub scenario_file: String,
    /// SHA-256 of the scenario file's bytes.
    pub scenario_sha256: String,
    pub seed: u64,
    pub host: String,
    pub os: String,
    pub cpus: usize,
    /// The command line, with secrets scrubbed.
    pub command_line: String,
    pub target: TargetManifest,
    pub load: LoadManifest,
    /// Runtime WebSocket settings when the scenario updates context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<RuntimeManifest>,
    /// Emulator settings when the run used the embedded emulator (secrets redacted).
    pub emulator: Option<EmulatorConfig>,
    /// `--segment i/N`: this run is one execution segment of a larger run
    /// (absent for a whole run). `finalping merge` reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<SegmentManifest>,
    /// `finalping merge`: this folder is the merge of segment runs (absent
    /// for a run made by one process).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge: Option<MergeManifest>,
}

/// What a run's manifest records besides its plan.
pub struct RunOrigin<'a> {
    pub scenario_file: &'a Path,
    /// The scenario file's bytes (hashed).
    pub scenario_bytes: &'a [u8],
    /// `--i-own-this-capacity` was given.
    pub capacity_acknowledged: bool,
    /// The target as shown: the embedded emulator's URL or the scrubbed URL.
    pub shown_url: &'a str,
    /// The embedded emulator's settings, when the run used it (redacted here).
    pub emulator: Option<&'a EmulatorConfig>,
}

impl Manifest {
    /// The manifest of a run of `plan`; `secrets` (the URL token first) are
    /// scrubbed from the command line, and the URL token is kept redacted.
    pub fn of_run(plan: &Plan, origin: &RunOrigin<'_>, secrets: &[&str]) -> Manifest {
        let url_token = secrets.first().copied().unwrap_or_default();
        let s = &plan.scenario;
        let command_line = std::env::args().collect::<Vec<_>>().join(" ");
        Manifest {
            finalping_version: env!("CARGO_PKG_VERSION").to_string(),
            capacity_acknowledged: origin.capacity_acknowledged,
            tls_insecure: crate::tls::insecure(),
            scenario_name: s.name.clone(),
            scenario_file: origin.scenario_file.display().to_string(),
            scenario_sha256: format!("{:x}", Sha256::digest(origin.scenario_bytes)),
            seed: plan.seed,
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            command_line: secret::scrub_text(&command_line, secrets),
            target: TargetManifest {
                kind: "socketio".to_string(),
                url: origin.shown_url.to_string(),
                embedded_emulator: origin.emulator.is_some(),
                eio: u8::from(s.target.eio),
                emit_with_ack: s.target.emit_with_ack,
                test_mode: s.target.test_mode,
                inner_handshake: s.target.inner_handshake,
                channel: s.target.channel.clone(),
                url_token: secret::redact(url_token),
                connect_timeout: s.target.connect_timeout.to_string(),
            },
            load: LoadManifest {
                model: if s.load.executor().is_open() {
                    "open (arrival rate)".to_string()
                } else {
                    "closed (VUs)".to_string()
                },
                scenarios: plan
                    .groups
                    .iter()
                    .map(|g| format!("{}: {} ({} VUs)", g.name, g.load.executor().name(), g.vus))
                    .collect(),
                executor: s.load.executor().name().to_string(),
                stages: s
                    .load
                    .stages
                    .iter()
                    .map(|st| format!("{}→{}", st.duration, st.target))
                    .collect(),
                rate: s.load.rate,
                arrival: format!("{:?}", s.load.arrival).to_lowercase(),
                vus: plan.vus(),
                duration: s.load.duration.map(|d| d.to_string()),
                iterations: s.load.iterations,
                ramp_up: s.load.ramp_up.to_string(),
                grace: s.load.grace.to_string(),
            },
            runtime: None,
            emulator: origin.emulator.map(EmulatorConfig::redacted),
            segment: None,
            merge: None,
        }
    }
}

/// Which segment runs a merged run folder was made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergeManifest {
    /// `N` of the segments' `--segment i/N`.
    pub count: u32,
    /// The segments merged, by index.
    pub segments: Vec<MergedSegment>,
}

/// One segment run of a merge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergedSegment {
    /// 0-based segment number (`i` of `--segment i/N`).
    pub index: u32,
    /// The segment's run folder, as given to `finalping merge`.
    pub dir: String,
    pub run_id: String,
    pub host: String,
    pub seed: u64,
}

/// Which execution segment a run folder holds and when it started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentManifest {
    /// 0-based segment number (`i` of `--segment i/N`).
    pub index: u32,
    /// Number of segments the scenario was split into (`N`).
    pub count: u32,
    /// The common start instant all segments aimed at (RFC 3339 UTC), if aligned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<String>,
    /// How late this segment started its schedule after `start_at`, in ms (0 when not aligned).
    #[serde(default)]
    pub start_late_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetManifest {
    pub kind: String,
    /// Endpoint URL (scrubbed), or `embedded emulator at …`.
    pub url: String,
    pub embedded_emulator: bool,
    pub eio: u8,
    pub emit_with_ack: bool,
    pub test_mode: bool,
    pub inner_handshake: bool,
    pub channel: String,
    /// Redacted: never the whole token.
    pub url_token: String,
    pub connect_timeout: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadManifest {
    pub model: String,
    pub executor: String,
    /// Each scenario group with its executor and VUs.
    pub scenarios: Vec<String>,
    /// Ramping stages as `duration→target`.
    pub stages: Vec<String>,
    /// Constant arrival rate, conversations per second.
    pub rate: Option<f64>,
    pub arrival: String,
    pub vus: u32,
    pub duration: Option<String>,
    pub iterations: Option<u64>,
    pub ramp_up: String,
    pub grace: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuntimeManifest {
    pub url: String,
    pub codec: String,
    pub heartbeat: String,
    pub token_url: String,
    pub client_id: String,
    /// Redacted.
    pub client_secret: String,
    pub validate: bool,
    pub max_conflict_retries: u32,
    pub reconnect_max_attempts: u32,
    pub reconnect_backoff: String,
    /// The webhook URL (redacted), if audit records are POSTed.
    pub webhook: Option<String>,
}

pub struct ManifestJson;

impl Exporter for ManifestJson {
    fn file_name(&self) -> &'static str {
        "manifest.json"
    }

    fn write(&self, report: &RunReport, out: &mut dyn Write) -> std::io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, &report.manifest)?;
        writeln!(out)
    }
}
