//! The embedded emulator of `finalping run` (no `target.url`), on a tokio
//! runtime of its own: worker threads named [`THREAD_NAME`] whose CPU time is
//! measured apart ([`ThreadGroupCpu`]), so a run reports the client's CPU
//! without the emulator's. Everything the emulator spawns (its server,
//! connections, Socket.IO tasks) lands on that runtime because it is started
//! from inside it.
//!
//! A build without the `emulator` cargo feature has no embedded emulator: a
//! scenario without `target.url` is then a usage error naming the fix
//! ([`NOT_BUILT`]), raised by [`require`] before anything starts.

use crate::error::CliError;
use crate::scenario::Scenario;

/// Why a build without the `emulator` feature has no emulator, and the fix.
#[cfg_attr(feature = "emulator", allow(dead_code))]
pub const NOT_BUILT: &str = "this finalping was built without the embedded emulator \
     (cargo feature `emulator`, on by default); rebuild it with default features \
     (`cargo build --release`)";

/// Fails, naming the fix, when the scenario needs the embedded emulator (it
/// has no `target.url`) and this build has none.
pub fn require(scenario: &Scenario) -> Result<(), CliError> {
    if scenario.target.url.is_none() && !cfg!(feature = "emulator") {
        return Err(not_built());
    }
    Ok(())
}

fn not_built() -> CliError {
    CliError::usage(format!(
        "the scenario has no target.url, so it needs the embedded emulator, but {NOT_BUILT}, \
         or give it a `target.url` (or pass --target URL) of a running Endpoint"
    ))
}

/// Where a run reaches the embedded emulator, and the credentials it
/// accepts: the defaults of a scenario that gives none.
#[derive(Debug, Clone)]
pub struct EmulatorAccess {
    /// `http://127.0.0.1:PORT` (the Socket.IO and REST Endpoint).
    pub url: String,
    /// The runtime WebSocket.
    pub runtime_url: String,
    /// The token endpoint.
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
    /// The context-inject API's first key (empty when it checks none).
    pub api_key: String,
}

#[cfg(feature = "emulator")]
pub use with_emulator::EmbeddedEmulator;
#[cfg(not(feature = "emulator"))]
pub use without_emulator::EmbeddedEmulator;

#[cfg(feature = "emulator")]
mod with_emulator {
    use super::EmulatorAccess;
    use crate::emulator::{self, RunningEmulator};
    use crate::emulator_config::EmulatorConfig;
    use crate::error::CliError;
    use crate::metrics::ThreadGroupCpu;
    use std::net::{Ipv4Addr, SocketAddr};
    use std::sync::Arc;
    use std::time::Duration;

    /// Name of the emulator's threads (`top -H`, `ps -L` show it).
    pub const THREAD_NAME: &str = "finalping-emu";

    /// Upper bound of a shutdown (the emulator itself gives up after 5 s).
    const SHUTDOWN_LIMIT: Duration = Duration::from_secs(10);

    /// A running embedded emulator and its runtime.
    pub struct EmbeddedEmulator {
        config: EmulatorConfig,
        emulator: Option<RunningEmulator>,
        runtime: Option<tokio::runtime::Runtime>,
        cpu: Arc<ThreadGroupCpu>,
    }

    impl EmbeddedEmulator {
        /// Builds the emulator's runtime (as many workers as usable cores) and
        /// starts the emulator on 127.0.0.1, ephemeral port.
        pub async fn start(config: EmulatorConfig) -> Result<EmbeddedEmulator, CliError> {
            let cpu = Arc::new(ThreadGroupCpu::new());
            let (on_start, on_stop) = (cpu.clone(), cpu.clone());
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .thread_name(THREAD_NAME)
                .on_thread_start(move || on_start.register_current())
                .on_thread_stop(move || on_stop.unregister_current())
                .enable_all()
                .build()
                .map_err(|e| {
                    CliError::internal(format!("cannot start the embedded emulator's runtime: {e}"))
                })?;
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
            let started = runtime.spawn(emulator::start(config.clone(), addr)).await;
            let mut this = EmbeddedEmulator {
                config: config.clone(),
                emulator: None,
                runtime: Some(runtime),
                cpu,
            };
            let emulator = started
                .map_err(|e| {
                    CliError::internal(format!("the embedded emulator failed to start: {e}"))
                })?
                .map_err(|e| {
                    CliError::internal(format!("cannot start the embedded emulator: {e}"))
                })?;
            this.emulator = Some(emulator);
            Ok(this)
        }

        /// Where it listens and what it accepts (once started).
        pub fn access(&self) -> Option<EmulatorAccess> {
            let em = self.emulator.as_ref()?;
            Some(EmulatorAccess {
                url: em.url(),
                runtime_url: em.runtime_url(),
                token_url: em.token_url(),
                client_id: self.config.runtime.client_id.clone(),
                client_secret: self.config.runtime.client_secret.clone(),
                api_key: self
                    .config
                    .rest
                    .api_keys
                    .first()
                    .cloned()
                    .unwrap_or_default(),
            })
        }

        /// The CPU clock of the emulator's threads.
        pub fn cpu(&self) -> Arc<ThreadGroupCpu> {
            self.cpu.clone()
        }

        /// Stops the emulator (bounded) and its runtime.
        pub async fn shutdown(mut self) {
            if let (Some(em), Some(rt)) = (self.emulator.take(), self.runtime.as_ref()) {
                let stopping = rt.spawn(em.shutdown());
                if tokio::time::timeout(SHUTDOWN_LIMIT, stopping)
                    .await
                    .is_err()
                {
                    tracing::warn!("the embedded emulator did not stop within {SHUTDOWN_LIMIT:?}");
                }
            }
            // Drop does the rest.
        }
    }

    impl Drop for EmbeddedEmulator {
        fn drop(&mut self) {
            // Dropping a runtime inside another one would panic; this does not wait.
            drop(self.emulator.take());
            if let Some(rt) = self.runtime.take() {
                rt.shutdown_background();
            }
        }
    }
}

#[cfg(not(feature = "emulator"))]
mod without_emulator {
    use super::EmulatorAccess;
    use crate::emulator_config::EmulatorConfig;
    use crate::error::CliError;
    use crate::metrics::ThreadGroupCpu;
    use std::sync::Arc;

    /// No embedded emulator in this build: [`EmbeddedEmulator::start`] fails
    /// and no value of this type exists.
    pub enum EmbeddedEmulator {}

    impl EmbeddedEmulator {
        pub async fn start(_: EmulatorConfig) -> Result<EmbeddedEmulator, CliError> {
            Err(super::not_built())
        }

        pub fn access(&self) -> Option<EmulatorAccess> {
            match *self {}
        }

        pub fn cpu(&self) -> Arc<ThreadGroupCpu> {
            match *self {}
        }

        pub async fn shutdown(self) {
            match self {}
        }
    }
}
