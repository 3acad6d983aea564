//! Warm-up of open executors: before an arrival-rate schedule starts, every
//! VU whose conversations run on a kept chat connection (the group's first
//! chat step is a `send`, not a `connect`, and the session ids do not come
//! from feeders or captures) opens that connection. Without it the first
//! arrivals find only VUs without a connection, and while those connect, the
//! next arrivals take further VUs that must connect too: a storm of hundreds
//! of handshakes inside the measured window that slows the turns in flight
//! and puts a tail of tens of milliseconds on `final_ping` at half the
//! generator's capacity. Scripts that `connect` in every conversation are
//! left alone: their connects are part of what they measure.

use super::segment;
use super::vu::{self, VuSlot, Warm};
use super::{Control, Gauge, Group, Plan};
use crate::metrics::{Counter, Recorder};
use crate::scenario::Step;
use futures_util::StreamExt;
use std::future::Future;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Connects opened at once during the warm-up.
const CONCURRENT_CONNECTS: usize = 64;

/// The connections opened before the start, by group and VU (in the order
/// of `segment::group_vus`), and the socket gauge they are counted in.
pub struct Pool {
    pub(super) gauge: Arc<Gauge>,
    warm: Vec<Vec<Option<Box<Warm>>>>,
    recorder: Arc<Recorder>,
}

impl Pool {
    /// Connections opened (for the console).
    pub fn len(&self) -> usize {
        self.warm.iter().flatten().filter(|w| w.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The warm connection of VU `index` of group `group`, if it has one.
    pub(super) fn take(&mut self, group: usize, index: usize) -> Option<Box<Warm>> {
        self.warm.get_mut(group)?.get_mut(index)?.take()
    }

    /// Runs `wait` (the start alignment) while every warm connection keeps
    /// answering heartbeats; a connection lost meanwhile is booked as a
    /// disconnect (`idle_<kind>`, as for a VU between turns) and its VU
    /// starts without one.
    pub async fn keep_alive_while<F: Future>(&mut self, wait: F) -> F::Output {
        let recorder = &self.recorder;
        let serve =
            futures_util::future::join_all(self.warm.iter_mut().flatten().map(|slot| async move {
                if let Some(warm) = slot.as_mut() {
                    let kind = warm.serve_heartbeats().await;
                    *slot = None;
                    let mut w = recorder.writer();
                    w.add(Counter::Disconnects, 1);
                    w.cause(&kind.idle_cause());
                }
            }));
        let mut wait = std::pin::pin!(wait);
        tokio::select! {
            biased;
            out = &mut wait => return out,
            // Every connection is gone (or there were none): just wait.
            _ = serve => {}
        }
        wait.await
    }
}

/// Whether the VUs of `group` keep one chat connection across conversations
/// that can be opened before the schedule starts.
fn keeps_connection(plan: &Plan, group: &Group) -> bool {
    let target = &plan.scenario.target;
    let session_known = [&target.user_id, &target.session_id]
        .iter()
        .all(|t| !t.uses_feeders() && !t.uses_captures());
    let first_chat_step_is_send = group
        .steps
        .iter()
        .find_map(|s| match s.action() {
            Step::Send(_) => Some(true),
            Step::Connect | Step::Disconnect => Some(false),
            _ => None,
        })
        .unwrap_or(false);
    group.schedule.is_open() && plan.rest.is_none() && session_known && first_chat_step_is_send
}

/// Opens the warm connections of this process's VUs (all groups), at most
/// [`CONCURRENT_CONNECTS`] at a time; after the first failed attempt the
/// remaining VUs start without one (the run proper shows what fails).
/// `interrupt` stops the warm-up like it stops the run.
pub async fn connect(
    plan: &Arc<Plan>,
    recorder: &Arc<Recorder>,
    interrupt: &CancellationToken,
) -> Pool {
    let gauge = Arc::new(Gauge::default());
    let control = Control {
        soft: interrupt.child_token(),
        hard: interrupt.child_token(),
        gauge: gauge.clone(),
    };
    let mut warm: Vec<Vec<Option<Box<Warm>>>> = Vec::with_capacity(plan.groups.len());
    for (gi, group) in plan.groups.iter().enumerate() {
        let mine = segment::group_vus(&plan.groups, gi, plan.segment);
        let mut slots: Vec<Option<Box<Warm>>> = (0..mine.len()).map(|_| None).collect();
        if keeps_connection(plan, group) && !control.soft.is_cancelled() {
            let mut attempts = futures_util::stream::iter(mine.iter().enumerate())
                .map(|(k, v)| {
                    let slot = VuSlot {
                        vu: v.vu,
                        index: v.index,
                        group: gi,
                    };
                    let control = &control;
                    async move { (k, vu::warm_up(&slot, plan, recorder, control).await) }
                })
                .buffer_unordered(CONCURRENT_CONNECTS);
            while let Some((k, opened)) = attempts.next().await {
                match opened {
                    Some(w) => {
                        if let Some(slot) = slots.get_mut(k) {
                            *slot = Some(w);
                        }
                    }
                    None => break,
                }
            }
        }
        warm.push(slots);
    }
    Pool {
        gauge,
        warm,
        recorder: recorder.clone(),
    }
}
