//! The [`RecoveryStrategy`] trait, its [`Action`]s, the built-in strategies
//! and the per-strategy counters.

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use otlp_core::{Classify, Payload, Retryability};

/// One way to recover from a failed export (the seed's `RecoveryStrategy`).
///
/// [`Recovery`](crate::Recovery) asks its strategies in order; the first whose
/// [`can_handle`](Self::can_handle) accepts the error decides the
/// [`Action`]. A strategy sees the error through [`Classify`] and the request
/// through [`Payload`], so one strategy serves every request and error type.
///
/// ```
/// use std::time::Duration;
/// use otlp_core::{Classify, Payload, Retryability};
/// use otlp_resilience::{Action, RecoveryStrategy};
///
/// /// Waits a minute before one more try after a permanent error.
/// #[derive(Debug)]
/// struct Patient;
///
/// impl RecoveryStrategy for Patient {
///     fn name(&self) -> &'static str {
///         "patient"
///     }
///     fn can_handle(&self, error: &dyn Classify) -> bool {
///         error.classify() == Retryability::Permanent
///     }
///     fn recover(&self, _error: &dyn Classify, _request: &dyn Payload) -> Action {
///         Action::Resend { delay: Duration::from_secs(60) }
///     }
/// }
/// ```
pub trait RecoveryStrategy: Send + Sync + fmt::Debug + 'static {
    /// A short, fixed name for logs and counters.
    fn name(&self) -> &'static str;
    /// Whether this strategy applies to `error`.
    fn can_handle(&self, error: &dyn Classify) -> bool;
    /// What to do about `error`, raised by `request`.
    fn recover(&self, error: &dyn Classify, request: &dyn Payload) -> Action;
}

/// What a strategy asks [`Recovery`](crate::Recovery) to do with a failed request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Split the request in halves ([`Split`](otlp_core::Split)) and send each,
    /// recovering each on its own. A request that cannot be split fails.
    Split,
    /// Send the same request again after `delay`.
    Resend {
        /// How long to wait first.
        delay: Duration,
    },
    /// Rebuild the inner service (when [`Recovery::with_reconnect`](crate::Recovery::with_reconnect)
    /// gave a factory), then send the same request again after `delay`.
    Reconnect {
        /// How long to wait first.
        delay: Duration,
    },
    /// Nothing to do: the error stands.
    GiveUp,
}

/// Splits a request the server refused as too large (the `TooLarge` class).
#[derive(Clone, Copy, Debug, Default)]
pub struct SplitTooLarge;

/// Re-establishes the connection after a connection-level error
/// ([`Classify::is_connection_error`]), then resends.
#[derive(Clone, Copy, Debug)]
pub struct Reconnect {
    delay: Duration,
}

/// Waits out a throttle hint the retry layer below could not absorb, then resends.
///
/// The hint is clamped to `[min_delay, max_delay]`.
#[derive(Clone, Copy, Debug)]
pub struct SlowDown {
    min_delay: Duration,
    max_delay: Duration,
}

/// Counts what each strategy of one [`RecoveryLayer`](crate::RecoveryLayer) did;
/// clones share the counts.
#[derive(Clone, Debug)]
pub struct RecoveryStats {
    pub(super) strategies: Arc<[StrategyCounters]>,
}

/// The counts of one strategy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StrategyStats {
    /// Times the strategy was chosen for a failure.
    pub applied: u64,
    /// Requests it produced (a half, a resend) that then succeeded.
    pub succeeded: u64,
    /// Requests it produced that then failed again.
    pub failed: u64,
}

#[derive(Debug)]
pub(super) struct StrategyCounters {
    name: &'static str,
    applied: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
}

// === impl SplitTooLarge ===

impl RecoveryStrategy for SplitTooLarge {
    fn name(&self) -> &'static str {
        "split_too_large"
    }
    fn can_handle(&self, error: &dyn Classify) -> bool {
        error.classify() == Retryability::TooLarge
    }
    fn recover(&self, _error: &dyn Classify, request: &dyn Payload) -> Action {
        if request.items() > 1 {
            Action::Split
        } else {
            Action::GiveUp
        }
    }
}

// === impl Reconnect ===

impl Reconnect {
    /// Waits `delay` after rebuilding the connection before resending.
    pub const fn new(delay: Duration) -> Self {
        Reconnect { delay }
    }
}

impl Default for Reconnect {
    /// One second: long enough for a restarted collector's listener, short
    /// next to the retry layer's 5s first backoff.
    fn default() -> Self {
        Reconnect::new(Duration::from_secs(1))
    }
}

impl RecoveryStrategy for Reconnect {
    fn name(&self) -> &'static str {
        "reconnect"
    }
    fn can_handle(&self, error: &dyn Classify) -> bool {
        error.is_connection_error()
    }
    fn recover(&self, _error: &dyn Classify, _request: &dyn Payload) -> Action {
        Action::Reconnect { delay: self.delay }
    }
}

// === impl SlowDown ===

impl SlowDown {
    /// Clamps throttle hints to `[min_delay, max_delay]`.
    pub const fn new(min_delay: Duration, max_delay: Duration) -> Self {
        SlowDown {
            min_delay,
            max_delay,
        }
    }
}

impl Default for SlowDown {
    /// At least 1s, at most 60s (the retry policy's default throttle cap).
    fn default() -> Self {
        SlowDown::new(Duration::from_secs(1), Duration::from_secs(60))
    }
}

impl RecoveryStrategy for SlowDown {
    fn name(&self) -> &'static str {
        "slow_down"
    }
    fn can_handle(&self, error: &dyn Classify) -> bool {
        error.classify().throttle().is_some()
    }
    fn recover(&self, error: &dyn Classify, _request: &dyn Payload) -> Action {
        let hint = error.classify().throttle().unwrap_or(self.min_delay);
        Action::Resend {
            delay: hint.clamp(self.min_delay, self.max_delay.max(self.min_delay)),
        }
    }
}

// === impl RecoveryStats ===

impl RecoveryStats {
    pub(super) fn new(names: impl Iterator<Item = &'static str>) -> Self {
        RecoveryStats {
            strategies: names
                .map(|name| StrategyCounters {
                    name,
                    applied: AtomicU64::new(0),
                    succeeded: AtomicU64::new(0),
                    failed: AtomicU64::new(0),
                })
                .collect(),
        }
    }

    /// The counts of the strategy named `name`, if the layer has it.
    pub fn strategy(&self, name: &str) -> Option<StrategyStats> {
        self.strategies
            .iter()
            .find(|c| c.name == name)
            .map(StrategyCounters::snapshot)
    }

    /// Every strategy's name and counts, in order.
    pub fn snapshot(&self) -> Vec<(&'static str, StrategyStats)> {
        self.strategies
            .iter()
            .map(|c| (c.name, c.snapshot()))
            .collect()
    }

    pub(super) fn applied(&self, i: usize) {
        if let Some(c) = self.strategies.get(i) {
            c.applied.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(super) fn outcome(&self, i: usize, ok: bool) {
        if let Some(c) = self.strategies.get(i) {
            let counter = if ok { &c.succeeded } else { &c.failed };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
}

// === impl StrategyCounters ===

impl StrategyCounters {
    fn snapshot(&self) -> StrategyStats {
        StrategyStats {
            applied: self.applied.load(Ordering::Relaxed),
            succeeded: self.succeeded.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }
}
