//! The generator's own resource use (CPU time, peak RSS), read from the OS so a
//! run can say what it cost on the client side.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// CPU time used and peak resident memory of this process so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessUsage {
    pub cpu: Duration,
    pub max_rss_kib: u64,
}

impl ProcessUsage {
    /// Reads the current usage; zeros where the OS does not tell.
    pub fn now() -> ProcessUsage {
        read_usage().unwrap_or_default()
    }
}

#[cfg(unix)]
fn read_usage() -> Option<ProcessUsage> {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a complete rusage into the pointer we own.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: rc == 0 means the struct was filled in.
    let ru = unsafe { ru.assume_init() };
    let tv = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    Some(ProcessUsage {
        cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
        // Linux reports KiB.
        max_rss_kib: u64::try_from(ru.ru_maxrss).unwrap_or(0),
    })
}

#[cfg(not(unix))]
fn read_usage() -> Option<ProcessUsage> {
    None
}

/// What the load generator cost during the run (reported in `summary.json`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct GeneratorUsage {
    /// CPU time (user + system) spent during the run, in ms.
    pub cpu_ms: f64,
    /// Average CPU use over the run, in % of one core.
    pub cpu_percent: f64,
    /// Peak resident set size of the process, in KiB.
    pub max_rss_kib: u64,
    /// True when the emulator ran inside the same process (its cost is included).
    pub includes_embedded_emulator: bool,
}

impl GeneratorUsage {
    pub fn between(
        before: ProcessUsage,
        after: ProcessUsage,
        wall: Duration,
        embedded: bool,
    ) -> Self {
        let cpu = after.cpu.saturating_sub(before.cpu);
        GeneratorUsage {
            cpu_ms: cpu.as_secs_f64() * 1000.0,
            cpu_percent: if wall.is_zero() {
                0.0
            } else {
                100.0 * cpu.as_secs_f64() / wall.as_secs_f64()
            },
            max_rss_kib: after.max_rss_kib,
            includes_embedded_emulator: embedded,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_grows_with_work() {
        let before = ProcessUsage::now();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let after = ProcessUsage::now();
        assert!(after.cpu > before.cpu);
        assert!(after.max_rss_kib > 0);
    }
}
