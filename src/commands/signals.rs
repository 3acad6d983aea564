//! Ctrl-C / SIGTERM handling: the first signal cancels the token (stop new
//! work, write partial reports); a second one exits at once.

use crate::error::exit;
use tokio_util::sync::CancellationToken;

/// Spawns the listener; returns the token that the first signal cancels.
pub fn install() -> CancellationToken {
    let token = CancellationToken::new();
    let first = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        eprintln!("\ninterrupted: stopping new work, giving in-flight turns their grace period, then writing reports (press Ctrl-C again to exit at once)");
        first.cancel();
        wait_for_signal().await;
        eprintln!("interrupted twice: exiting now without reports");
        std::process::exit(exit::INTERRUPTED);
    });
    token
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
