//! The shared vocabulary of otlp-rust: signals, encoded batches, export
//! outcomes and error classification.
//!
//! Every other crate of the workspace depends on this one and on no sibling.
//! It holds only what they must agree on: the [`Batch`] that flows through the
//! pipeline (an encoded OTLP export request with its item count), the
//! [`Retryability`] classification that retry and recovery act on, the
//! [`ExportResponse`] of a successful call (including partial success), and the
//! bounded [`DropReason`] / [`FailReason`] sets the accounting reports in.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use otlp_core::{Batch, Classify, Retryability, Signal};
//!
//! // One resource, one scope, two (empty) spans.
//! let bytes = Bytes::from_static(&[0x0a, 0x06, 0x12, 0x04, 0x12, 0x00, 0x12, 0x00]);
//! let batch = Batch::from_encoded(Signal::Traces, bytes)?;
//! assert_eq!(batch.items(), 2);
//!
//! let (left, right) = batch.try_split()?.expect("two spans split into two halves");
//! assert_eq!((left.items(), right.items()), (1, 1));
//!
//! #[derive(Debug)]
//! struct Unavailable;
//! impl Classify for Unavailable {
//!     fn classify(&self) -> Retryability {
//!         Retryability::Retryable
//!     }
//! }
//! assert!(Unavailable.classify().is_retryable());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---------|---------|--------------|
//! | `tonic` | no      | [`Classify`] for `tonic::Status` by the OTLP/gRPC retry rules ([`grpc::grpc_retryability`]), so a plain tonic client can take otlp-resilience's layers; without it the crate depends only on `bytes` and `thiserror` |

mod batch;
mod classify;
mod error;
pub mod grpc;
mod outcome;
mod payload;
mod signal;
mod validate;
mod wire;

pub use self::{
    batch::{Batch, RouteKey, RouteSplit, count_items},
    classify::{Classify, DEFAULT_EXPORT_TIMEOUT, MAX_THROTTLE, Retryability, retry_defaults},
    error::{DecodeError, JoinError},
    outcome::{
        Backlog, DropReason, ExportResponse, FailReason, NoopObserver, Observer, PipelineStage,
    },
    payload::{Payload, Split},
    signal::{Signal, UnknownSignal},
    validate::{InvalidRequest, MAX_ANY_VALUE_DEPTH, validate},
};
