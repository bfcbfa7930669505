//! Batching, bounded memory and disk queues, export workers, flush and shutdown.
//!
//! otlp-pipeline sits between the producers (the SDK bridge, the agent's
//! receivers) and the export service stack (metrics, recovery, retry, adaptive
//! concurrency, timeout, transport), which it sees only as a
//! `tower::Service<Batch>`. Producers hand it encoded items ([`Item`]) or
//! whole encoded requests ([`Batch`](otlp_core::Batch)) through a [`Sender`]
//! that never waits on the network; a batcher per signal appends each item to
//! its (resource, scope) buffer and cuts a batch by size, bytes or timeout; the
//! bounded queue (the memory limit, optionally backed by crash-safe segment
//! files on disk) applies the overflow policy; N workers export. Every item is
//! accounted exactly once as sent, dropped, failed or still queued ([`Stats`]).
//!
//! # Example
//!
//! ```
//! use std::{convert::Infallible, time::Duration};
//!
//! use bytes::Bytes;
//! use otlp_core::{Batch, ExportResponse, Signal};
//! use otlp_pipeline::{Group, Item, Pipeline, PipelineConfig};
//!
//! #[derive(Debug)]
//! struct Never;
//! impl std::fmt::Display for Never {
//!     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
//!         f.write_str("never")
//!     }
//! }
//! impl otlp_core::Classify for Never {
//!     fn classify(&self) -> otlp_core::Retryability {
//!         otlp_core::Retryability::Permanent
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! // An in-memory "collector" that accepts everything.
//! let service = tower::service_fn(|_batch: Batch| async { Ok::<_, Never>(ExportResponse::success()) });
//! let pipeline = Pipeline::builder(PipelineConfig::default()).build(service)?;
//!
//! let tx = pipeline.sender();
//! let resource = Group::resource(b"", "");
//! let scope = Group::scope(b"\x0a\x03app", ""); // InstrumentationScope { name: "app" }
//! for _ in 0..10 {
//!     // An encoded Span with name "s" (field 5).
//!     let span = Bytes::from_static(b"\x2a\x01s");
//!     tx.try_send(Item::new(Signal::Traces, resource.clone(), scope.clone(), span, 1))?;
//! }
//! pipeline.flush().await;
//! let report = pipeline.shutdown(Duration::from_secs(1)).await;
//! assert_eq!(report.sent, 10);
//! assert_eq!(report.stats.signal(Signal::Traces).accepted, 10);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Feature flags
//!
//! | feature      | default | what it adds |
//! |--------------|---------|--------------|
//! | `disk-queue` | no      | the persistent queue ([`DiskQueueConfig`]): append-only segment files with a CRC32 per record, fsync policy, quota, recovery on start (adds `crc32fast`) |

mod batcher;
mod config;
#[cfg(feature = "disk-queue")]
mod disk;
mod error;
mod item;
mod pipeline;
mod stats;

pub use self::{
    batcher::Batcher,
    config::{BatchConfig, DiskQueueConfig, FsyncPolicy, Overflow, PipelineConfig, QueueConfig},
    error::{PipelineError, Refusal, TrySendError},
    item::{Group, Item},
    pipeline::{BacklogProbe, MAX_WORKERS, Offer, Pipeline, PipelineBuilder, Sender},
    stats::{ShutdownReport, SignalStats, Stats},
};
