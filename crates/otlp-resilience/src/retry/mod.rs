//! Retry with exponential backoff, jitter, throttle hints, a retry budget and a
//! per-attempt timeout.
//!
//! ```
//! use std::time::Duration;
//! use otlp_core::{Classify, Retryability};
//! use otlp_resilience::{RetryLayer, RetryPolicy};
//! use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
//!
//! #[derive(Debug)]
//! struct Unavailable;
//! impl Classify for Unavailable {
//!     fn classify(&self) -> Retryability {
//!         Retryability::Retryable
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let policy = RetryPolicy::builder().with_initial_backoff(Duration::from_millis(10)).build()?;
//! let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
//! let counter = calls.clone();
//! let mut svc = ServiceBuilder::new()
//!     .layer(RetryLayer::new(policy))
//!     .service(service_fn(move |req: u32| {
//!         let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
//!         async move { if n == 0 { Err(Unavailable) } else { Ok(req) } }
//!     }));
//! let answer = svc.ready().await.map_err(|_| "not ready")?.call(7).await.map_err(|_| "failed")?;
//! assert_eq!(answer, 7);
//! assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;

mod budget;
mod events;
pub mod future;
mod layer;
mod policy;
mod service;
#[cfg(test)]
mod tests;

pub use self::{
    budget::RetryBudget,
    events::{GiveUp, NoopRetryEvents, RetryEvents, RetryStats},
    layer::RetryLayer,
    policy::{RetryPolicy, RetryPolicyBuilder},
    service::Retry,
};

/// What every service built by one layer shares.
#[derive(Debug)]
struct Shared {
    policy: RetryPolicy,
    events: Arc<dyn RetryEvents>,
}
