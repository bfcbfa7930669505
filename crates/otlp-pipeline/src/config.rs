//! The pipeline's knobs as plain structs; the facade maps otlp-config onto them.

use std::{path::PathBuf, time::Duration};

use crate::PipelineError;

/// Everything a [`Pipeline`](crate::Pipeline) needs to know.
///
/// `PipelineConfig::default()` is the balanced preset: batches of 512 items
/// or 4 MiB cut at least every 5 s, a 64 MiB / 65 536 item memory queue that
/// drops the newest data when full, no disk queue, and 2 workers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipelineConfig {
    /// When a batch is cut.
    pub batch: BatchConfig,
    /// How much may wait, and what happens when it is full.
    pub queue: QueueConfig,
    /// Export workers calling the inner service concurrently (at least 1).
    pub workers: usize,
}

/// When the batcher cuts a batch: at `max_batch_size` items, `max_batch_bytes`
/// encoded bytes, or `batch_timeout` after its first item, whichever comes first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchConfig {
    /// Items (spans, data points, log records) per batch. Default 512.
    pub max_batch_size: u64,
    /// Encoded bytes per batch. Default 4 MiB (the default gRPC message limit).
    pub max_batch_bytes: u64,
    /// The longest an item waits in the batcher. Default 5 s.
    pub batch_timeout: Duration,
}

/// The bounded queue: this is the pipeline's memory limit.
///
/// `max_items` and `max_bytes` cap everything held in memory: the batchers'
/// buffers, the queued batches, and the batches being exported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueConfig {
    /// Items held in memory at most. Default 65 536.
    pub max_items: u64,
    /// Encoded bytes held in memory at most (the memory limit). Default 64 MiB.
    pub max_bytes: u64,
    /// What happens when the limit is reached. Default [`Overflow::DropNewest`].
    pub overflow: Overflow,
    /// Keep queued batches on disk instead of memory (feature `disk-queue`). Default `None`.
    pub persistent: Option<DiskQueueConfig>,
}

/// What a full queue does with new data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    /// Drop the new data (counted as `queue_full`). The producer never waits.
    DropNewest,
    /// Evict the oldest queued batches to make room (counted as `evicted`).
    DropOldest,
    /// `send` waits up to `deadline` for room, then drops (counted as
    /// `block_timeout`); `try_send` never waits and drops as `queue_full`.
    Block {
        /// The longest a producer waits.
        deadline: Duration,
    },
}

/// The persistent queue: append-only segment files in `dir`.
///
/// Cut batches are written to disk (the memory limit then covers only the
/// batchers, batches cached for the workers, and batches waiting for a full
/// disk). Records already on disk are never evicted. When the quota is full
/// or a write fails (ENOSPC):
/// - a whole request offered with [`Sender::admit_request`](crate::Sender::admit_request)
///   (the agent's intake) is refused before it is acknowledged, whatever the
///   policy (`block` first waits up to its deadline for room);
/// - a batch the library's batcher cut (items from `try_send` / `send`, which
///   were never acknowledged as durable: [`Sender::commit`](crate::Sender::commit)
///   is that acknowledgement) is dropped under `drop_newest` and `drop_oldest`
///   (counted as `disk_full`), and kept in memory under `block` until the disk
///   has room, so producers block once the memory limit is reached too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskQueueConfig {
    /// The directory holding the segment files (created if missing).
    pub dir: PathBuf,
    /// The disk quota: total bytes of all segment files. Default 1 GiB.
    pub max_bytes: u64,
    /// When written data is forced to stable storage. Default `Interval(1 s)`.
    pub fsync: FsyncPolicy,
}

/// When the disk queue calls `fsync` (`sync_data`).
///
/// Every write reaches the operating system before the producer call returns,
/// so acknowledged data survives `kill -9` under every policy; the policy
/// decides what survives a power loss or kernel crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// After every batch written.
    Always,
    /// At most this long after a write.
    Interval(Duration),
    /// Never; the OS writes back when it chooses.
    Never,
}

// === impl PipelineConfig ===

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            batch: BatchConfig::default(),
            queue: QueueConfig::default(),
            workers: 2,
        }
    }
}

impl PipelineConfig {
    /// The seed's "low latency" preset: small batches cut every 100 ms, 4 workers.
    pub fn low_latency() -> Self {
        Self {
            batch: BatchConfig {
                max_batch_size: 128,
                max_batch_bytes: 1024 * 1024,
                batch_timeout: Duration::from_millis(100),
            },
            queue: QueueConfig {
                max_items: 16_384,
                ..QueueConfig::default()
            },
            workers: 4,
        }
    }

