//! File descriptors: how many one VU can hold (checked against the open-files
//! limit before a run) and whether the process ran out of them during a run
//! (`EMFILE`/`ENFILE`), which makes the run invalid: connects that failed for
//! lack of descriptors say nothing about the target.

use crate::scenario::{Scenario, Step, TargetKind};
use std::sync::atomic::{AtomicU64, Ordering};

/// `EMFILE` (process limit) and `ENFILE` (system limit).
const EMFILE: i32 = 24;
const ENFILE: i32 = 23;

static EXHAUSTED: AtomicU64 = AtomicU64::new(0);

/// Descriptors one VU can hold at once: its chat connection (Socket.IO, or a
/// REST pool connection), its runtime connection (WebSocket, or a context
/// inject pool connection) when the scenario updates context; twice that
/// with the embedded emulator, which holds the server side in this process.
pub fn per_vu(s: &Scenario, embedded: bool) -> u64 {
    // Socket.IO: the VU's own socket; REST: at most one pooled connection per request in flight.
    let chat = match s.target.kind {
        TargetKind::SocketIo | TargetKind::Rest => 1,
    };
    let runtime = u64::from(
        s.all_steps()
            .any(|st| matches!(st, Step::UpdateContext(_) | Step::GetContext)),
    );
    let client = chat + runtime;
    if embedded {
        client * 2
    } else {
        client
    }
}

/// Descriptors the run holds besides its VUs: webhook workers (and their
/// emulator side when embedded).
pub fn shared(s: &Scenario, embedded: bool) -> u64 {
    let webhook = s.webhook.as_ref().map_or(0, |w| w.workers as u64);
    if embedded {
        webhook * 2
    } else {
        webhook
    }
}

/// Counts `e` if it is `EMFILE`/`ENFILE`; returns whether it was.
pub fn note_io(e: &std::io::Error) -> bool {
    let hit = matches!(e.raw_os_error(), Some(EMFILE | ENFILE));
    if hit {
        EXHAUSTED.fetch_add(1, Ordering::Relaxed);
    }
    hit
}

/// Counts an error known only by its text (an HTTP client's error chain).
pub fn note_text(text: &str) -> bool {
    let hit = text.contains("os error 24") || text.contains("os error 23");
    if hit {
        EXHAUSTED.fetch_add(1, Ordering::Relaxed);
    }
    hit
}

/// How many times this process ran out of descriptors so far.
pub fn exhausted() -> u64 {
    EXHAUSTED.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_emfile_and_enfile_count() {
        let before = exhausted();
        assert!(note_io(&std::io::Error::from_raw_os_error(24)));
        assert!(note_io(&std::io::Error::from_raw_os_error(23)));
        assert!(!note_io(&std::io::Error::from_raw_os_error(111)));
        assert!(note_text("connect: Too many open files (os error 24)"));
        assert!(exhausted() >= before + 3);
    }
}
