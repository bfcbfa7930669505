//! Retry with backoff and throttling, recovery strategies and adaptive concurrency as tower layers.
//!
//! In the otlp-rust stack these layers sit between the pipeline's export
//! workers and the transport: `Recovery` (split oversized batches, reconnect,
//! slow down) above `Retry` (backoff with jitter, throttle hints, retry budget,
//! per-attempt timeout) above `AdaptiveConcurrency` (AIMD on RTT). Each is a
//! tower `Layer` usable alone, generic over the request and error: errors are
//! seen only through [`otlp_core::Classify`], requests through `Clone` and
//! [`otlp_core::Payload`] / [`otlp_core::Split`]. The crate knows nothing about
//! protobuf, gRPC or HTTP, so any tower or tonic client can take one layer
//! without the rest of the workspace. It also holds [`connect_with_retry`] for
//! start-up connections and [`BatchSizer`], the dynamic batch size controller.
//!
//! # Example
//!
//! The whole resilient stack around a flaky collector that first answers
//! `UNAVAILABLE`, then refuses requests of more than one span:
//!
//! ```
//! use std::{sync::{Arc, atomic::{AtomicU32, Ordering}}, time::Duration};
//! use bytes::Bytes;
//! use otlp_core::{Batch, Classify, ExportResponse, Retryability, Signal};
//! use otlp_resilience::{
//!     AdaptiveConcurrencyLayer, ConcurrencyPolicy, RecoveryLayer, RetryLayer, RetryPolicy,
//! };
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! #[derive(Debug)]
//! enum CollectorError { Unavailable, TooLarge }
//! impl Classify for CollectorError {
//!     fn classify(&self) -> Retryability {
//!         match self {
//!             CollectorError::Unavailable => Retryability::Retryable,
//!             CollectorError::TooLarge => Retryability::TooLarge,
//!         }
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let calls = Arc::new(AtomicU32::new(0));
//! let seen = calls.clone();
//! let collector = service_fn(move |batch: Batch| {
//!     let n = seen.fetch_add(1, Ordering::SeqCst);
//!     async move {
//!         match (n, batch.items()) {
//!             (0, _) => Err(CollectorError::Unavailable),
//!             (_, 2..) => Err(CollectorError::TooLarge),
//!             _ => Ok(ExportResponse::success()),
//!         }
//!     }
//! });
//!
//! let concurrency = AdaptiveConcurrencyLayer::new(ConcurrencyPolicy::default());
//! let limit = concurrency.handle();
//! let retry = RetryPolicy::builder().with_initial_backoff(Duration::from_millis(50)).build()?;
//! let stack = ServiceBuilder::new()
//!     .layer(RecoveryLayer::default())
//!     .layer(RetryLayer::new(retry))
//!     .layer(concurrency)
//!     .service(collector);
//!
//! // One resource, one scope, two (empty) spans.
//! let bytes = Bytes::from_static(&[0x0a, 0x06, 0x12, 0x04, 0x12, 0x00, 0x12, 0x00]);
//! let answer = stack
//!     .oneshot(Batch::from_encoded(Signal::Traces, bytes)?)
//!     .await
//!     .map_err(|e| format!("export failed: {e:?}"))?;
//! assert_eq!(answer.delivered_items(), 2);
//! assert!(answer.was_split() && answer.failed().is_empty());
//! // Unavailable, too large, then one call per span.
//! assert_eq!(calls.load(Ordering::SeqCst), 4);
//! assert!(limit.limit() >= 1);
//! # Ok(())
//! # }
//! ```
//!
//! ## With a plain tonic client
//!
//! Only `otlp-core` and this crate are needed: wrap tonic's `Status` in a
//! newtype that implements [`Classify`](otlp_core::Classify) by the OTLP
//! specification's gRPC table, and put the layers around the generated client.
//!
//! ```no_run
//! use std::{fmt, time::Duration};
//! use opentelemetry_proto::tonic::collector::trace::v1::{
//!     ExportTraceServiceRequest, trace_service_client::TraceServiceClient,
//! };
//! use otlp_core::{Classify, Retryability};
//! use otlp_resilience::{AdaptiveConcurrencyLayer, ConcurrencyPolicy, RetryLayer, RetryPolicy};
//! use tonic::{Code, Status, transport::Endpoint};
//! use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
//!
//! /// tonic's `Status`, classified for retry.
//! #[derive(Debug)]
//! struct GrpcError(Status);
//!
//! impl Classify for GrpcError {
//!     fn classify(&self) -> Retryability {
//!         match self.0.code() {
//!             Code::Cancelled | Code::DeadlineExceeded | Code::Aborted | Code::OutOfRange
//!             | Code::Unavailable | Code::DataLoss => Retryability::Retryable,
//!             // A real client reads the delay from the google.rpc.RetryInfo detail.
//!             Code::ResourceExhausted => Retryability::Throttled(Duration::from_secs(1)),
//!             _ => Retryability::Permanent,
//!         }
//!     }
//!     fn is_connection_error(&self) -> bool {
//!         self.0.code() == Code::Unavailable
//!     }
//! }
//! impl fmt::Display for GrpcError {
//!     fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
//!         write!(f, "export failed: {}", self.0)
//!     }
//! }
//! impl std::error::Error for GrpcError {}
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let channel = Endpoint::from_static("http://127.0.0.1:4317").connect_lazy();
//! let client = TraceServiceClient::new(channel);
//! let export = service_fn(move |request: ExportTraceServiceRequest| {
//!     let mut client = client.clone();
//!     async move { client.export(request).await.map(|r| r.into_inner()).map_err(GrpcError) }
//! });
//!
//! let concurrency = AdaptiveConcurrencyLayer::new(ConcurrencyPolicy::default());
//! let limit = concurrency.handle();
//! let mut svc = ServiceBuilder::new()
//!     .layer(RetryLayer::new(RetryPolicy::default()))
//!     .layer(concurrency)
//!     .service(export);
//!
//! let response = svc.ready().await?.call(ExportTraceServiceRequest::default()).await?;
//! assert!(response.partial_success.is_none_or(|p| p.rejected_spans == 0));
//! assert!(limit.limit() >= 1);
//! # Ok(())
//! # }
//! ```
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---------|---------|--------------|
//! | (none)  |         | no optional features; needs a tokio runtime with the time driver |

pub mod concurrency;
mod connect;
mod error;
pub mod recovery;
pub mod retry;
#[cfg(test)]
mod test_util;

pub use self::{
    concurrency::{
        AdaptiveConcurrency, AdaptiveConcurrencyLayer, BatchSizer, BatchSizerBuilder,
        ConcurrencyHandle, ConcurrencyPolicy, ConcurrencyPolicyBuilder,
    },
    connect::connect_with_retry,
    error::{ResilienceError, RetryError},
    recovery::{
        Action, FailedPart, Merge, Reconnect, Recovered, Recovery, RecoveryLayer, RecoveryStats,
        RecoveryStrategy, SlowDown, SplitTooLarge, StrategyStats,
    },
    retry::{
        GiveUp, NoopRetryEvents, Retry, RetryBudget, RetryEvents, RetryLayer, RetryPolicy,
        RetryPolicyBuilder, RetryStats,
    },
};
