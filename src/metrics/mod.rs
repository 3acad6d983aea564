//! Metric names, the sharded recorder the VU tasks write into, and the merged
//! snapshots the reports read. Latencies are HDR histograms in microseconds
//! (1 µs … 1 h, 3 significant digits). There is never a histogram per VU and
//! never one global lock per sample: each worker thread writes its own shard.
//! This module does not know about sockets or report formats.

mod process;
mod recorder;
pub mod selfcheck;
mod snapshot;
mod timeline;

pub use process::{GeneratorUsage, ProcessUsage};
pub use recorder::{Recorder, ShardWriter};
pub use snapshot::{MetricSummary, Snapshot};
pub use timeline::{Gauges, Interval, IntervalStats, Timeline, TimelineError};

/// Latency metrics (names are part of the interface; see README "Metrics").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    /// WebSocket connect start → `endpoint-ready`.
    Connect,
    /// `processInput` written → first `output`.
    FirstOutput,
    /// `processInput` written → `finalPing` (the turn).
    FinalPing,
    /// Between consecutive outputs of one turn.
    OutputGap,
}

impl Metric {
    pub const ALL: [Metric; 4] = [
        Metric::Connect,
        Metric::FirstOutput,
        Metric::FinalPing,
        Metric::OutputGap,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::Connect => "connect",
            Metric::FirstOutput => "first_output",
            Metric::FinalPing => "final_ping",
            Metric::OutputGap => "output_gap",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Event counters (names are part of the interface).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Counter {
    TurnsSent,
    TurnsOk,
    TurnsTimeout,
    TurnsError,
    TurnsDisconnected,
    TurnsInterrupted,
    ExpectFailed,
    Outputs,
    AcksSent,
    ConnectsOk,
    ConnectErrors,
    Disconnects,
    UnknownEvents,
    UnsolicitedOutputs,
    Heartbeats,
    BytesSent,
    BytesReceived,
}

impl Counter {
    pub const ALL: [Counter; 17] = [
        Counter::TurnsSent,
        Counter::TurnsOk,
        Counter::TurnsTimeout,
        Counter::TurnsError,
        Counter::TurnsDisconnected,
        Counter::TurnsInterrupted,
        Counter::ExpectFailed,
        Counter::Outputs,
        Counter::AcksSent,
        Counter::ConnectsOk,
        Counter::ConnectErrors,
        Counter::Disconnects,
        Counter::UnknownEvents,
        Counter::UnsolicitedOutputs,
        Counter::Heartbeats,
        Counter::BytesSent,
        Counter::BytesReceived,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Counter::TurnsSent => "turns_sent",
            Counter::TurnsOk => "turns_ok",
            Counter::TurnsTimeout => "turns_timeout",
            Counter::TurnsError => "turns_error",
            Counter::TurnsDisconnected => "turns_disconnected",
            Counter::TurnsInterrupted => "turns_interrupted",
            Counter::ExpectFailed => "expect_failed",
            Counter::Outputs => "outputs",
            Counter::AcksSent => "acks_sent",
            Counter::ConnectsOk => "connects_ok",
            Counter::ConnectErrors => "connect_errors",
            Counter::Disconnects => "disconnects",
            Counter::UnknownEvents => "unknown_events",
            Counter::UnsolicitedOutputs => "unsolicited_outputs",
            Counter::Heartbeats => "heartbeats",
            Counter::BytesSent => "bytes_sent",
            Counter::BytesReceived => "bytes_received",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Lowest and highest trackable latency in microseconds, and precision.
pub const HIST_LOW_US: u64 = 1;
pub const HIST_HIGH_US: u64 = 3_600_000_000;
pub const HIST_SIGFIG: u8 = 3;

/// A new empty latency histogram with the project-wide bounds.
pub fn new_histogram() -> hdrhistogram::Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts; this cannot fail.
    hdrhistogram::Histogram::new_with_bounds(HIST_LOW_US, HIST_HIGH_US, HIST_SIGFIG)
        .unwrap_or_else(|_| unreachable!("constant histogram bounds are valid"))
}
