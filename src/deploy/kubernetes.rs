//! Kubernetes manifests for a segmented run (rendered, never applied):
//!
//! - a **ConfigMap** with the scenario file, its feeder CSV files (at the same
//!   relative paths) and the merge Job's wait script, mounted at `/scenario`;
//! - a **PersistentVolumeClaim** (ReadWriteMany by default), the shared results
//!   volume at `/results`: `/results/<run-id>/{barrier, segment-<i>, merged}`;
//! - an **Indexed Job** (`completionMode: Indexed`, N completions, all in
//!   parallel): pod `i` runs `finalping run … --segment $(JOB_COMPLETION_INDEX)/N
//!   --start-barrier …`; Kubernetes sets `JOB_COMPLETION_INDEX` and expands
//!   `$(VAR)` in `args`. No retries (`backoffLimitPerIndex: 0`): a retried
//!   segment would start after the others, and the target would have seen the
//!   traffic of both attempts while the report shows one; a failed segment
//!   makes the merged run invalid instead;
//! - a **merge Job**: an init container waits (bounded) until every segment
//!   folder has its `summary.json` (written last), then `finalping merge`
//!   writes `/results/<run-id>/merged`; its exit code is the run's verdict.
//!
//! Pods run as a non-root user with a read-only root file system; the
//! scenario's `${env:NAME}` secrets come from a Secret the user names
//! (`envFrom`), never from the ConfigMap. Segment pods carry Prometheus scrape
//! annotations for `--metrics-listen`.

use serde::Serialize;
use serde_json::{json, Value};
use std::time::Duration;

/// Where the ConfigMap is mounted (scenario, feeder files, wait script).
pub const SCENARIO_DIR: &str = "/scenario";
/// Where the results volume is mounted.
pub const RESULTS_DIR: &str = "/results";
/// The ConfigMap key (and file name) of the merge Job's wait script.
pub const WAIT_SCRIPT_KEY: &str = "wait-for-segments.sh";
/// The user id of the image's `finalping` user (see the Dockerfile).
pub const RUN_AS_USER: u32 = 10001;
/// Longest run id: the Job names `finalping-<run-id>-segments` must stay a
/// DNS label (63 characters) with room for the pod suffixes.
pub const MAX_RUN_ID: usize = 40;
/// How often the wait script looks at the results volume.
const WAIT_POLL_SECONDS: u32 = 5;
/// Time the merge itself may take after the wait (reading N folders).
const MERGE_BOUND: Duration = Duration::from_secs(15 * 60);

/// The merge Job's init container: waits until every segment folder has its
/// final `summary.json` (a run writes it last, when its folder is complete;
/// while it runs, the file may exist with status `incomplete`), at most
/// LIMIT seconds; then the merge runs on what is there, and a missing segment
/// makes the merged run invalid (exit 2) naming it.
pub const WAIT_SCRIPT: &str = r#"#!/bin/sh
# finalping: wait until N segment folders hold their final summary.json
# (written last, once the folder is complete), at most LIMIT seconds.
# Usage: wait-for-segments.sh RUN_DIR SEGMENTS LIMIT_SECONDS [POLL_SECONDS]
set -u
dir=$1
n=$2
limit=$3
poll=${4:-5}
start=$(date +%s)
while :; do
  missing=""
  i=0
  while [ "$i" -lt "$n" ]; do
    summary="$dir/segment-$i/summary.json"
    # A running segment's summary.json says "incomplete" until its final reports.
    if [ ! -f "$summary" ] || grep -q '"status": *"incomplete"' "$summary"; then
      missing="$missing $i"
    fi
    i=$((i + 1))
  done
  if [ -z "$missing" ]; then
    echo "all $n segments have written their reports"
    exit 0
  fi
  if [ $(($(date +%s) - start)) -ge "$limit" ]; then
    echo "after ${limit}s these segments have not finished their reports:$missing; merging anyway (the merged run will be invalid)"
    exit 0
  fi
  sleep "$poll"
done
"#;

