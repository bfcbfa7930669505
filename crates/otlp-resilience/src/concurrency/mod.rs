//! Adaptive concurrency (AIMD on RTT, the seed's `DynamicTuner`) and dynamic batch sizing.
//!
//! ```
//! use std::time::Duration;
//! use otlp_core::{Classify, Retryability};
//! use otlp_resilience::{AdaptiveConcurrencyLayer, ConcurrencyPolicy};
//! use tower::{ServiceExt, service_fn};
//! use tower_layer::Layer;
//!
//! #[derive(Debug)]
//! struct Unavailable;
//! impl Classify for Unavailable {
//!     fn classify(&self) -> Retryability { Retryability::Retryable }
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let policy = ConcurrencyPolicy::builder().with_initial_concurrency(10).build().unwrap();
//! let layer = AdaptiveConcurrencyLayer::new(policy);
//! let limit = layer.handle();
//! let svc = layer.layer(service_fn(|_: u32| async { Err::<(), _>(Unavailable) }));
//! for i in 0..5 {
//!     let _ = svc.clone().oneshot(i).await;
//! }
//! assert!(limit.limit() < 10, "UNAVAILABLE is back-pressure");
//! # }
//! ```

mod batch;
mod controller;
pub mod future;
mod layer;
mod policy;
mod service;
#[cfg(test)]
mod tests;

pub use self::{
    batch::{BatchSizer, BatchSizerBuilder},
    controller::ConcurrencyHandle,
    layer::AdaptiveConcurrencyLayer,
    policy::{ConcurrencyPolicy, ConcurrencyPolicyBuilder},
    service::AdaptiveConcurrency,
};
