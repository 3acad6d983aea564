//! Deploying a run on an existing engine: renders what that engine needs to
//! run a scenario as N execution segments (`finalping run --segment i/N`) that
//! start together at a shared start barrier, and one `finalping merge` whose
//! exit code is the run's verdict. Coordination is by the engine and by files
//! on a shared volume; nothing here talks to a cluster.
//!
//! [`kubernetes`]: a ConfigMap (scenario + feeder files), a PersistentVolumeClaim
//! (the shared results volume), an Indexed Job (one pod per segment) and a
//! merge Job. Rendering is a pure function of a [`kubernetes::KubernetesRun`];
//! reading the scenario and writing the files is `commands::deploy`.

pub mod kubernetes;