/// Everything the manifests depend on (already validated by the caller).
#[derive(Debug, Clone)]
pub struct KubernetesRun {
    /// DNS label, at most [`MAX_RUN_ID`] characters (see [`check_run_id`]).
    pub run_id: String,
    pub namespace: Option<String>,
    pub segments: u32,
    pub image: String,
    /// ConfigMap key and file name of the scenario.
    pub scenario_key: String,
    /// Files of the ConfigMap besides the wait script: the scenario first.
    pub files: Vec<ConfigFile>,
    /// Secret whose keys become the pods' environment (`${env:NAME}`).
    pub secret: Option<String>,
    pub storage: String,
    pub storage_class: Option<String>,
    pub access_mode: AccessMode,
    /// CPU request of a segment pod (no CPU limit: throttling would show up
    /// as generator lag).
    pub cpu: String,
    /// Memory request and limit of a segment pod.
    pub memory: String,
    /// `--barrier-timeout` of each segment (the `Display` form of a duration).
    pub barrier_timeout: String,
    /// How long the segments may take, start to end (the Indexed Job's
    /// `activeDeadlineSeconds`); the merge waits this long plus a margin.
    pub deadline: Duration,
    /// Port of `--metrics-listen` and of the scrape annotations.
    pub metrics_port: u16,
    /// Pass `--i-own-this-capacity` to every segment.
    pub own_capacity: bool,
}

/// One ConfigMap entry: `key` is projected to `path` under `/scenario`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    pub key: String,
    pub path: String,
    pub text: String,
}

/// `accessModes` of the results volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AccessMode {
    /// Pods on any node share the volume (NFS, CephFS, EFS, Azure Files, …).
    ReadWriteMany,
    /// One node only: single-node clusters (kind, minikube, k3d).
    ReadWriteOnce,
}

impl AccessMode {
    fn as_str(self) -> &'static str {
        match self {
            AccessMode::ReadWriteMany => "ReadWriteMany",
            AccessMode::ReadWriteOnce => "ReadWriteOnce",
        }
    }
}

/// One rendered object, with the file name it gets under `--out DIR`.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub file_name: &'static str,
    pub object: Object,
}

/// A Kubernetes object in the usual key order.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Object {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec: Option<Value>,
}

impl KubernetesRun {
    fn name(&self, part: &str) -> String {
        format!("finalping-{}-{part}", self.run_id)
    }

    /// `/results/<run-id>`: the run's folder on the results volume.
    pub fn run_dir(&self) -> String {
        format!("{RESULTS_DIR}/{}", self.run_id)
    }

    /// The merge Job's name (its exit code is the verdict).
    pub fn merge_job_name(&self) -> String {
        self.name("merge")
    }

    /// The Indexed Job's name.
    pub fn segments_job_name(&self) -> String {
        self.name("segments")
    }

    /// The results volume claim's name.
    pub fn claim_name(&self) -> String {
        self.name("results")
    }

    fn metadata(&self, name: String, component: &str) -> Value {
        let mut m = json!({ "name": name, "labels": self.labels(component) });
        if let Some(ns) = &self.namespace {
            m["namespace"] = json!(ns);
        }
        m
    }

    fn labels(&self, component: &str) -> Value {
        json!({
            "app.kubernetes.io/name": "finalping",
            "app.kubernetes.io/instance": self.run_id,
            "app.kubernetes.io/component": component,
        })
    }

    /// The segment container's arguments (after `finalping`).
    pub fn segment_args(&self) -> Vec<String> {
        let dir = self.run_dir();
        let n = self.segments;
        let mut args: Vec<String> = [
            "run".to_string(),
            format!("{SCENARIO_DIR}/{}", self.scenario_key),
            "--segment".to_string(),
            format!("$(JOB_COMPLETION_INDEX)/{n}"),
            "--run-id".to_string(),
            self.run_id.clone(),
            "--start-barrier".to_string(),
            format!("{dir}/barrier"),
            "--barrier-timeout".to_string(),
            self.barrier_timeout.clone(),
            "--out".to_string(),
            format!("{dir}/segment-$(JOB_COMPLETION_INDEX)"),
            "--metrics-listen".to_string(),
            format!("0.0.0.0:{}", self.metrics_port),
            "--quiet".to_string(),
        ]
        .into();
        if self.own_capacity {
            args.push("--i-own-this-capacity".to_string());
        }
        args
    }

