//! The embedded emulator of `finalping run` (no `target.url`), on a tokio
//! runtime of its own: worker threads named [`THREAD_NAME`] whose CPU time is
//! measured apart ([`ThreadGroupCpu`]), so a run reports the client's CPU
//! without the emulator's. Everything the emulator spawns (its server,
//! connections, Socket.IO tasks) lands on that runtime because it is started
//! from inside it.

use crate::emulator::{self, EmulatorConfig, RunningEmulator};
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
        let started = runtime.spawn(emulator::start(config, addr)).await;
        let mut this = EmbeddedEmulator {
            emulator: None,
            runtime: Some(runtime),
            cpu,
        };
        let emulator = started
            .map_err(|e| CliError::internal(format!("the embedded emulator failed to start: {e}")))?
            .map_err(|e| CliError::internal(format!("cannot start the embedded emulator: {e}")))?;
        this.emulator = Some(emulator);
        Ok(this)
    }

    /// The running emulator (URLs, counters).
    pub fn emulator(&self) -> Option<&RunningEmulator> {
        self.emulator.as_ref()
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
