//! Machine-wide CPU figures from Linux's `/proc/stat`, per interval: how busy
//! the CPUs this process may run on were (all processes together), how much
//! time the hypervisor stole from them, and how many tasks were runnable on
//! the machine (`procs_running`). The self-check sets them beside the
//! process's own CPU to tell a saturated load generator from a busy or noisy
//! machine. One read of `/proc/stat` per interval into a reused buffer; where
//! there is no `/proc/stat` (other systems) there are no figures.
//!
//! Units: CPU figures are in % of one core, like the process's own CPU
//! (`top`'s convention: 200 = two busy cores), so "machine − this process" is
//! the CPU everything else used. Ticks are counted as
//! busy = user + nice + system + irq + softirq (guest time is already inside
//! user and nice), idle = idle + iowait, and steal on its own.

use std::io::Read;

/// Cumulative CPU time of one or more `cpu` lines of `/proc/stat`, in clock ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTicks {
    /// user + nice + system + irq + softirq.
    pub busy: u64,
    /// idle + iowait.
    pub idle: u64,
    /// Time a virtual CPU was ready to run but the hypervisor ran something else.
    pub steal: u64,
}

impl CpuTicks {
    /// Parses the numbers after the `cpu`/`cpuN` label. Kernels before 2.6.11
    /// have no steal column (then 0); fewer than the first four columns is no
    /// `cpu` line.
    fn parse(fields: &str) -> Option<CpuTicks> {
        let mut n = [0u64; 8];
        let mut count = 0;
        for (slot, field) in n.iter_mut().zip(fields.split_ascii_whitespace()) {
            *slot = field.parse().ok()?;
            count += 1;
        }
        if count < 4 {
            return None;
        }
        let [user, nice, system, idle, iowait, irq, softirq, steal] = n;
        Some(CpuTicks {
            busy: user + nice + system + irq + softirq,
            idle: idle + iowait,
            steal,
        })
    }

    fn add(&mut self, other: CpuTicks) {
        self.busy += other.busy;
        self.idle += other.idle;
        self.steal += other.steal;
    }

    fn since(&self, earlier: &CpuTicks) -> CpuTicks {
        CpuTicks {
            busy: self.busy.saturating_sub(earlier.busy),
            idle: self.idle.saturating_sub(earlier.idle),
            steal: self.steal.saturating_sub(earlier.steal),
        }
    }

    fn total(&self) -> u64 {
        self.busy + self.idle + self.steal
    }
}

/// One reading of `/proc/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// The summed ticks of the CPUs counted.
    pub ticks: CpuTicks,
    /// How many CPUs `ticks` covers.
    pub cpus: usize,
    /// CPUs online on the machine (`cpuN` lines).
    pub online_cpus: usize,
    /// Tasks runnable on the whole machine at the moment of reading
    /// (`procs_running`; the reading thread is one of them).
    pub procs_running: u32,
}

/// Parses `/proc/stat`. With `only`, the ticks are the sum of the `cpuN`
/// lines whose `only[N]` is true (the CPUs this process may run on); without
/// it, or when no online CPU is in `only`, the machine total (`cpu` line).
/// `None` when the text has no `cpu` or `procs_running` line.
pub fn parse_proc_stat(text: &str, only: Option<&[bool]>) -> Option<ProcStat> {
    let mut all = None;
    let mut chosen = CpuTicks::default();
    let (mut chosen_cpus, mut online_cpus) = (0usize, 0usize);
    let mut procs_running = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("cpu") {
            let (label, fields) = rest.split_once(' ').unwrap_or((rest, ""));
            if label.is_empty() {
                all = CpuTicks::parse(fields);
            } else if let (Ok(n), Some(ticks)) = (label.parse::<usize>(), CpuTicks::parse(fields)) {
                online_cpus += 1;
                if only.is_some_and(|o| o.get(n).copied().unwrap_or(false)) {
                    chosen.add(ticks);
                    chosen_cpus += 1;
                }
            }
        } else if let Some(n) = line.strip_prefix("procs_running ") {
            procs_running = n.trim().parse().ok();
        }
    }
    let all = all?;
    let procs_running = procs_running?;
    let online_cpus = online_cpus.max(1);
    let (ticks, cpus) = if chosen_cpus > 0 {
        (chosen, chosen_cpus)
    } else {
        (all, online_cpus)
    };
    Some(ProcStat {
        ticks,
        cpus,
        online_cpus,
        procs_running,
    })
}

