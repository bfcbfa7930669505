//! A retry budget: a token bucket fed by requests and by time, drained by retries.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::time::Instant;

use crate::ResilienceError;

/// Bounds retries across every clone of a retry layer, so that a dead
/// collector cannot turn each export into a retry storm.
///
/// The model is Finagle's `RetryBudget` (also tower's `TpsBudget`): every first
/// attempt deposits `retry_ratio` tokens, every retry withdraws one, and a
/// reserve of `min_per_sec` tokens per second trickles in so low-traffic
/// callers can still retry. The balance never exceeds `capacity`, so quiet
/// periods cannot bank an unbounded burst. Clones share one bucket.
///
/// The default allows retries for 20% of requests plus 10 per second, with at
/// most 100 banked: Finagle's and tower's defaults, with the bank sized to ten
/// seconds of reserve.
///
/// ```
/// use otlp_resilience::RetryBudget;
///
/// let budget = RetryBudget::try_new(0.5, 0.0, 10.0)?;
/// assert!(!budget.withdraw(), "nothing deposited yet");
/// budget.deposit();
/// budget.deposit();
/// assert!(budget.withdraw(), "two requests pay for one retry");
/// assert!(!budget.withdraw());
/// # Ok::<(), otlp_resilience::ResilienceError>(())
/// ```
#[derive(Clone, Debug)]
pub struct RetryBudget {
    inner: Option<Arc<Bucket>>,
}

/// Seconds of time-based reserve a fresh budget starts with.
const RESERVE_SECS: f64 = 10.0;

#[derive(Debug)]
struct Bucket {
    retry_ratio: f64,
    min_per_sec: f64,
    capacity: f64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    balance: f64,
    refilled: Instant,
}

// === impl RetryBudget ===

impl RetryBudget {
    /// Creates a budget allowing `retry_ratio` retries per request plus
    /// `min_per_sec` per second, holding at most `capacity` tokens. It starts
    /// with ten seconds of reserve (capped at `capacity`), like tower's `TpsBudget`.
    ///
    /// # Errors
    ///
    /// [`ResilienceError::InvalidSettings`] when a number is negative, not
    /// finite, or `capacity` is below one retry.
    pub fn try_new(
        retry_ratio: f64,
        min_per_sec: f64,
        capacity: f64,
    ) -> Result<Self, ResilienceError> {
        let mut problems = Vec::new();
        if !retry_ratio.is_finite() || retry_ratio < 0.0 {
            problems.push(format!(
                "retry_ratio {retry_ratio}: must be a finite number >= 0, e.g. 0.2"
            ));
        }
        if !min_per_sec.is_finite() || min_per_sec < 0.0 {
            problems.push(format!(
                "min_per_sec {min_per_sec}: must be a finite number >= 0, e.g. 10"
            ));
        }
        if !capacity.is_finite() || capacity < 1.0 {
            problems.push(format!(
                "capacity {capacity}: must be a finite number >= 1, e.g. 100"
            ));
        }
        ResilienceError::check("retry budget", problems)?;
        Ok(RetryBudget {
            inner: Some(Arc::new(Bucket {
                retry_ratio,
                min_per_sec,
                capacity,
                state: Mutex::new(State {
                    balance: (min_per_sec * RESERVE_SECS).min(capacity),
                    refilled: Instant::now(),
                }),
            })),
        })
    }

    /// A budget that never refuses a retry (only the policy's limits apply).
    pub fn unlimited() -> Self {
        RetryBudget { inner: None }
    }

    /// Records a first attempt, earning `retry_ratio` tokens.
    pub fn deposit(&self) {
        if let Some(b) = &self.inner {
            b.with_state(|s| s.balance = (s.balance + b.retry_ratio).min(b.capacity));
        }
    }

    /// Takes one token for a retry; `false` when the budget is spent.
    pub fn withdraw(&self) -> bool {
        match &self.inner {
            None => true,
            Some(b) => b.with_state(|s| {
                if s.balance >= 1.0 {
                    s.balance -= 1.0;
                    true
                } else {
                    false
                }
            }),
        }
    }

    /// The tokens available now (`f64::INFINITY` when unlimited).
    pub fn balance(&self) -> f64 {
        match &self.inner {
            None => f64::INFINITY,
            Some(b) => b.with_state(|s| s.balance),
        }
    }
}

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget {
            inner: Some(Arc::new(Bucket {
                retry_ratio: 0.2,
                min_per_sec: 10.0,
                capacity: 100.0,
                state: Mutex::new(State {
                    balance: 100.0,
                    refilled: Instant::now(),
                }),
            })),
        }
    }
}

// === impl Bucket ===

impl Bucket {
    /// Runs `f` on the state after adding the time-based reserve. The lock is
    /// held for a few arithmetic operations only, never across an await.
    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let secs = now.saturating_duration_since(s.refilled).as_secs_f64();
        s.balance = (s.balance + secs * self.min_per_sec).min(self.capacity);
        s.refilled = now;
        f(&mut s)
    }
}
