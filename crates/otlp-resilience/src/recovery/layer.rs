//! [`RecoveryLayer`]: the ordered strategies and their counters.

use std::sync::{Arc, atomic::AtomicU64};

use tower_layer::Layer;

use super::{Config, Reconnect, RecoveryStats, RecoveryStrategy, SlowDown, SplitTooLarge};
use crate::Recovery;

/// Wraps services in [`Recovery`]; cheap to clone (one `Arc`). Every service
/// it builds shares the strategies and their [`RecoveryStats`].
#[derive(Clone, Debug)]
pub struct RecoveryLayer {
    config: Arc<Config>,
}

// === impl RecoveryLayer ===

impl RecoveryLayer {
    /// The most resends (`Resend` and `Reconnect` actions) one request may use.
    ///
    /// One: below this layer sits [`Retry`](crate::Retry), so each resend is a
    /// whole retry cycle again, and more than one would multiply the retry
    /// policy's elapsed budget.
    pub const DEFAULT_MAX_RESENDS: u32 = 1;

    /// A layer trying `strategies` in order.
    pub fn new(strategies: Vec<Arc<dyn RecoveryStrategy>>) -> Self {
        let stats = RecoveryStats::new(strategies.iter().map(|s| s.name()));
        RecoveryLayer {
            config: Arc::new(Config {
                strategies: strategies.into(),
                stats,
                max_resends: Self::DEFAULT_MAX_RESENDS,
                generation: AtomicU64::new(0),
            }),
        }
    }

    /// Allows at most `n` resends per request; splits are bounded by the item count.
    pub fn with_max_resends(self, n: u32) -> Self {
        RecoveryLayer {
            config: Arc::new(Config {
                strategies: self.config.strategies.clone(),
                stats: self.config.stats.clone(),
                max_resends: n,
                generation: AtomicU64::new(0),
            }),
        }
    }

    /// The counters of every strategy.
    pub fn stats(&self) -> RecoveryStats {
        self.config.stats.clone()
    }
}

impl Default for RecoveryLayer {
    /// The built-in strategies, in order: [`SplitTooLarge`], [`Reconnect`], [`SlowDown`].
    fn default() -> Self {
        RecoveryLayer::new(vec![
            Arc::new(SplitTooLarge),
            Arc::new(Reconnect::default()),
            Arc::new(SlowDown::default()),
        ])
    }
}

impl<S> Layer<S> for RecoveryLayer {
    type Service = Recovery<S>;

    fn layer(&self, inner: S) -> Recovery<S> {
        Recovery::from_config(inner, self.config.clone())
    }
}
