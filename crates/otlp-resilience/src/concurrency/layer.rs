//! [`AdaptiveConcurrencyLayer`]: one shared limit for every service it wraps.

use std::sync::Arc;

use tower_layer::Layer;

use super::{ConcurrencyHandle, ConcurrencyPolicy, controller::Shared};
use crate::AdaptiveConcurrency;

/// Wraps services in [`AdaptiveConcurrency`], all sharing one limit (build one
/// layer per upstream endpoint). Cheap to clone (one `Arc`).
#[derive(Clone, Debug)]
pub struct AdaptiveConcurrencyLayer {
    shared: Arc<Shared>,
}

// === impl AdaptiveConcurrencyLayer ===

impl AdaptiveConcurrencyLayer {
    /// A layer whose limit starts at the policy's initial concurrency.
    pub fn new(policy: ConcurrencyPolicy) -> Self {
        AdaptiveConcurrencyLayer {
            shared: Arc::new(Shared::new(policy)),
        }
    }

    /// A handle on the shared limit.
    pub fn handle(&self) -> ConcurrencyHandle {
        ConcurrencyHandle {
            shared: self.shared.clone(),
        }
    }
}

impl<S> Layer<S> for AdaptiveConcurrencyLayer {
    type Service = AdaptiveConcurrency<S>;

    fn layer(&self, inner: S) -> AdaptiveConcurrency<S> {
        AdaptiveConcurrency::from_shared(inner, self.shared.clone())
    }
}