    /// The seed's "high throughput" preset: batches of 8192 items, 10 s timeout.
    pub fn high_throughput() -> Self {
        Self {
            batch: BatchConfig {
                max_batch_size: 8192,
                max_batch_bytes: 4 * 1024 * 1024,
                batch_timeout: Duration::from_secs(10),
            },
            queue: QueueConfig {
                max_items: 262_144,
                max_bytes: 256 * 1024 * 1024,
                ..QueueConfig::default()
            },
            workers: 4,
        }
    }

    /// Checks every field and lists every problem at once.
    ///
    /// # Errors
    ///
    /// [`PipelineError::InvalidConfig`] naming each bad field, its value and the fix.
    pub fn validate(&self) -> Result<(), PipelineError> {
        let mut problems = Vec::new();
        let b = &self.batch;
        if b.max_batch_size == 0 {
            problems.push("batch.max_batch_size is 0: use at least 1 (512 is typical)".to_owned());
        }
        if b.max_batch_bytes < 64 {
            problems.push(format!(
                "batch.max_batch_bytes is {}: use at least 64 (4194304 is typical)",
                b.max_batch_bytes
            ));
        }
        if b.batch_timeout.is_zero() {
            problems
                .push("batch.batch_timeout is 0s: use a positive duration such as 5s".to_owned());
        }
        let q = &self.queue;
        if q.max_items == 0 {
            problems.push("queue.max_items is 0: use at least 1 (65536 is typical)".to_owned());
        }
        if q.max_bytes == 0 {
            problems.push("queue.max_bytes is 0: use at least 1 (67108864 is typical)".to_owned());
        }
        if let Overflow::Block { deadline } = q.overflow
            && deadline.is_zero()
        {
            problems.push(
                "queue.overflow block deadline is 0s: use a positive deadline or drop_newest"
                    .to_owned(),
            );
        }
        if let Some(d) = &q.persistent {
            if d.max_bytes < 4096 {
                problems.push(format!(
                    "queue.persistent.max_bytes is {}: use at least 4096 (1073741824 is typical)",
                    d.max_bytes
                ));
            }
            if d.dir.as_os_str().is_empty() {
                problems.push("queue.persistent.dir is empty: set a writable directory".to_owned());
            }
            if let FsyncPolicy::Interval(i) = d.fsync
                && i.is_zero()
            {
                problems.push(
                    "queue.persistent.fsync interval is 0s: use always, never or a positive interval"
                        .to_owned(),
                );
            }
        }
        if self.workers == 0 || self.workers > crate::MAX_WORKERS {
            problems.push(format!(
                "workers is {}: use 1 to {}",
                self.workers,
                crate::MAX_WORKERS
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(PipelineError::InvalidConfig { problems })
        }
    }
}

// === impl BatchConfig ===

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_batch_size: 512,
            max_batch_bytes: 4 * 1024 * 1024,
            batch_timeout: Duration::from_secs(5),
        }
    }
}

// === impl QueueConfig ===

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            max_items: 65_536,
            max_bytes: 64 * 1024 * 1024,
            overflow: Overflow::DropNewest,
            persistent: None,
        }
    }
}

// === impl DiskQueueConfig ===

impl DiskQueueConfig {
    /// A disk queue in `dir` with a 1 GiB quota and fsync every second.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            max_bytes: 1024 * 1024 * 1024,
            fsync: FsyncPolicy::Interval(Duration::from_secs(1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_lists_every_problem() {
        let mut c = PipelineConfig::default();
        c.batch.max_batch_size = 0;
        c.queue.max_bytes = 0;
        c.workers = 0;
        let err = c.validate().unwrap_err();
        let PipelineError::InvalidConfig { problems } = &err else {
            panic!("wrong error {err}");
        };
        assert_eq!(problems.len(), 3, "{problems:?}");
        let msg = err.to_string();
        assert!(msg.contains("batch.max_batch_size is 0"), "{msg}");
        assert!(msg.contains("workers is 0"), "{msg}");
    }

    #[test]
    fn presets_are_valid() {
        for c in [
            PipelineConfig::default(),
            PipelineConfig::low_latency(),
            PipelineConfig::high_throughput(),
        ] {
            c.validate().unwrap();
        }
    }
}
