//! Item accounting: lock-free counters per signal, their snapshot, and the shutdown report.

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};

use otlp_core::{DropReason, FailReason, Observer, PipelineStage, Signal};

/// A snapshot of the pipeline's accounting, per signal.
///
/// For every signal, `accepted + recovered = sent + dropped + failed + queued`
/// (counted in items: spans, data points, log records).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Indexed by [`Signal::index`].
    pub signals: [SignalStats; Signal::COUNT],
    /// Disk-queue records found at start with a damaged header, so that their
    /// signal and item count are unknown (they are not in any signal's counts).
    pub corrupt_records: u64,
}

/// The accounting of one signal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SignalStats {
    /// Items handed to the pipeline by producers.
    pub accepted: u64,
    /// Items found in the disk queue at start (accepted by an earlier process).
    pub recovered: u64,
    /// Items the server accepted.
    pub sent: u64,
    /// Items dropped before sending, by reason (in [`DropReason::ALL`] order).
    pub dropped: Vec<(DropReason, u64)>,
    /// Items that failed for good, by reason (in [`FailReason::ALL`] order).
    pub failed: Vec<(FailReason, u64)>,
    /// Items not yet settled: in the batcher, queued, or being exported.
    pub queued_items: u64,
    /// Bytes those items hold in memory and on disk.
    pub queued_bytes: u64,
    /// Items of whole requests refused with back-pressure before any of them
    /// was taken ([`Sender::admit_request`](crate::Sender::admit_request)):
    /// never accepted, so outside the accounting identity.
    pub refused: u64,
}

/// What [`Pipeline::shutdown`](crate::Pipeline::shutdown) achieved, per signal and in total.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Items delivered over the pipeline's life.
    pub sent: u64,
    /// Items dropped over the pipeline's life (including those lost at shutdown).
    pub dropped: u64,
    /// Items that failed for good over the pipeline's life.
    pub failed: u64,
    /// Items left in the disk queue for the next start (always 0 for the memory queue,
    /// whose leftovers are counted as dropped with reason `shutdown`).
    pub left_queued: u64,
    /// Whether everything was settled before the deadline.
    pub drained: bool,
    /// The final accounting, per signal.
    pub stats: Stats,
}

/// The live counters behind [`Stats`].
pub(crate) struct Counters {
    signals: [SignalCounters; Signal::COUNT],
    /// Items ever admitted (accepted + recovered), all signals.
    admitted: AtomicU64,
    /// Items ever settled (sent + dropped + failed), all signals.
    settled: AtomicU64,
    corrupt_records: AtomicU64,
    /// Bytes ever taken into the queue (memory or disk), all signals.
    intake_bytes: AtomicU64,
    observer: Arc<dyn Observer>,
}

#[derive(Default)]
struct SignalCounters {
    accepted: AtomicU64,
    recovered: AtomicU64,
    sent: AtomicU64,
    dropped: [AtomicU64; DropReason::ALL.len()],
    failed: [AtomicU64; FailReason::ALL.len()],
    held_bytes: AtomicU64,
    refused: AtomicU64,
}

// === impl Stats ===

impl Stats {
    /// The stats of one signal.
    pub fn signal(&self, signal: Signal) -> &SignalStats {
        &self.signals[signal.index()]
    }

    /// The sum over all signals.
    pub fn total(&self) -> SignalStats {
        let mut t = SignalStats::default();
        for s in &self.signals {
            t.accepted += s.accepted;
            t.recovered += s.recovered;
            t.sent += s.sent;
            t.queued_items += s.queued_items;
            t.queued_bytes += s.queued_bytes;
            t.refused += s.refused;
            merge(&mut t.dropped, &s.dropped);
            merge(&mut t.failed, &s.failed);
        }
        t
    }
}

fn merge<R: Copy + PartialEq>(into: &mut Vec<(R, u64)>, from: &[(R, u64)]) {
    for (r, n) in from {
        match into.iter_mut().find(|(x, _)| x == r) {
            Some(e) => e.1 += n,
            None => into.push((*r, *n)),
        }
    }
}

// === impl SignalStats ===

impl SignalStats {
    /// Items dropped, all reasons.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().map(|(_, n)| n).sum()
    }

    /// Items dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| *n)
    }

    /// Items failed, all reasons.
    pub fn failed_total(&self) -> u64 {
        self.failed.iter().map(|(_, n)| n).sum()
    }

    /// Items failed for `reason`.
    pub fn failed(&self, reason: FailReason) -> u64 {
        self.failed
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| *n)
    }
}

// === impl Counters ===

impl Counters {
    pub(crate) fn new(observer: Arc<dyn Observer>) -> Self {
        Self {
            signals: Default::default(),
            admitted: AtomicU64::new(0),
            settled: AtomicU64::new(0),
            corrupt_records: AtomicU64::new(0),
            intake_bytes: AtomicU64::new(0),
            observer,
        }
    }

    pub(crate) fn accepted(&self, signal: Signal, items: u64) {
        self.signals[signal.index()]
            .accepted
            .fetch_add(items, Relaxed);
        self.admitted.fetch_add(items, Relaxed);
        self.observer.accepted(signal, items);
    }

