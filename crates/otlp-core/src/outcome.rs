//! What happens to exported items: the response of a successful export, and
//! the bounded set of reasons an item is dropped or fails.

use std::fmt;

use crate::Signal;

/// The answer of a successful export call.
///
/// OTLP lets a server accept a request while rejecting part of it
/// ("partial success"); `rejected` counts the rejected items and `message`
/// carries the server's explanation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportResponse {
    /// Items the server rejected (spans, data points or log records).
    pub rejected: u64,
    /// The server's explanation, empty when it gave none.
    pub message: String,
}

/// Why accepted items were dropped before they could be sent.
///
/// The set is fixed so that it can be a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// The queue was full and the overflow policy dropped the newest items.
    QueueFull,
    /// The queue was full and the overflow policy evicted the oldest items.
    Evicted,
    /// The `block` policy waited until its deadline without finding room.
    BlockTimeout,
    /// A single request was larger than the whole queue could ever hold.
    Oversized,
    /// The pipeline was shut down and the items could not be delivered before the deadline.
    Shutdown,
    /// The persistent queue's disk or quota was full.
    DiskFull,
    /// Stored data was found corrupt (checksum or torn write) when the persistent queue recovered.
    Corrupt,
}

/// Why items failed for good after an export attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailReason {
    /// The server answered with a non-retryable error.
    Permanent,
    /// Retries were exhausted (count, elapsed time or budget) on a retryable error.
    RetriesExhausted,
    /// The request was too large and could not be split any further.
    TooLarge,
    /// The server accepted the request but rejected these items (partial success).
    Rejected,
}

/// Receives item accounting events from the pipeline.
///
/// The pipeline reports every accepted item exactly once more, as sent,
/// dropped or failed, so that `accepted = sent + dropped + failed + queued`
/// holds at all times. `otlp-observability` implements this trait with
/// Prometheus counters; tests implement it with plain atomics.
///
/// All methods have empty defaults and must be cheap: they run on the
/// producer's path.
pub trait Observer: Send + Sync + fmt::Debug + 'static {
    /// Items were accepted into the pipeline.
    fn accepted(&self, signal: Signal, items: u64) {
        let _ = (signal, items);
    }
    /// Items were delivered (the server accepted them).
    fn sent(&self, signal: Signal, items: u64) {
        let _ = (signal, items);
    }
    /// Items an earlier run left in the persistent queue were found at start
    /// (intact ones and those counted as corrupt): they enter the identity
    /// beside `accepted`, `accepted + recovered = sent + dropped + failed + queued`.
    fn recovered(&self, signal: Signal, items: u64) {
        let _ = (signal, items);
    }
    /// Items were dropped before sending.
    fn dropped(&self, signal: Signal, reason: DropReason, items: u64) {
        let _ = (signal, reason, items);
    }
    /// Items failed for good.
    fn failed(&self, signal: Signal, reason: FailReason, items: u64) {
        let _ = (signal, reason, items);
    }
    /// A whole request of `items` was refused with back-pressure before any
    /// of it was taken (the sender was told to retry, or that it can never
    /// fit): not accepted, so not part of the accounting identity.
    fn refused(&self, signal: Signal, reason: DropReason, items: u64) {
        let _ = (signal, reason, items);
    }
    /// The queue now holds this many items and bytes of this signal.
    fn queue_depth(&self, signal: Signal, items: u64, bytes: u64) {
        let _ = (signal, items, bytes);
    }
    /// Items were lost (dropped or failed for good), with the reason's label
    /// and, for a failure, the upstream's last error: called beside
    /// [`dropped`](Self::dropped) / [`failed`](Self::failed), for a log of
    /// losses an operator can read (`/debug/losses`).
    fn lost(&self, signal: Signal, reason: &'static str, items: u64, cause: &str) {
        let _ = (signal, reason, items, cause);
    }
    /// A batch of `signal` spent `took` in a pipeline `stage` (open until
    /// cut, or waiting in the queue for a worker): for the stage profiler.
    fn stage_time(&self, signal: Signal, stage: PipelineStage, took: std::time::Duration) {
        let _ = (signal, stage, took);
    }
}

/// A stage of the pipeline an [`Observer`] is told the duration of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PipelineStage {
    /// From a batch's first item to its cut.
    Batch,
    /// From a batch's cut (or queueing) to a worker taking it.
    QueueWait,
}

