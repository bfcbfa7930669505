//! The one error type of otlp-pipeline, and the narrower error of the producer path.

use std::path::PathBuf;

use otlp_core::DropReason;

/// Everything that can go wrong building or steering a [`Pipeline`](crate::Pipeline).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// The pipeline was built outside a tokio runtime.
    #[error(
        "no tokio runtime: Pipeline::builder(..).build(..) must be called inside a tokio runtime (multi-thread or current-thread), e.g. from an async fn run by #[tokio::main]"
    )]
    NoRuntime,
    /// The configuration has one or more problems; all of them are listed.
    #[error("invalid pipeline config: {}", problems.join("; "))]
    InvalidConfig {
        /// Every problem found, each naming the field, the value and the fix.
        problems: Vec<String>,
    },
    /// The persistent queue directory could not be opened or recovered.
    #[error("disk queue in '{}': {action} failed: {source}; check the directory exists and is writable", dir.display())]
    Disk {
        /// The queue directory.
        dir: PathBuf,
        /// What was being done (e.g. "create directory", "list segments").
        action: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The persistent queue was requested but the crate was built without it.
    #[error(
        "queue.persistent is set but otlp-pipeline was built without the `disk-queue` feature: enable it or remove queue.persistent"
    )]
    DiskQueueDisabled,
    /// The pipeline is shut down.
    #[error("the pipeline is shut down: build a new one to send more data")]
    Closed,
}

/// Why a producer call did not enqueue its data.
///
/// The data was accepted into the accounting and then dropped with
/// [`reason`](TrySendError::reason) (or refused because the pipeline is
/// closed), so the counters still add up; the caller does not need to retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrySendError {
    /// The queue (the memory limit) or the disk quota is full and the overflow policy dropped the data.
    #[error(
        "memory limit exceeded: the pipeline queue is full, {items} items dropped ({reason}); raise queue.max_bytes / queue.max_items or check the collector is reachable"
    )]
    Full {
        /// The drop reason the accounting recorded.
        reason: DropReason,
        /// Items dropped.
        items: u64,
    },
    /// One request is larger than the whole queue may hold.
    #[error(
        "item of {bytes} bytes is larger than the queue limit of {limit} bytes and was dropped; raise queue.max_bytes"
    )]
    Oversized {
        /// The encoded size of the data.
        bytes: u64,
        /// The queue's byte limit.
        limit: u64,
    },
    /// The pipeline is shut down; the data was counted as dropped (shutdown).
    #[error("the pipeline is shut down; the data was dropped")]
    Closed,
}

/// Why [`Sender::admit_request`](crate::Sender::admit_request) took nothing
/// of a request.
///
/// Nothing was accepted, so nothing was dropped: the refusal is counted as
/// refused, and the sender is expected to act on it (retry later, or send
/// less).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// No room now (memory limit or disk quota): retry later.
    #[error(
        "queue is full ({reason}): the request's {items} items ({bytes} bytes) were not taken; retry later, and if this persists check that the collector is reachable or raise {}",
        full_hint(*reason)
    )]
    Full {
        /// `queue_full` (memory), `disk_full` (disk quota or write error).
        reason: DropReason,
        /// Items of the request.
        items: u64,
        /// Encoded bytes of the request.
        bytes: u64,
    },
    /// The request alone is larger than `setting` allows: it can never fit.
    #[error(
        "request of {items} items and {bytes} bytes can never fit: {setting} is {limit}; send smaller requests or raise {setting}"
    )]
    TooLarge {
        /// Items of the request.
        items: u64,
        /// Bytes it needs (on disk: including the record headers).
        bytes: u64,
        /// The setting that limits it (`queue.max_items`, `queue.max_bytes`,
        /// `queue.persistent.max_bytes`).
        setting: &'static str,
        /// That setting's value.
        limit: u64,
    },
    /// The pipeline is shutting down.
    #[error("the pipeline is shutting down; send to another replica or retry after the restart")]
    Closed,
}

fn full_hint(reason: DropReason) -> &'static str {
    match reason {
        DropReason::DiskFull => "queue.persistent.max_bytes (and the volume's size)",
        _ => "queue.max_bytes / queue.max_items (memory_limit caps queue.max_bytes)",
    }
}

// === impl Refusal ===

impl Refusal {
    /// The label the refusal is counted under.
    pub fn reason(&self) -> DropReason {
        match self {
            Refusal::Full { reason, .. } => *reason,
            Refusal::TooLarge { .. } => DropReason::Oversized,
            Refusal::Closed => DropReason::Shutdown,
        }
    }
}

// === impl TrySendError ===

impl TrySendError {
    /// The drop reason recorded for the data.
    pub fn reason(&self) -> DropReason {
        match self {
            TrySendError::Full { reason, .. } => *reason,
            TrySendError::Oversized { .. } => DropReason::Oversized,
            TrySendError::Closed => DropReason::Shutdown,
        }
    }
}