    #[cfg_attr(not(feature = "disk-queue"), allow(dead_code))]
    pub(crate) fn recovered(&self, signal: Signal, items: u64) {
        self.signals[signal.index()]
            .recovered
            .fetch_add(items, Relaxed);
        self.admitted.fetch_add(items, Relaxed);
        self.observer.recovered(signal, items);
    }

    pub(crate) fn sent(&self, signal: Signal, items: u64) {
        if items == 0 {
            return;
        }
        self.signals[signal.index()].sent.fetch_add(items, Relaxed);
        self.settled.fetch_add(items, Relaxed);
        self.observer.sent(signal, items);
    }

    pub(crate) fn dropped(&self, signal: Signal, reason: DropReason, items: u64) {
        if items == 0 {
            return;
        }
        if let Some(i) = DropReason::ALL.iter().position(|r| *r == reason) {
            self.signals[signal.index()].dropped[i].fetch_add(items, Relaxed);
        }
        self.settled.fetch_add(items, Relaxed);
        self.observer.dropped(signal, reason, items);
        self.observer.lost(signal, reason.as_str(), items, "");
    }

    /// A batch spent `took` in a pipeline stage (for the profiler).
    pub(crate) fn stage_time(&self, signal: Signal, stage: PipelineStage, took: Duration) {
        self.observer.stage_time(signal, stage, took);
    }

    /// Items failed for good, with the upstream's last error (for the log of
    /// losses).
    pub(crate) fn failed_because(
        &self,
        signal: Signal,
        reason: FailReason,
        items: u64,
        cause: &str,
    ) {
        if items == 0 {
            return;
        }
        if let Some(i) = FailReason::ALL.iter().position(|r| *r == reason) {
            self.signals[signal.index()].failed[i].fetch_add(items, Relaxed);
        }
        self.settled.fetch_add(items, Relaxed);
        self.observer.failed(signal, reason, items);
        self.observer.lost(signal, reason.as_str(), items, cause);
    }

    /// A whole request was refused before any of it was taken.
    pub(crate) fn refused(&self, signal: Signal, reason: DropReason, items: u64) {
        self.signals[signal.index()]
            .refused
            .fetch_add(items, Relaxed);
        self.observer.refused(signal, reason, items);
    }

    /// Records disk records whose items are unknown.
    #[cfg_attr(not(feature = "disk-queue"), allow(dead_code))]
    pub(crate) fn corrupt_records(&self, n: u64) {
        self.corrupt_records.fetch_add(n, Relaxed);
    }

    /// Publishes the bytes held for `signal` (memory and disk).
    pub(crate) fn held(&self, signal: Signal, bytes: u64) {
        self.signals[signal.index()]
            .held_bytes
            .store(bytes, Relaxed);
    }

    /// Reports queue depth to the observer.
    pub(crate) fn depth(&self, signal: Signal) {
        let s = &self.signals[signal.index()];
        let queued = self.queued(s);
        self.observer
            .queue_depth(signal, queued, s.held_bytes.load(Relaxed));
    }

    /// `bytes` were taken into the queue.
    pub(crate) fn took_bytes(&self, bytes: u64) {
        self.intake_bytes.fetch_add(bytes, Relaxed);
    }

    pub(crate) fn intake_bytes(&self) -> u64 {
        self.intake_bytes.load(Relaxed)
    }

    pub(crate) fn admitted(&self) -> u64 {
        self.admitted.load(Relaxed)
    }

    pub(crate) fn settled(&self) -> u64 {
        self.settled.load(Relaxed)
    }

    fn queued(&self, s: &SignalCounters) -> u64 {
        let inn = s.accepted.load(Relaxed) + s.recovered.load(Relaxed);
        let out = s.sent.load(Relaxed)
            + s.dropped.iter().map(|a| a.load(Relaxed)).sum::<u64>()
            + s.failed.iter().map(|a| a.load(Relaxed)).sum::<u64>();
        inn.saturating_sub(out)
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let mut stats = Stats {
            corrupt_records: self.corrupt_records.load(Relaxed),
            ..Stats::default()
        };
        for sig in Signal::ALL {
            let s = &self.signals[sig.index()];
            let out = &mut stats.signals[sig.index()];
            // Settled counters are read before admitted ones so that a concurrent
            // settlement can only make `queued` look larger, never negative.
            out.sent = s.sent.load(Relaxed);
            out.dropped = DropReason::ALL
                .iter()
                .zip(&s.dropped)
                .map(|(r, a)| (*r, a.load(Relaxed)))
                .collect();
            out.failed = FailReason::ALL
                .iter()
                .zip(&s.failed)
                .map(|(r, a)| (*r, a.load(Relaxed)))
                .collect();
            out.accepted = s.accepted.load(Relaxed);
            out.recovered = s.recovered.load(Relaxed);
            out.queued_items = (out.accepted + out.recovered)
                .saturating_sub(out.sent + out.dropped_total() + out.failed_total());
            out.queued_bytes = s.held_bytes.load(Relaxed);
            out.refused = s.refused.load(Relaxed);
        }
        stats
    }
}

impl fmt::Debug for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Counters")
            .field("admitted", &self.admitted())
            .field("settled", &self.settled())
            .finish()
    }
}