    /// The merge container's arguments (after `finalping`).
    pub fn merge_args(&self) -> Vec<String> {
        let dir = self.run_dir();
        let mut args = vec!["merge".to_string()];
        args.extend((0..self.segments).map(|i| format!("{dir}/segment-{i}")));
        args.extend(["--out".to_string(), format!("{dir}/merged")]);
        args
    }

    /// Seconds the merge Job's init container waits for the segments.
    pub fn wait_seconds(&self) -> u64 {
        // The segments' deadline, plus time for pods to be scheduled and for
        // segments stopped at the deadline to write their partial reports.
        self.deadline.as_secs() + 5 * 60
    }

    fn pod_security(&self) -> Value {
        json!({
            "runAsNonRoot": true,
            "runAsUser": RUN_AS_USER,
            "runAsGroup": RUN_AS_USER,
            "fsGroup": RUN_AS_USER,
            "seccompProfile": { "type": "RuntimeDefault" },
        })
    }

    fn container_security() -> Value {
        json!({
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "capabilities": { "drop": ["ALL"] },
        })
    }

    fn volumes(&self) -> Value {
        let mut items: Vec<Value> = self
            .files
            .iter()
            .map(|f| json!({ "key": f.key, "path": f.path }))
            .collect();
        items.push(json!({ "key": WAIT_SCRIPT_KEY, "path": WAIT_SCRIPT_KEY }));
        json!([
            { "name": "scenario", "configMap": { "name": self.name("scenario"), "items": items } },
            { "name": "results", "persistentVolumeClaim": { "claimName": self.claim_name() } },
        ])
    }

    fn mounts() -> Value {
        json!([
            { "name": "scenario", "mountPath": SCENARIO_DIR, "readOnly": true },
            { "name": "results", "mountPath": RESULTS_DIR },
        ])
    }

    fn env_from(&self) -> Option<Value> {
        self.secret
            .as_ref()
            .map(|s| json!([{ "secretRef": { "name": s } }]))
    }

    fn config_map(&self) -> Object {
        let mut data = serde_json::Map::new();
        for f in &self.files {
            data.insert(f.key.clone(), json!(f.text));
        }
        data.insert(WAIT_SCRIPT_KEY.to_string(), json!(WAIT_SCRIPT));
        Object {
            api_version: "v1",
            kind: "ConfigMap",
            metadata: self.metadata(self.name("scenario"), "scenario"),
            data: Some(Value::Object(data)),
            spec: None,
        }
    }

    fn claim(&self) -> Object {
        let mut spec = json!({
            "accessModes": [self.access_mode.as_str()],
            "resources": { "requests": { "storage": self.storage } },
        });
        if let Some(class) = &self.storage_class {
            spec["storageClassName"] = json!(class);
        }
        Object {
            api_version: "v1",
            kind: "PersistentVolumeClaim",
            metadata: self.metadata(self.claim_name(), "results"),
            data: None,
            spec: Some(spec),
        }
    }

    fn segments_job(&self) -> Object {
        let mut container = json!({
            "name": "finalping",
            "image": self.image,
            "command": ["finalping"],
            "args": self.segment_args(),
            "ports": [{ "name": "metrics", "containerPort": self.metrics_port }],
            "resources": {
                "requests": { "cpu": self.cpu, "memory": self.memory },
                "limits": { "memory": self.memory },
            },
            "securityContext": Self::container_security(),
            "volumeMounts": Self::mounts(),
        });
        if let Some(env_from) = self.env_from() {
            container["envFrom"] = env_from;
        }
        let spec = json!({
            "completionMode": "Indexed",
            "completions": self.segments,
            "parallelism": self.segments,
            "backoffLimitPerIndex": 0,
            "activeDeadlineSeconds": self.deadline.as_secs(),
            "template": {
                "metadata": {
                    "labels": self.labels("segment"),
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": self.metrics_port.to_string(),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": self.pod_security(),
                    "containers": [container],
                    "volumes": self.volumes(),
                },
            },
        });
        Object {
            api_version: "batch/v1",
            kind: "Job",
            metadata: self.metadata(self.segments_job_name(), "segment"),
            data: None,
            spec: Some(spec),
        }
    }