/// What the CPUs this process may run on did during one interval.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MachineSample {
    /// CPUs the figures cover (those in this process's affinity mask).
    pub cpus: usize,
    /// CPUs online on the machine.
    pub online_cpus: usize,
    /// Busy time of those CPUs, all processes together, in % of one core.
    pub busy_percent: f64,
    /// Steal time of those CPUs, in % of one core.
    pub steal_percent: f64,
    /// Runnable tasks on the machine at the end of the interval.
    pub run_queue: u32,
}

impl MachineSample {
    /// The interval between two readings; `None` if no tick passed.
    pub fn between(before: &ProcStat, after: &ProcStat) -> Option<MachineSample> {
        let d = after.ticks.since(&before.ticks);
        let total = d.total();
        if total == 0 {
            return None;
        }
        let percent = |ticks: u64| ticks as f64 / total as f64 * after.cpus as f64 * 100.0;
        Some(MachineSample {
            cpus: after.cpus,
            online_cpus: after.online_cpus,
            busy_percent: percent(d.busy),
            steal_percent: percent(d.steal),
            run_queue: after.procs_running,
        })
    }
}

const PROC_STAT: &str = "/proc/stat";

/// Reads `/proc/stat` once per [`sample`](Self::sample) and turns the
/// cumulative ticks into per-interval figures.
pub struct MachineSampler {
    buf: String,
    only: Option<Vec<bool>>,
    last: Option<ProcStat>,
}

impl MachineSampler {
    /// Takes the first reading (none where `/proc/stat` cannot be read).
    pub fn new() -> MachineSampler {
        let mut sampler = MachineSampler {
            buf: String::with_capacity(4096),
            only: affinity_mask(),
            last: None,
        };
        sampler.last = sampler.read();
        sampler
    }

    /// Whether the machine can be measured at all.
    pub fn available(&self) -> bool {
        self.last.is_some()
    }

    /// The figures since the previous call (or `new`); `None` where they
    /// cannot be read, or when the interval was shorter than one clock tick
    /// (then the next call covers both).
    pub fn sample(&mut self) -> Option<MachineSample> {
        let now = self.read()?;
        let Some(before) = self.last else {
            self.last = Some(now);
            return None;
        };
        let sample = MachineSample::between(&before, &now)?;
        self.last = Some(now);
        Some(sample)
    }

    fn read(&mut self) -> Option<ProcStat> {
        self.buf.clear();
        std::fs::File::open(PROC_STAT)
            .and_then(|mut f| f.read_to_string(&mut self.buf))
            .ok()?;
        parse_proc_stat(&self.buf, self.only.as_deref())
    }
}

impl Default for MachineSampler {
    fn default() -> Self {
        MachineSampler::new()
    }
}

