//! `finalping deploy kubernetes`: checks the flags and the scenario (feeder
//! files included), collects the files the ConfigMap ships, renders the
//! manifests with `deploy::kubernetes` and writes them to stdout or one file
//! per object; the next steps go to stderr.

use crate::cli::{DeployTarget, KubernetesArgs};
use crate::deploy::kubernetes::{self as k8s, ConfigFile, KubernetesRun};
use crate::error::{exit, CliError};
use crate::scenario::{self, Load, Scenario};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path};
use std::time::Duration;

/// What a ConfigMap may hold (the API server refuses objects over 1 MiB;
/// keep room for the metadata).
const CONFIG_MAP_LIMIT: usize = 1_000_000;
/// Stand-in for `${env:NAME}` values that are not set here: rendering only
/// checks the scenario, the pods read the real values from the Secret.
const ENV_PLACEHOLDER: &str = "finalping-deploy-placeholder";
/// Added to the planned duration in the default `--deadline`.
const DEADLINE_MARGIN: Duration = Duration::from_secs(10 * 60);
/// Assumed for iteration-bound scenarios (no planned duration).
const ITERATIONS_ALLOWANCE: Duration = Duration::from_secs(60 * 60);

pub fn deploy(target: DeployTarget) -> Result<i32, CliError> {
    match target {
        DeployTarget::Kubernetes(args) => kubernetes(&args),
    }
}

fn kubernetes(args: &KubernetesArgs) -> Result<i32, CliError> {
    let text = std::fs::read_to_string(&args.scenario).map_err(|e| {
        CliError::usage(format!(
            "cannot read the scenario {}: {e}",
            args.scenario.display()
        ))
    })?;
    let env_names = env_references(&text);
    if !env_names.is_empty() && args.secret.is_none() {
        return Err(CliError::usage(format!(
            "the scenario reads {}: pass --secret NAME, a Kubernetes Secret with one key per variable \
             (e.g. kubectl create secret generic finalping-env --from-literal={}=…); \
             secrets are never rendered into the manifests",
            list_env(&env_names),
            env_names.first().map(String::as_str).unwrap_or("NAME")
        )));
    }
    let scenario = load_scenario(&args.scenario, &env_names)?;
    // What every pod would refuse at its start, refused here instead.
    super::saas::check(&scenario, args.own_capacity)?;
    check_split(&scenario, args.segments)?;
    let run = build_run(args, &scenario, &text)?;
    write_manifests(&run.render(), args.out.as_deref())?;
    let in_clear = secrets_in_clear(&scenario);
    if !in_clear.is_empty() {
        eprintln!(
            "warning: the scenario holds {} in clear, so the ConfigMap does too: \
             write `${{env:NAME}}` instead and put the value in the --secret",
            in_clear.join(", ")
        );
    }
    if scenario.target.url.is_none() {
        eprintln!(
            "note: the scenario has no target.url: every segment pod runs its own embedded emulator \
             (a test of the setup, not of an endpoint)"
        );
    }
    print_next_steps(args, &run, &env_names);
    Ok(exit::PASS)
}

/// `${env:NAME}` references in the scenario's string values (comments do
/// not count). Unparsable YAML has none here: loading reports it.
fn env_references(text: &str) -> BTreeSet<String> {
    fn walk(v: &serde_json::Value, names: &mut BTreeSet<String>) {
        match v {
            serde_json::Value::String(s) => {
                names.extend(scenario::template::env_references(s));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, names)),
            serde_json::Value::Object(map) => map.values().for_each(|i| walk(i, names)),
            _ => {}
        }
    }
    let mut names = BTreeSet::new();
    let options = crate::protocol::runtime::normalize::yaml_options();
    if let Ok(doc) = serde_saphyr::from_str_with_options::<serde_json::Value>(text, options) {
        walk(&doc, &mut names);
    }
    names
}

/// Every one of the `n` segments gets work (as `run --segment` checks).
fn check_split(scenario: &Scenario, n: u32) -> Result<(), CliError> {
    let (groups, _) = crate::engine::groups_of(scenario);
    for segment in (0..n).filter_map(|i| crate::engine::Segment::new(i, n)) {
        crate::engine::segment::check(&groups, segment)
            .map_err(|e| CliError::usage(format!("--segments {n}: {e} ({})", e.hint())))?;
    }
    Ok(())
}

