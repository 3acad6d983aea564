//! The generator's own resource use (CPU time, peak RSS), read from the OS so a
//! run can say what it cost on the client side.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// CPU time used and peak resident memory of this process so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessUsage {
    /// User + system CPU time.
    pub cpu: Duration,
    /// The user-space part of `cpu` (the rest is the kernel's work for us).
    pub user: Duration,
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
        user: tv(ru.ru_utime),
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
    /// CPU time (user + system) of the whole process during the run, in ms:
    /// an embedded emulator's threads included.
    pub cpu_ms: f64,
    /// The client's own CPU time, in ms: `cpu_ms` minus the embedded
    /// emulator's threads (equal to `cpu_ms` against an external target).
    #[serde(default)]
    pub cpu_ms_client: f64,
    /// CPU time of the embedded emulator's threads, in ms; absent against an
    /// external target, or where the emulator's threads cannot be measured
    /// (then `includes_embedded_emulator` is true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_ms_emulator: Option<f64>,
    /// `cpu_ms` split into user space and the kernel (system calls, loopback
    /// TCP) — the process as a whole, like `cpu_ms`.
    #[serde(default)]
    pub cpu_ms_user: f64,
    #[serde(default)]
    pub cpu_ms_system: f64,
    /// Average client CPU use over the run, in % of one core.
    pub cpu_percent: f64,
    /// Peak resident set size of the process, in KiB (emulator included).
    pub max_rss_kib: u64,
    /// True when an embedded emulator ran in the process and its CPU could
    /// not be separated (not Linux): `cpu_ms_client` then includes it.
    pub includes_embedded_emulator: bool,
}

impl GeneratorUsage {
    /// Usage between two process readings. `emulator_cpu` is what the
    /// embedded emulator's threads used in the same span (None: no embedded
    /// emulator, or it could not be measured); `embedded` says whether one ran.
    pub fn between(
        before: ProcessUsage,
        after: ProcessUsage,
        wall: Duration,
        embedded: bool,
        emulator_cpu: Option<Duration>,
    ) -> Self {
        let cpu = after.cpu.saturating_sub(before.cpu);
        let user = after.user.saturating_sub(before.user).min(cpu);
        let emulator_cpu = emulator_cpu.filter(|_| embedded);
        let client = cpu.saturating_sub(emulator_cpu.unwrap_or_default());
        GeneratorUsage {
            cpu_ms: cpu.as_secs_f64() * 1000.0,
            cpu_ms_client: client.as_secs_f64() * 1000.0,
            cpu_ms_emulator: emulator_cpu.map(|e| e.as_secs_f64() * 1000.0),
            cpu_ms_user: user.as_secs_f64() * 1000.0,
            cpu_ms_system: (cpu - user).as_secs_f64() * 1000.0,
            cpu_percent: if wall.is_zero() {
                0.0
            } else {
                100.0 * client.as_secs_f64() / wall.as_secs_f64()
            },
            max_rss_kib: after.max_rss_kib,
            includes_embedded_emulator: embedded && emulator_cpu.is_none(),
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

    #[test]
    fn the_emulator_share_is_taken_out_of_the_client() {
        let at = |ms: u64| ProcessUsage {
            cpu: Duration::from_millis(ms),
            user: Duration::from_millis(ms / 4),
            max_rss_kib: 1,
        };
        let wall = Duration::from_secs(1);
        let g = GeneratorUsage::between(
            at(100),
            at(900),
            wall,
            true,
            Some(Duration::from_millis(300)),
        );
        assert!((g.cpu_ms - 800.0).abs() < 1e-9, "{g:?}");
        assert!((g.cpu_ms_user - 200.0).abs() < 1e-9, "{g:?}");
        assert!((g.cpu_ms_system - 600.0).abs() < 1e-9, "{g:?}");
        assert!((g.cpu_ms_client - 500.0).abs() < 1e-9, "{g:?}");
        assert_eq!(g.cpu_ms_emulator, Some(300.0));
        assert!((g.cpu_percent - 50.0).abs() < 1e-9, "{g:?}");
        assert!(!g.includes_embedded_emulator);
        // Embedded but not measurable: the client figure includes it, and says so.
        let g = GeneratorUsage::between(at(0), at(800), wall, true, None);
        assert_eq!((g.cpu_ms_client, g.cpu_ms_emulator), (800.0, None));
        assert!(g.includes_embedded_emulator);
        // External target: no emulator share, whatever is passed.
        let g =
            GeneratorUsage::between(at(0), at(800), wall, false, Some(Duration::from_millis(5)));
        assert_eq!((g.cpu_ms_client, g.cpu_ms_emulator), (800.0, None));
        assert!(!g.includes_embedded_emulator);
        let json = serde_json::to_value(g).unwrap();
        assert!(json.get("cpu_ms_emulator").is_none(), "{json}");
    }
}
