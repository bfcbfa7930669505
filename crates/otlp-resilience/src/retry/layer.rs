//! [`RetryLayer`]: holds the policy and events sink, wraps services in [`Retry`].

use std::sync::Arc;

use tower_layer::Layer;

use super::{RetryEvents, RetryPolicy, Shared};
use crate::Retry;

/// Wraps a service in [`Retry`]; cheap to clone (one `Arc`).
///
/// Every service this layer builds shares the policy's [`RetryBudget`](crate::RetryBudget)
/// and the events sink.
#[derive(Clone, Debug)]
pub struct RetryLayer {
    shared: Arc<Shared>,
}

// === impl RetryLayer ===

impl RetryLayer {
    /// A layer retrying with `policy`, reporting to no one.
    pub fn new(policy: RetryPolicy) -> Self {
        RetryLayer {
            shared: Arc::new(Shared {
                policy,
                events: Arc::new(super::NoopRetryEvents),
            }),
        }
    }

    /// Reports every retry, throttle and give-up to `events`.
    pub fn with_events(self, events: impl RetryEvents) -> Self {
        self.with_shared_events(Arc::new(events))
    }

    /// Like [`with_events`](Self::with_events), for an events sink already shared.
    pub fn with_shared_events(self, events: Arc<dyn RetryEvents>) -> Self {
        RetryLayer {
            shared: Arc::new(Shared {
                policy: self.shared.policy.clone(),
                events,
            }),
        }
    }

    /// The policy applied.
    pub fn policy(&self) -> &RetryPolicy {
        &self.shared.policy
    }
}

impl<S> Layer<S> for RetryLayer {
    type Service = Retry<S>;

    fn layer(&self, inner: S) -> Retry<S> {
        Retry::from_shared(inner, self.shared.clone())
    }
}