/// One YAML stream on stdout, or one file per object in `out`.
fn write_manifests(manifests: &[k8s::Manifest], out: Option<&Path>) -> Result<(), CliError> {
    let Some(dir) = out else {
        let stream = k8s::to_yaml_stream(manifests).map_err(CliError::internal)?;
        print!("{stream}");
        return Ok(());
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::usage(format!("cannot create --out {}: {e}", dir.display())))?;
    for m in manifests {
        let yaml = k8s::to_yaml(&m.object).map_err(CliError::internal)?;
        let path = dir.join(m.file_name);
        std::fs::write(&path, yaml)
            .map_err(|e| CliError::usage(format!("cannot write {}: {e}", path.display())))?;
    }
    eprintln!("wrote {} manifests to {}", manifests.len(), dir.display());
    Ok(())
}

/// Secret fields the scenario writes out instead of reading `${env:NAME}`.
fn secrets_in_clear(s: &Scenario) -> Vec<&'static str> {
    let literal = |t: &scenario::Template| !t.source().is_empty() && !t.source().contains("${env:");
    let mut found = Vec::new();
    // Without target.url the token only reaches the pod's own emulator.
    if s.target.url.is_some() && literal(&s.target.url_token) {
        found.push("target.url_token");
    }
    if s.runtime.api_key.as_ref().is_some_and(literal) {
        found.push("runtime.api_key");
    }
    if s.runtime
        .oauth
        .as_ref()
        .is_some_and(|o| literal(&o.client_secret))
    {
        found.push("runtime.oauth.client_secret");
    }
    found
}