    fn merge_job(&self) -> Object {
        let wait = json!({
            "name": "wait-for-segments",
            "image": self.image,
            "command": [
                "sh",
                format!("{SCENARIO_DIR}/{WAIT_SCRIPT_KEY}"),
                self.run_dir(),
                self.segments.to_string(),
                self.wait_seconds().to_string(),
                WAIT_POLL_SECONDS.to_string(),
            ],
            "resources": { "requests": { "cpu": "10m", "memory": "16Mi" }, "limits": { "memory": "64Mi" } },
            "securityContext": Self::container_security(),
            "volumeMounts": Self::mounts(),
        });
        let merge = json!({
            "name": "merge",
            "image": self.image,
            "command": ["finalping"],
            "args": self.merge_args(),
            "resources": {
                "requests": { "cpu": self.cpu, "memory": self.memory },
                "limits": { "memory": self.memory },
            },
            "securityContext": Self::container_security(),
            "volumeMounts": Self::mounts(),
        });
        let spec = json!({
            "backoffLimit": 0,
            "activeDeadlineSeconds": self.wait_seconds() + MERGE_BOUND.as_secs(),
            "template": {
                "metadata": { "labels": self.labels("merge") },
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": self.pod_security(),
                    "initContainers": [wait],
                    "containers": [merge],
                    "volumes": self.volumes(),
                },
            },
        });
        Object {
            api_version: "batch/v1",
            kind: "Job",
            metadata: self.metadata(self.merge_job_name(), "merge"),
            data: None,
            spec: Some(spec),
        }
    }

    /// The four objects, in the order `kubectl apply` should create them.
    pub fn render(&self) -> Vec<Manifest> {
        vec![
            Manifest {
                file_name: "10-configmap.yaml",
                object: self.config_map(),
            },
            Manifest {
                file_name: "20-results-pvc.yaml",
                object: self.claim(),
            },
            Manifest {
                file_name: "30-segments-job.yaml",
                object: self.segments_job(),
            },
            Manifest {
                file_name: "40-merge-job.yaml",
                object: self.merge_job(),
            },
        ]
    }
}

/// One object as a YAML document.
pub fn to_yaml(object: &Object) -> Result<String, String> {
    serde_saphyr::to_string(object)
        .map_err(|e| format!("cannot write {} as YAML: {e}", object.kind))
}