/// The CPUs this thread may run on (`sched_getaffinity`; `taskset` sets it),
/// indexed by CPU number; `None` where the OS does not tell.
fn affinity_mask() -> Option<Vec<bool>> {
    #[cfg(target_os = "linux")]
    {
        let mut set = std::mem::MaybeUninit::<libc::cpu_set_t>::zeroed();
        // SAFETY: the size passed is the size of the set we own; the kernel
        // writes at most that many bytes.
        let rc = unsafe {
            libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set.as_mut_ptr())
        };
        if rc != 0 {
            return None;
        }
        // SAFETY: rc == 0 means the set was filled in (and it started zeroed).
        let set = unsafe { set.assume_init() };
        let bits = 8 * std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: CPU_ISSET reads a bit of a set we own, for an index below its size.
        let mask: Vec<bool> = (0..bits)
            .map(|i| unsafe { libc::CPU_ISSET(i, &set) })
            .collect();
        let last = mask.iter().rposition(|b| *b)?;
        Some(mask[..=last].to_vec())
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT_A: &str = "cpu  1000 100 300 5000 50 10 40 0 200 0
cpu0 500 50 150 2500 25 5 20 0 100 0
cpu1 500 50 150 2500 25 5 20 0 100 0
intr 13475752 0 0 0
ctxt 41293580
btime 1796657148
processes 363064
procs_running 4
procs_blocked 0
softirq 28155587 0 1333456 6
";

    // Later: cpu0 100 ticks busy (90 user + 10 system); cpu1 80 busy, 30
    // idle and 20 stolen.
    const STAT_B: &str = "cpu  1160 100 320 5030 50 10 40 20 200 0
cpu0 590 50 160 2500 25 5 20 0 100 0
cpu1 570 50 160 2530 25 5 20 20 100 0
intr 13475990 0 0 0
ctxt 41293999
procs_running 7
procs_blocked 1
";

    #[test]
    fn parses_the_machine_total_and_counts_the_cpus() {
        let s = parse_proc_stat(STAT_A, None).unwrap();
        assert_eq!(
            s,
            ProcStat {
                ticks: CpuTicks {
                    busy: 1000 + 100 + 300 + 10 + 40,
                    idle: 5050,
                    steal: 0
                },
                cpus: 2,
                online_cpus: 2,
                procs_running: 4,
            }
        );
    }

    #[test]
    fn an_affinity_mask_selects_cpu_lines() {
        let only_cpu1 = [false, true];
        let s = parse_proc_stat(STAT_B, Some(&only_cpu1)).unwrap();
        assert_eq!(s.cpus, 1);
        assert_eq!(s.online_cpus, 2);
        assert_eq!(
            s.ticks,
            CpuTicks {
                busy: 570 + 50 + 160 + 5 + 20,
                idle: 2555,
                steal: 20
            }
        );
        // A mask naming no online CPU falls back to the machine total.
        let s = parse_proc_stat(STAT_B, Some(&[false, false, false, true])).unwrap();
        assert_eq!((s.cpus, s.ticks.busy), (2, 1160 + 100 + 320 + 10 + 40));
    }

    #[test]
    fn interval_figures_are_in_percent_of_one_core() {
        let a = parse_proc_stat(STAT_A, None).unwrap();
        let b = parse_proc_stat(STAT_B, None).unwrap();
        let m = MachineSample::between(&a, &b).unwrap();
        // 180 busy + 30 idle + 20 steal = 230 ticks over 2 CPUs.
        assert_eq!((m.cpus, m.online_cpus, m.run_queue), (2, 2, 7));
        assert!(
            (m.busy_percent - 180.0 / 230.0 * 200.0).abs() < 1e-9,
            "{m:?}"
        );
        assert!(
            (m.steal_percent - 20.0 / 230.0 * 200.0).abs() < 1e-9,
            "{m:?}"
        );
        // No tick passed: no figure.
        assert_eq!(MachineSample::between(&b, &b), None);
    }

    #[test]
    fn old_kernels_and_broken_text() {
        // Four columns (no iowait, irq, softirq, steal).
        let s = parse_proc_stat("cpu 1 2 3 4\ncpu0 1 2 3 4\nprocs_running 1\n", None).unwrap();
        assert_eq!(
            s.ticks,
            CpuTicks {
                busy: 6,
                idle: 4,
                steal: 0
            }
        );
        assert_eq!(parse_proc_stat("", None), None);
        assert_eq!(parse_proc_stat("cpu 1 2 3\nprocs_running 1\n", None), None);
        assert_eq!(
            parse_proc_stat("cpu 1 2 3 x\nprocs_running 1\n", None),
            None
        );
        assert_eq!(parse_proc_stat("cpu 1 2 3 4\n", None), None);
        assert_eq!(parse_proc_stat("procs_running 3\n", None), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_live_machine_can_be_sampled() {
        let mut m = MachineSampler::new();
        assert!(m.available());
        let start = std::time::Instant::now();
        let mut sample = None;
        // Busy-wait until at least one clock tick passed (at most 2 s).
        while sample.is_none() && start.elapsed() < std::time::Duration::from_secs(2) {
            let mut x = 0u64;
            for i in 0..1_000_000u64 {
                x = std::hint::black_box(x.wrapping_add(i));
            }
            sample = m.sample();
        }
        let s = sample.expect("a clock tick passed within 2 s");
        assert!(s.cpus >= 1 && s.cpus <= s.online_cpus, "{s:?}");
        assert!(s.run_queue >= 1, "the reading thread runs: {s:?}");
        let cap = s.cpus as f64 * 100.0 + 1e-6;
        assert!((0.0..=cap).contains(&s.busy_percent), "{s:?}");
        assert!((0.0..=cap).contains(&s.steal_percent), "{s:?}");
    }
}
