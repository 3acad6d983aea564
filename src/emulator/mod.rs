//! The embedded emulator (`finalping serve`, the default target, and the peer of
//! most tests). Serves the Socket.IO Endpoint (EIO3 and EIO4 on one port) with
//! scripted outputs and configurable delays. Shares no code with the client
//! beyond wire constants. (STUB: being implemented.)

pub mod config;
pub mod delay;

pub use config::EmulatorConfig;
pub use delay::Delay;

use std::net::SocketAddr;

/// A running emulator; dropping it (or calling `shutdown`) stops the server.
pub struct RunningEmulator {
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningEmulator {
    /// `http://127.0.0.1:PORT` — what a scenario's `target.url` would hold.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, closes connections and waits for the server task.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// Binds `addr` (port 0 = ephemeral) and serves in a background task.
pub async fn start(_config: EmulatorConfig, _addr: SocketAddr) -> std::io::Result<RunningEmulator> {
    Err(std::io::Error::other("emulator not implemented"))
}
