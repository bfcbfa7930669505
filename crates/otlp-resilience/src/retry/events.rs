//! Observable retry events: each retry, each throttle, each give-up.

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use otlp_core::Retryability;

/// Why the retry layer stopped retrying a retryable failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GiveUp {
    /// `max_retries` retries were made.
    MaxRetries,
    /// The next delay would have ended past `max_elapsed`.
    MaxElapsed,
    /// The shared retry budget was spent.
    Budget,
}

/// Receives the retry layer's events; the facade wires it to metrics.
///
/// Every method has an empty default and must be cheap: it runs inside the
/// response future.
pub trait RetryEvents: Send + Sync + fmt::Debug + 'static {
    /// Retry number `attempt` (1-based) starts after `delay`, because of `cause`.
    fn on_retry(&self, attempt: u32, delay: Duration, cause: Retryability) {
        let _ = (attempt, delay, cause);
    }
    /// The server asked to slow down; the next attempt waits `delay`.
    fn on_throttle(&self, delay: Duration) {
        let _ = delay;
    }
    /// A retryable failure is returned to the caller, for `reason`.
    fn on_give_up(&self, reason: GiveUp) {
        let _ = reason;
    }
}

/// A [`RetryEvents`] that ignores every event.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopRetryEvents;

/// A [`RetryEvents`] that counts events with atomics; clones share the counts.
///
/// ```
/// use std::time::Duration;
/// use otlp_core::Retryability;
/// use otlp_resilience::{GiveUp, RetryEvents, RetryStats};
///
/// let stats = RetryStats::default();
/// stats.on_retry(1, Duration::from_secs(1), Retryability::Retryable);
/// stats.on_give_up(GiveUp::Budget);
/// assert_eq!((stats.retries(), stats.gave_up(GiveUp::Budget)), (1, 1));
/// ```
#[derive(Clone, Debug, Default)]
pub struct RetryStats {
    inner: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    retries: AtomicU64,
    throttles: AtomicU64,
    max_retries: AtomicU64,
    max_elapsed: AtomicU64,
    budget: AtomicU64,
}

// === impl GiveUp ===

impl GiveUp {
    /// A short, fixed label for metrics and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            GiveUp::MaxRetries => "max_retries",
            GiveUp::MaxElapsed => "max_elapsed",
            GiveUp::Budget => "budget",
        }
    }
}

impl fmt::Display for GiveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl NoopRetryEvents ===

impl RetryEvents for NoopRetryEvents {}

// === impl RetryStats ===

impl RetryStats {
    /// Retries started.
    pub fn retries(&self) -> u64 {
        self.inner.retries.load(Ordering::Relaxed)
    }
    /// Throttle hints honoured.
    pub fn throttles(&self) -> u64 {
        self.inner.throttles.load(Ordering::Relaxed)
    }
    /// Give-ups for `reason`.
    pub fn gave_up(&self, reason: GiveUp) -> u64 {
        self.counter(reason).load(Ordering::Relaxed)
    }

    fn counter(&self, reason: GiveUp) -> &AtomicU64 {
        match reason {
            GiveUp::MaxRetries => &self.inner.max_retries,
            GiveUp::MaxElapsed => &self.inner.max_elapsed,
            GiveUp::Budget => &self.inner.budget,
        }
    }
}

impl RetryEvents for RetryStats {
    fn on_retry(&self, _attempt: u32, _delay: Duration, _cause: Retryability) {
        self.inner.retries.fetch_add(1, Ordering::Relaxed);
    }
    fn on_throttle(&self, _delay: Duration) {
        self.inner.throttles.fetch_add(1, Ordering::Relaxed);
    }
    fn on_give_up(&self, reason: GiveUp) {
        self.counter(reason).fetch_add(1, Ordering::Relaxed);
    }
}
