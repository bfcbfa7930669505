//! Recovery strategies (the seed's `AutoRecovery`): split what is too large,
//! reconnect after connection errors, slow down on throttling.
//!
//! ```
//! use otlp_core::{Classify, ExportResponse, Payload, Retryability, Split};
//! use otlp_resilience::RecoveryLayer;
//! use tower::{ServiceExt, service_fn};
//! use tower_layer::Layer;
//!
//! /// A request of `n` items that splits in halves.
//! #[derive(Clone, Debug)]
//! struct Items(u64);
//! impl Payload for Items {
//!     fn items(&self) -> u64 { self.0 }
//!     fn byte_size(&self) -> usize { self.0 as usize * 100 }
//! }
//! impl Split for Items {
//!     fn split(&self) -> Option<(Self, Self)> {
//!         (self.0 > 1).then(|| (Items(self.0 / 2), Items(self.0 - self.0 / 2)))
//!     }
//! }
//!
//! #[derive(Debug)]
//! struct TooLarge;
//! impl Classify for TooLarge {
//!     fn classify(&self) -> Retryability { Retryability::TooLarge }
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! // The server takes at most 3 items per request.
//! let server = service_fn(|req: Items| async move {
//!     if req.0 > 3 { Err(TooLarge) } else { Ok(ExportResponse::success()) }
//! });
//! let layer = RecoveryLayer::default();
//! let answer = layer.layer(server).oneshot(Items(10)).await.ok().unwrap();
//! assert_eq!(answer.delivered_items(), 10);
//! assert!(answer.was_split() && answer.failed().is_empty());
//! assert_eq!(layer.stats().strategy("split_too_large").unwrap().applied, 3);
//! # }
//! ```

use std::sync::{Arc, atomic::AtomicU64};

pub mod future;
mod layer;
mod response;
mod service;
mod strategy;
#[cfg(test)]
mod tests;

pub use self::{
    layer::RecoveryLayer,
    response::{FailedPart, Merge, Recovered},
    service::Recovery,
    strategy::{
        Action, Reconnect, RecoveryStats, RecoveryStrategy, SlowDown, SplitTooLarge, StrategyStats,
    },
};

/// What every service built by one layer shares.
#[derive(Debug)]
struct Config {
    strategies: Arc<[Arc<dyn RecoveryStrategy>]>,
    stats: RecoveryStats,
    max_resends: u32,
    /// Bumped by each reconnect, so every clone rebuilds its connection.
    generation: AtomicU64,
}
