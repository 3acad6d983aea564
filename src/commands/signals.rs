//! Ctrl-C / SIGTERM / SIGHUP handling: the first signal cancels the token (stop new
//! work, write partial reports); a second one exits at once. The handlers are
//! registered before `install` returns, so no signal can slip past them.

use crate::error::exit;
use tokio_util::sync::CancellationToken;

/// Registers the handlers and returns the token that the first signal cancels.
/// `on_first` says what stopping means for this command (printed on stderr).
pub fn install(on_first: &'static str) -> CancellationToken {
    let token = CancellationToken::new();
    let first = token.clone();
    let mut signals = Signals::register();
    tokio::spawn(async move {
        signals.recv().await;
        eprintln!("\ninterrupted: {on_first} (press Ctrl-C again to exit at once)");
        first.cancel();
        signals.recv().await;
        eprintln!("interrupted twice: exiting now");
        std::process::exit(exit::INTERRUPTED);
    });
    token
}

/// SIGINT, SIGTERM and SIGHUP (a closed terminal) streams, registered on creation.
struct Signals {
    #[cfg(unix)]
    streams: Option<[tokio::signal::unix::Signal; 3]>,
}

impl Signals {
    fn register() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let streams = (|| {
                Ok::<_, std::io::Error>([
                    signal(SignalKind::interrupt())?,
                    signal(SignalKind::terminate())?,
                    signal(SignalKind::hangup())?,
                ])
            })()
            .ok();
            Signals { streams }
        }
        #[cfg(not(unix))]
        {
            Signals {}
        }
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        match &mut self.streams {
            Some([int, term, hup]) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                    _ = hup.recv() => {}
                }
            }
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