fn list_env(names: &BTreeSet<String>) -> String {
    names
        .iter()
        .map(|n| format!("${{env:{n}}}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Loads the scenario as `run` would, with unset `${env:NAME}` replaced by a
/// placeholder (the pods get the real values from the Secret).
fn load_scenario(path: &Path, env_names: &BTreeSet<String>) -> Result<Scenario, CliError> {
    let mut env = BTreeMap::new();
    let mut placeheld = Vec::new();
    for name in env_names {
        match std::env::var(name) {
            Ok(v) if !v.is_empty() => {
                env.insert(name.clone(), v);
            }
            _ => {
                env.insert(name.clone(), ENV_PLACEHOLDER.to_string());
                placeheld.push(name.as_str());
            }
        }
    }
    scenario::template::with_env(&env, || scenario::load(path)).map_err(|e| {
        let mut message = e.to_string();
        if !placeheld.is_empty() {
            message.push_str(&format!(
                "\n(checked with `{ENV_PLACEHOLDER}` for the unset {}; set them here to check with real values)",
                placeheld.join(", ")
            ));
        }
        CliError::usage(message)
    })
}

fn build_run(
    args: &KubernetesArgs,
    scenario: &Scenario,
    text: &str,
) -> Result<KubernetesRun, CliError> {
    let usage = CliError::usage;
    if args.image.trim().is_empty() || args.image.chars().any(char::is_whitespace) {
        return Err(usage(format!(
            "--image `{}` is not an image reference (e.g. ghcr.io/you/finalping:0.1.0)",
            args.image
        )));
    }
    if let Some(ns) = &args.namespace {
        k8s::check_label("--namespace", ns, 63).map_err(usage)?;
    }
    if let Some(secret) = &args.secret {
        k8s::check_subdomain("--secret", secret).map_err(usage)?;
    }
    if let Some(class) = &args.storage_class {
        k8s::check_subdomain("--storage-class", class).map_err(usage)?;
    }
    k8s::check_quantity("--storage", &args.storage).map_err(usage)?;
    k8s::check_quantity("--cpu", &args.cpu).map_err(usage)?;
    k8s::check_quantity("--memory", &args.memory).map_err(usage)?;
    if args.metrics_port == 0 {
        return Err(usage("--metrics-port must be a port number above 0".into()));
    }
    let run_id = match &args.run_id {
        Some(id) => id.clone(),
        None => k8s::default_run_id(&scenario.name, chrono::Utc::now()),
    };
    k8s::check_run_id(&run_id).map_err(usage)?;
    let (scenario_key, files) = config_files(&args.scenario, scenario, text)?;
    let barrier = args.barrier_timeout.as_duration();
    let deadline = match args.deadline {
        Some(d) => d.as_duration(),
        None => {
            barrier + planned_duration(scenario).unwrap_or(ITERATIONS_ALLOWANCE) + DEADLINE_MARGIN
        }
    };
    if deadline <= barrier {
        return Err(usage(format!(
            "--deadline {} must be longer than --barrier-timeout {}",
            crate::duration::HumanDuration(deadline),
            args.barrier_timeout
        )));
    }
    Ok(KubernetesRun {
        run_id,
        namespace: args.namespace.clone(),
        segments: args.segments,
        image: args.image.clone(),
        scenario_key,
        files,
        secret: args.secret.clone(),
        storage: args.storage.clone(),
        storage_class: args.storage_class.clone(),
        access_mode: args.access_mode,
        cpu: args.cpu.clone(),
        memory: args.memory.clone(),
        barrier_timeout: args.barrier_timeout.to_string(),
        deadline: Duration::from_secs(deadline.as_secs().max(1)),
        metrics_port: args.metrics_port,
        own_capacity: args.own_capacity,
    })
}

/// The longest load (duration or stages, plus ramp-up and grace); `None`
/// when a load is bound by iterations only.
fn planned_duration(scenario: &Scenario) -> Option<Duration> {
    let one = |load: &Load| {
        let run = if !load.stages.is_empty() {
            load.stages_duration()
        } else {
            load.duration?.as_duration()
        };
        Some(run + load.ramp_up.as_duration() + load.grace.as_duration())
    };
    let mut longest = if scenario.steps.is_empty() {
        Duration::ZERO
    } else {
        one(&scenario.load)?
    };
    for sub in &scenario.scenarios {
        let load = sub.load.as_ref().unwrap_or(&scenario.load);
        longest = longest.max(one(load)?);
    }
    Some(longest)
}

/// A valid ConfigMap key (`[-._a-zA-Z0-9]+`, at most 253 characters).
fn is_config_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key != "."
        && key != ".."
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The scenario (first) and every feeder file, keyed for the ConfigMap and
/// placed at their paths relative to the scenario.
fn config_files(
    path: &Path,
    scenario: &Scenario,
    text: &str,
) -> Result<(String, Vec<ConfigFile>), CliError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| is_config_key(n) && *n != k8s::WAIT_SCRIPT_KEY)
        .unwrap_or("scenario.yaml")
        .to_string();
    let mut files = vec![ConfigFile {
        key: name.clone(),
        path: name.clone(),
        text: text.to_string(),
    }];
    let base = path.parent().unwrap_or(Path::new(""));
    for (feeder, config) in &scenario.feeders {
        let rel = Path::new(&config.file);
        let inside = rel.components().all(|c| matches!(c, Component::Normal(_)));
        if !inside {
            return Err(CliError::usage(format!(
                "feeder `{feeder}`: file `{}` must be a path below the scenario's folder (no `..`, not absolute) \
                 so that it can ship in the ConfigMap beside the scenario",
                config.file
            )));
        }
        let rel_path = rel
            .components()
            .filter_map(|c| c.as_os_str().to_str())
            .collect::<Vec<_>>()
            .join("/");
        if files.iter().any(|f| f.path == rel_path) || rel_path == k8s::WAIT_SCRIPT_KEY {
            continue;
        }
        let full = base.join(rel);
        let data = std::fs::read_to_string(&full).map_err(|e| {
            CliError::usage(format!(
                "feeder `{feeder}`: cannot read {} as UTF-8 text for the ConfigMap: {e}",
                full.display()
            ))
        })?;
        let key: String = format!("feeder-{feeder}.csv")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        files.push(ConfigFile {
            key,
            path: rel_path,
            text: data,
        });
    }
    let size: usize = files
        .iter()
        .map(|f| f.key.len() + f.text.len())
        .sum::<usize>()
        + k8s::WAIT_SCRIPT.len();
    if size > CONFIG_MAP_LIMIT {
        return Err(CliError::usage(format!(
            "the scenario and its feeder files take {size} bytes, more than a ConfigMap holds ({CONFIG_MAP_LIMIT}): \
             shrink the feeder files, or build an image that contains them and refer to them by absolute path"
        )));
    }
    Ok((name, files))
}

fn print_next_steps(args: &KubernetesArgs, run: &KubernetesRun, env_names: &BTreeSet<String>) {
    let ns = args
        .namespace
        .as_ref()
        .map(|n| format!(" -n {n}"))
        .unwrap_or_default();
    let apply = match &args.out {
        Some(dir) => format!("kubectl{ns} apply -f {}", dir.display()),
        None => format!("finalping deploy kubernetes … | kubectl{ns} apply -f -"),
    };
    let mut steps = Vec::new();
    if let Some(secret) = &run.secret {
        if !env_names.is_empty() {
            steps.push(format!(
                "the Secret `{secret}` must hold the keys {}",
                env_names.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    steps.push(apply);
    steps.push(format!(
        "kubectl{ns} wait --for=condition=complete --timeout={}s job/{}  # or condition=failed",
        run.wait_seconds() + 15 * 60,
        run.merge_job_name()
    ));
    steps.push(format!(
        "kubectl{ns} logs job/{}  # the merged verdict; the Job's exit code is the run's",
        run.merge_job_name()
    ));
    steps.push(format!(
        "the merged report is in {}/merged on the volume claim {}",
        run.run_dir(),
        run.claim_name()
    ));
    eprintln!("next steps:");
    for (i, s) in steps.iter().enumerate() {
        eprintln!("  {}. {s}", i + 1);
    }
}
