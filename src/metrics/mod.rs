//! Metric names, the sharded recorder the VU tasks write into, and the merged
//! snapshots the reports read. Latencies are HDR histograms in microseconds
//! (1 µs … 1 h, 3 significant digits). There is never a histogram per VU and
//! never one global lock per sample: each worker thread writes its own shard.
//! This module does not know about sockets or report formats.

pub mod machine;
mod process;
mod recorder;
pub mod selfcheck;
mod snapshot;
mod tags;
mod thread_cpu;
mod timeline;

pub use process::{GeneratorUsage, ProcessUsage};
pub use recorder::{Recorder, ShardWriter};
pub use snapshot::{MetricSummary, Snapshot};
pub use tags::{TagData, TagId, TAGGED};
pub use thread_cpu::ThreadGroupCpu;
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
    /// `updateContext` written → its reply (`contextUpdated`/`contextRejected`).
    ContextUpdate,
    /// `getContext` written → its `context` reply.
    ContextGet,
    /// Runtime heartbeat `[0x02]` sent → answer `[0x03]`.
    Heartbeat,
    /// Update written → first bot output of the same session showing that version.
    ContextVisible,
    /// Runtime WebSocket connect start → open (token included when it was fetched).
    RuntimeConnect,
    /// Open executors: a conversation's intended start → its actual start.
    ScheduleLag,
    /// Open executors: `final_ping` measured from the turn's intended send
    /// (its actual send minus the conversation's schedule lag).
    FinalPingIntended,
    /// REST Endpoint: request written → response read (also booked as `final_ping`).
    RestTurn,
}

impl Metric {
    pub const ALL: [Metric; 12] = [
        Metric::Connect,
        Metric::FirstOutput,
        Metric::FinalPing,
        Metric::OutputGap,
        Metric::ContextUpdate,
        Metric::ContextGet,
        Metric::Heartbeat,
        Metric::ContextVisible,
        Metric::RuntimeConnect,
        Metric::ScheduleLag,
        Metric::FinalPingIntended,
        Metric::RestTurn,
    ];

    /// The metric called `name` (as in reports), if any.
    pub fn named(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Metric::Connect => "connect",
            Metric::FirstOutput => "first_output",
            Metric::FinalPing => "final_ping",
            Metric::OutputGap => "output_gap",
            Metric::ContextUpdate => "context_update",
            Metric::ContextGet => "context_get",
            Metric::Heartbeat => "heartbeat",
            Metric::ContextVisible => "context_visible",
            Metric::RuntimeConnect => "runtime_connect",
            Metric::ScheduleLag => "schedule_lag",
            Metric::FinalPingIntended => "final_ping_intended",
            Metric::RestTurn => "rest_turn",
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
    Reconnects,
    Abandoned,
    UnknownEvents,
    UnsolicitedOutputs,
    Heartbeats,
    BytesSent,
    BytesReceived,
    UpdatesSent,
    UpdatesOk,
    UpdatesRejected,
    UpdatesInvalid,
    UpdatesTimeout,
    UpdatesDisconnected,
    UpdatesInterrupted,
    Conflicts,
    ConflictRetries,
    GetsOk,
    GetsFailed,
    RuntimeConnectsOk,
    RuntimeConnectErrors,
    RuntimeReconnects,
    TokenRefreshes,
    RuntimeHeartbeats,
    ProtocolErrors,
    RuntimeBytesSent,
    RuntimeBytesReceived,
    AuditRecords,
    Dropped,
    /// Turns sent after an update was acknowledged whose outputs still showed
    /// an older context version.
    ContextStaleTurns,
}

impl Counter {
    pub const ALL: [Counter; 41] = [
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
        Counter::Reconnects,
        Counter::Abandoned,
        Counter::UnknownEvents,
        Counter::UnsolicitedOutputs,
        Counter::Heartbeats,
        Counter::BytesSent,
        Counter::BytesReceived,
        Counter::UpdatesSent,
        Counter::UpdatesOk,
        Counter::UpdatesRejected,
        Counter::UpdatesInvalid,
        Counter::UpdatesTimeout,
        Counter::UpdatesDisconnected,
        Counter::UpdatesInterrupted,
        Counter::Conflicts,
        Counter::ConflictRetries,
        Counter::GetsOk,
        Counter::GetsFailed,
        Counter::RuntimeConnectsOk,
        Counter::RuntimeConnectErrors,
        Counter::RuntimeReconnects,
        Counter::TokenRefreshes,
        Counter::RuntimeHeartbeats,
        Counter::ProtocolErrors,
        Counter::RuntimeBytesSent,
        Counter::RuntimeBytesReceived,
        Counter::AuditRecords,
        Counter::Dropped,
        Counter::ContextStaleTurns,
    ];

    /// The counter called `name` (as in reports), if any.
    pub fn named(name: &str) -> Option<Counter> {
        Counter::ALL.into_iter().find(|c| c.name() == name)
    }

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
            Counter::Reconnects => "reconnects",
            Counter::Abandoned => "conversations_abandoned",
            Counter::UnknownEvents => "unknown_events",
            Counter::UnsolicitedOutputs => "unsolicited_outputs",
            Counter::Heartbeats => "heartbeats",
            Counter::BytesSent => "bytes_sent",
            Counter::BytesReceived => "bytes_received",
            Counter::UpdatesSent => "updates_sent",
            Counter::UpdatesOk => "updates_ok",
            Counter::UpdatesRejected => "updates_rejected",
            Counter::UpdatesInvalid => "updates_invalid",
            Counter::UpdatesTimeout => "updates_timeout",
            Counter::UpdatesDisconnected => "updates_disconnected",
            Counter::UpdatesInterrupted => "updates_interrupted",
            Counter::Conflicts => "conflicts",
            Counter::ConflictRetries => "conflict_retries",
            Counter::GetsOk => "gets_ok",
            Counter::GetsFailed => "gets_failed",
            Counter::RuntimeConnectsOk => "runtime_connects_ok",
            Counter::RuntimeConnectErrors => "runtime_connect_errors",
            Counter::RuntimeReconnects => "runtime_reconnects",
            Counter::TokenRefreshes => "token_refreshes",
            Counter::RuntimeHeartbeats => "runtime_heartbeats",
            Counter::ProtocolErrors => "protocol_errors",
            Counter::RuntimeBytesSent => "runtime_bytes_sent",
            Counter::RuntimeBytesReceived => "runtime_bytes_received",
            Counter::AuditRecords => "audit_records",
            Counter::Dropped => "dropped",
            Counter::ContextStaleTurns => "context_stale_turns",
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

/// Empties `h`, keeping its memory; an already empty one is left alone
/// (resetting zero-fills the whole ~190 KiB counts array).
pub fn reset_histogram(h: &mut hdrhistogram::Histogram<u64>) {
    if !h.is_empty() {
        h.reset();
    }
}
