//! CPU time of one group of this process's threads — the embedded emulator's
//! runtime — so that the load generator's own CPU can be told apart from it
//! (process CPU − group CPU). Threads join the group when they start
//! ([`ThreadGroupCpu::register_current`], e.g. from tokio's `on_thread_start`)
//! and book their final CPU time when they stop
//! ([`ThreadGroupCpu::unregister_current`], `on_thread_stop`), so a thread
//! that exits mid-run still counts.
//!
//! Linux reads each live thread's CPU clock (`pthread_getcpuclockid` +
//! `clock_gettime`, nanoseconds, the same accounting `getrusage` sums up);
//! elsewhere [`ThreadGroupCpu::total`] is `None` and callers report the
//! process total.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::thread::ThreadId;
use std::time::Duration;

#[derive(Debug, Default)]
struct Inner {
    /// Live threads of the group and their CPU clocks.
    live: HashMap<ThreadId, Clock>,
    /// CPU time of the threads that already stopped.
    exited: Duration,
    /// A thread could not be registered: the total would be too low.
    unsupported: bool,
}

/// CPU time of a group of threads (see the module docs).
#[derive(Debug, Default)]
pub struct ThreadGroupCpu {
    inner: Mutex<Inner>,
}

impl ThreadGroupCpu {
    pub fn new() -> ThreadGroupCpu {
        ThreadGroupCpu::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds the calling thread to the group.
    pub fn register_current(&self) {
        let clock = Clock::current();
        let mut inner = self.lock();
        match clock {
            Some(c) => {
                inner.live.insert(std::thread::current().id(), c);
            }
            None => inner.unsupported = true,
        }
    }

    /// Removes the calling thread from the group, booking its CPU time so far.
    /// Call it on the thread, right before it ends.
    pub fn unregister_current(&self) {
        let spent = Clock::own_time();
        let mut inner = self.lock();
        if inner.live.remove(&std::thread::current().id()).is_some() {
            match spent {
                Some(t) => inner.exited += t,
                None => inner.unsupported = true,
            }
        }
    }

    /// Threads currently in the group.
    pub fn live_threads(&self) -> usize {
        self.lock().live.len()
    }

    /// CPU time (user + system) the group's threads used so far, stopped
    /// threads included; `None` where per-thread clocks are not available.
    pub fn total(&self) -> Option<Duration> {
        let inner = self.lock();
        if inner.unsupported {
            return None;
        }
        let mut sum = inner.exited;
        for clock in inner.live.values() {
            // Every live thread unregisters before it ends, under this lock:
            // a clock that cannot be read is a platform without thread clocks.
            sum += clock.read()?;
        }
        Some(sum)
    }
}

/// Spins until the calling thread used `cpu` of CPU time (at most 10 s of
/// wall time, so a busy machine cannot hang it). For tests.
#[cfg(test)]
pub(crate) fn burn_cpu(cpu: Duration) {
    let current_thread_cpu = Clock::own_time;
    let wall = std::time::Instant::now();
    let start = current_thread_cpu().unwrap_or_default();
    let mut x = 0u64;
    while wall.elapsed() < Duration::from_secs(10) {
        for _ in 0..10_000 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(1));
        }
        match current_thread_cpu() {
            Some(now) if now.saturating_sub(start) >= cpu => break,
            Some(_) => {}
            None if wall.elapsed() >= cpu => break,
            None => {}
        }
    }
}

/// A thread's CPU clock.
#[derive(Debug, Clone, Copy)]
struct Clock {
    #[cfg(target_os = "linux")]
    id: libc::clockid_t,
}

#[cfg(target_os = "linux")]
extern "C" {
    // POSIX; in glibc (libc.so.6 since 2.34, libpthread before) and musl,
    // not bound by the `libc` crate for Linux.
    fn pthread_getcpuclockid(thread: libc::pthread_t, clock: *mut libc::clockid_t) -> libc::c_int;
}

#[cfg(target_os = "linux")]
impl Clock {
    /// The calling thread's CPU clock.
    fn current() -> Option<Clock> {
        let mut id: libc::clockid_t = 0;
        // SAFETY: pthread_self() is the live calling thread; `id` is ours to write.
        let rc = unsafe { pthread_getcpuclockid(libc::pthread_self(), &mut id) };
        (rc == 0).then_some(Clock { id })
    }

    fn read(&self) -> Option<Duration> {
        read_clock(self.id)
    }

    /// CPU time of the calling thread.
    fn own_time() -> Option<Duration> {
        read_clock(libc::CLOCK_THREAD_CPUTIME_ID)
    }
}

#[cfg(target_os = "linux")]
fn read_clock(id: libc::clockid_t) -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes a timespec we own; a clock of a thread that
    // is gone is EINVAL, not undefined behaviour.
    let rc = unsafe { libc::clock_gettime(id, &mut ts) };
    if rc != 0 {
        return None;
    }
    Some(
        Duration::from_secs(u64::try_from(ts.tv_sec).unwrap_or(0))
            + Duration::from_nanos(u64::try_from(ts.tv_nsec).unwrap_or(0)),
    )
}

#[cfg(not(target_os = "linux"))]
impl Clock {
    fn current() -> Option<Clock> {
        None
    }

    fn read(&self) -> Option<Duration> {
        None
    }

    fn own_time() -> Option<Duration> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn burn(d: Duration) {
        burn_cpu(d)
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn counts_the_group_and_keeps_stopped_threads() {
        let group = Arc::new(ThreadGroupCpu::new());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let g = group.clone();
        let t = std::thread::spawn(move || {
            g.register_current();
            burn(Duration::from_millis(60));
            let _ = ready_tx.send(());
            // Wait (bounded) so the main thread reads a live clock first.
            let _ = go_rx.recv_timeout(Duration::from_secs(10));
            g.unregister_current();
        });
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the worker burned its CPU");
        let live = group.total().expect("Linux has thread clocks");
        assert!(live >= Duration::from_millis(50), "{live:?}");
        assert_eq!(group.live_threads(), 1);
        // The calling thread burns too, but is not in the group.
        burn(Duration::from_millis(60));
        let _ = go_tx.send(());
        t.join().unwrap();
        assert_eq!(group.live_threads(), 0);
        let after = group.total().expect("Linux has thread clocks");
        assert!(after >= live, "{live:?} → {after:?}");
        assert!(after < Duration::from_millis(110), "{after:?}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_tokio_runtime_books_its_named_threads() {
        let group = Arc::new(ThreadGroupCpu::new());
        let (start, stop) = (group.clone(), group.clone());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("cpu-test")
            .on_thread_start(move || start.register_current())
            .on_thread_stop(move || stop.unregister_current())
            .build()
            .unwrap();
        let name = rt
            .block_on(rt.spawn(async {
                burn(Duration::from_millis(50));
                std::thread::current().name().map(str::to_string)
            }))
            .unwrap();
        assert_eq!(name.as_deref(), Some("cpu-test"));
        let during = group.total().unwrap();
        assert!(during >= Duration::from_millis(40), "{during:?}");
        rt.shutdown_timeout(Duration::from_secs(5));
        assert!(group.total().unwrap() >= during);
        assert_eq!(group.live_threads(), 0);
    }

    #[test]
    fn an_empty_group_used_nothing() {
        let group = ThreadGroupCpu::new();
        assert_eq!(group.total(), Some(Duration::ZERO));
        // Unregistering a thread that never joined changes nothing.
        group.unregister_current();
        assert_eq!(group.live_threads(), 0);
    }
}