/// What waits to be delivered, read when metrics are scraped: the pipeline
/// makes it, the self-metrics turn it into the backlog gauges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Per signal ([`Signal::index`]): how long its oldest undelivered item
    /// has waited (in an open batch, the queue, on disk, or in flight and
    /// retrying); `None` when nothing of it waits.
    pub oldest: [Option<std::time::Duration>; Signal::COUNT],
    /// Bytes the queue can still take (the disk queue's room with one,
    /// the memory queue's otherwise).
    pub free_bytes: u64,
    /// Bytes ever taken into the queue, a counter: its rate is the intake
    /// that would fill the queue during an outage.
    pub intake_bytes: u64,
}

/// An [`Observer`] that ignores every event.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopObserver;

// === impl ExportResponse ===

impl ExportResponse {
    /// A response with every item accepted.
    pub fn success() -> Self {
        Self::default()
    }

    /// A partial success: `rejected` items were refused, for `message`.
    pub fn partial(rejected: u64, message: impl Into<String>) -> Self {
        Self {
            rejected,
            message: message.into(),
        }
    }

    /// Whether the server accepted everything.
    pub fn is_full_success(&self) -> bool {
        self.rejected == 0
    }
}

// === impl DropReason ===

impl DropReason {
    /// Every reason, for pre-registering metric label sets.
    pub const ALL: [DropReason; 7] = [
        DropReason::QueueFull,
        DropReason::Evicted,
        DropReason::BlockTimeout,
        DropReason::Oversized,
        DropReason::Shutdown,
        DropReason::DiskFull,
        DropReason::Corrupt,
    ];

    /// A short, fixed label for metrics and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::Evicted => "evicted",
            DropReason::BlockTimeout => "block_timeout",
            DropReason::Oversized => "oversized",
            DropReason::Shutdown => "shutdown",
            DropReason::DiskFull => "disk_full",
            DropReason::Corrupt => "corrupt",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl FailReason ===

impl FailReason {
    /// Every reason, for pre-registering metric label sets.
    pub const ALL: [FailReason; 4] = [
        FailReason::Permanent,
        FailReason::RetriesExhausted,
        FailReason::TooLarge,
        FailReason::Rejected,
    ];

    /// A short, fixed label for metrics and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            FailReason::Permanent => "permanent",
            FailReason::RetriesExhausted => "retries_exhausted",
            FailReason::TooLarge => "too_large",
            FailReason::Rejected => "rejected",
        }
    }
}

impl fmt::Display for FailReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl NoopObserver ===

impl Observer for NoopObserver {}

impl<O: Observer + ?Sized> Observer for std::sync::Arc<O> {
    fn accepted(&self, signal: Signal, items: u64) {
        (**self).accepted(signal, items)
    }
    fn sent(&self, signal: Signal, items: u64) {
        (**self).sent(signal, items)
    }
    fn recovered(&self, signal: Signal, items: u64) {
        (**self).recovered(signal, items)
    }
    fn dropped(&self, signal: Signal, reason: DropReason, items: u64) {
        (**self).dropped(signal, reason, items)
    }
    fn failed(&self, signal: Signal, reason: FailReason, items: u64) {
        (**self).failed(signal, reason, items)
    }
    fn refused(&self, signal: Signal, reason: DropReason, items: u64) {
        (**self).refused(signal, reason, items)
    }
    fn queue_depth(&self, signal: Signal, items: u64, bytes: u64) {
        (**self).queue_depth(signal, items, bytes)
    }
    fn lost(&self, signal: Signal, reason: &'static str, items: u64, cause: &str) {
        (**self).lost(signal, reason, items, cause)
    }
    fn stage_time(&self, signal: Signal, stage: PipelineStage, took: std::time::Duration) {
        (**self).stage_time(signal, stage, took)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_unique() {
        let mut drops: Vec<_> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
        drops.sort_unstable();
        drops.dedup();
        assert_eq!(drops.len(), DropReason::ALL.len());
        let mut fails: Vec<_> = FailReason::ALL.iter().map(|r| r.as_str()).collect();
        fails.sort_unstable();
        fails.dedup();
        assert_eq!(fails.len(), FailReason::ALL.len());
    }

    #[test]
    fn partial_success_is_not_full_success() {
        assert!(ExportResponse::success().is_full_success());
        let p = ExportResponse::partial(3, "bad spans");
        assert!(!p.is_full_success());
        assert_eq!(p.rejected, 3);
    }
}
