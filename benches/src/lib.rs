//! The benchmark harness of otlp-rust: the span shape, a counting OTLP
//! receiver, the opentelemetry-otlp peer, and criterion benches of the core.
//!
//! This package sits beside the product, not in it: it depends on `otlp-core`
//! and on the facade `otlp` (with its SDK bridge) for our producers and on the peer
//! crates `opentelemetry_sdk` and `opentelemetry-otlp`, which no product crate
//! links. `cargo xtask bench` builds its binaries in release and runs each
//! scenario as separate processes: `count-sink` receives and counts, and a
//! producer (`peer-otlp`, or ours: `ours-native` through the facade API and
//! `ours-sdk` through the SDK bridge) creates [`shape`] spans or log records
//! as fast as it can. The criterion benches in `benches/` measure the pieces.
//!
//! # Example
//!
//! ```
//! use otlp_benches::{SinkConfig, shape};
//! use otlp_core::{Signal, count_items};
//!
//! // Every producer creates exactly this shape; the sink counts it on the wire.
//! let request = shape::encode(&shape::trace_request(3))?;
//! assert_eq!(count_items(Signal::Traces, &request)?, 3);
//! assert!(shape::span_encoded_len() > 300);
//!
//! let config = SinkConfig::from_args(["--expect".to_owned(), "1000".to_owned()])?;
//! assert_eq!(config.expect, Some(1000));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---------|---------|--------------|
//! | (none)  |         | the harness has no optional features; the peer crates are always built |

mod args;
mod error;
pub mod ours;
pub mod peer;
pub mod shape;
mod sink;

pub use self::{
    error::BenchesError,
    ours::{OursConfig, OursReport},
    peer::{Compression, PeerConfig, PeerReport, Protocol},
    sink::{DEFAULT_MAX_BODY, SignalStats, Sink, SinkConfig, Snapshot, process_cpu_s},
};