/// All objects as one multi-document YAML stream (`---` between documents).
pub fn to_yaml_stream(manifests: &[Manifest]) -> Result<String, String> {
    let mut out = String::new();
    for m in manifests {
        out.push_str("---\n");
        out.push_str(&to_yaml(&m.object)?);
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

/// A DNS-1123 label (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`) of at most `max`
/// characters; the error says what is wrong with `value`.
pub fn check_label(what: &str, value: &str, max: usize) -> Result<(), String> {
    let ok_chars = value
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if value.is_empty()
        || value.len() > max
        || !ok_chars
        || value.starts_with('-')
        || value.ends_with('-')
    {
        return Err(format!(
            "{what} `{value}` is not a Kubernetes name: use at most {max} lower-case letters, digits and `-`, starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// A DNS-1123 subdomain (labels joined by `.`, at most 253 characters), as
/// Secret and StorageClass names are.
pub fn check_subdomain(what: &str, value: &str) -> Result<(), String> {
    if value.len() > 253 || value.split('.').any(|l| check_label(what, l, 63).is_err()) {
        return Err(format!(
            "{what} `{value}` is not a Kubernetes name: use lower-case letters, digits, `-` and `.` (at most 253 characters), each part starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// The run id of the manifests and of every segment (`--run-id`).
pub fn check_run_id(run_id: &str) -> Result<(), String> {
    check_label("--run-id", run_id, MAX_RUN_ID)
}

/// A Kubernetes resource quantity such as `500m`, `2`, `1.5`, `512Mi`, `1G`.
pub fn check_quantity(what: &str, value: &str) -> Result<(), String> {
    const SUFFIXES: [&str; 13] = [
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "m", "k", "M", "G", "T", "P", "E",
    ];
    let number = SUFFIXES
        .iter()
        .find_map(|s| value.strip_suffix(s))
        .unwrap_or(value);
    let mut parts = number.splitn(2, '.');
    let whole = parts.next().unwrap_or_default();
    let fraction = parts.next();
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    let valid = digits(whole) && fraction.is_none_or(digits);
    if !valid {
        return Err(format!(
            "{what} `{value}` is not a Kubernetes quantity: write e.g. `500m` or `2` (CPU), `512Mi` or `4Gi` (memory, storage)"
        ));
    }
    Ok(())
}

/// A default run id: `<scenario slug>-<UTC yyyymmdd-hhmmss>`, a DNS label.
pub fn default_run_id(scenario_name: &str, at: chrono::DateTime<chrono::Utc>) -> String {
    let mut slug = crate::scenario::name_slug(scenario_name, usize::MAX);
    slug.truncate(MAX_RUN_ID - 16);
    let slug = slug.trim_end_matches('-');
    let slug = if slug.is_empty() { "run" } else { slug };
    format!("{slug}-{}", at.format("%Y%m%d-%H%M%S"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> KubernetesRun {
        KubernetesRun {
            run_id: "demo-1".into(),
            namespace: Some("load".into()),
            segments: 3,
            image: "registry.example/finalping:1".into(),
            scenario_key: "s.yaml".into(),
            files: vec![ConfigFile {
                key: "s.yaml".into(),
                path: "s.yaml".into(),
                text: "name: s\n".into(),
            }],
            secret: Some("endpoint".into()),
            storage: "1Gi".into(),
            storage_class: None,
            access_mode: AccessMode::ReadWriteMany,
            cpu: "1".into(),
            memory: "1Gi".into(),
            barrier_timeout: "10m".into(),
            deadline: Duration::from_secs(1200),
            metrics_port: 9464,
            own_capacity: false,
        }
    }

    #[test]
    fn segment_args_carry_the_completion_index_and_the_shared_folders() {
        let args = run().segment_args().join(" ");
        assert_eq!(
            args,
            "run /scenario/s.yaml --segment $(JOB_COMPLETION_INDEX)/3 --run-id demo-1 \
             --start-barrier /results/demo-1/barrier --barrier-timeout 10m \
             --out /results/demo-1/segment-$(JOB_COMPLETION_INDEX) \
             --metrics-listen 0.0.0.0:9464 --quiet"
        );
        assert_eq!(
            run().merge_args().join(" "),
            "merge /results/demo-1/segment-0 /results/demo-1/segment-1 \
             /results/demo-1/segment-2 --out /results/demo-1/merged"
        );
    }

    #[test]
    fn names_quantities_and_run_ids_are_checked() {
        assert!(check_run_id("demo-1").is_ok());
        for bad in ["", "Demo", "-a", "a-", "a_b", &"a".repeat(41)] {
            assert!(check_run_id(bad).is_err(), "{bad}");
        }
        assert!(check_subdomain("--secret", "my.secret-1").is_ok());
        assert!(check_subdomain("--secret", "my..secret").is_err());
        for ok in ["500m", "2", "1.5", "512Mi", "4Gi", "1G"] {
            assert!(check_quantity("--cpu", ok).is_ok(), "{ok}");
        }
        for bad in ["", "1 Gi", "Gi", "1.", "1GB", "-1"] {
            assert!(check_quantity("--cpu", bad).is_err(), "{bad}");
        }
        let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let id = default_run_id("My Quick  start!", at);
        assert_eq!(id, "my-quick-start-20270115-080000");
        assert!(check_run_id(&id).is_ok());
        let long = default_run_id(&"x".repeat(100), at);
        assert!(check_run_id(&long).is_ok(), "{long}");
        assert_eq!(default_run_id("!!!", at), "run-20270115-080000");
    }
}
