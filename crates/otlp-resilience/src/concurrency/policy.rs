//! The adaptive concurrency knobs.

use crate::ResilienceError;

/// How [`AdaptiveConcurrency`](crate::AdaptiveConcurrency) moves its limit.
///
/// The algorithm is Vector's adaptive request concurrency (itself TCP's AIMD
/// congestion control applied to requests): once per round-trip time the
/// layer compares the window's mean RTT with an exponentially weighted moving
/// average (EWMA) of past RTTs and their deviation. Back-pressure (a
/// retryable or throttled error, a timeout, or a mean RTT above the average
/// by more than `rtt_deviation_scale` deviations) multiplies the limit by
/// `decrease_ratio`; a window that used the whole limit with an RTT no worse
/// than the average adds one.
///
/// Defaults are Vector's (`ewma_alpha` 0.4, `rtt_deviation_scale` 2.5,
/// `decrease_ratio` 0.9, start at 1), with `max_concurrency` 64: far above the
/// export workers a pipeline runs, so the workers, not the cap, bound it.
///
/// ```
/// use otlp_resilience::ConcurrencyPolicy;
///
/// let policy = ConcurrencyPolicy::builder()
///     .with_min_concurrency(2)
///     .with_max_concurrency(16)
///     .with_initial_concurrency(4)
///     .build()?;
/// assert_eq!(policy.initial_concurrency(), 4);
/// assert!(ConcurrencyPolicy::builder().with_max_concurrency(0).build().is_err());
/// # Ok::<(), otlp_resilience::ResilienceError>(())
/// ```
#[derive(Clone, Debug)]
pub struct ConcurrencyPolicy {
    pub(super) min: usize,
    pub(super) max: usize,
    pub(super) initial: usize,
    pub(super) ewma_alpha: f64,
    pub(super) rtt_deviation_scale: f64,
    pub(super) decrease_ratio: f64,
}

/// Builds a validated [`ConcurrencyPolicy`].
#[derive(Clone, Debug)]
pub struct ConcurrencyPolicyBuilder {
    policy: ConcurrencyPolicy,
}

// === impl ConcurrencyPolicy ===

impl ConcurrencyPolicy {
    /// A builder starting from the defaults.
    pub fn builder() -> ConcurrencyPolicyBuilder {
        ConcurrencyPolicyBuilder {
            policy: ConcurrencyPolicy::default(),
        }
    }
    /// The lowest limit.
    pub fn min_concurrency(&self) -> usize {
        self.min
    }
    /// The highest limit.
    pub fn max_concurrency(&self) -> usize {
        self.max
    }
    /// The limit at start.
    pub fn initial_concurrency(&self) -> usize {
        self.initial
    }
    /// The weight of the newest window in the RTT average, in `(0, 1]`.
    pub fn ewma_alpha(&self) -> f64 {
        self.ewma_alpha
    }
    /// How many deviations above the average RTT count as back-pressure.
    pub fn rtt_deviation_scale(&self) -> f64 {
        self.rtt_deviation_scale
    }
    /// The factor applied to the limit on back-pressure, in `(0, 1)`.
    pub fn decrease_ratio(&self) -> f64 {
        self.decrease_ratio
    }
}

impl Default for ConcurrencyPolicy {
    fn default() -> Self {
        ConcurrencyPolicy {
            min: 1,
            max: 64,
            initial: 1,
            ewma_alpha: 0.4,
            rtt_deviation_scale: 2.5,
            decrease_ratio: 0.9,
        }
    }
}

// === impl ConcurrencyPolicyBuilder ===

impl ConcurrencyPolicyBuilder {
    /// Sets the lowest limit (at least 1).
    pub fn with_min_concurrency(mut self, n: usize) -> Self {
        self.policy.min = n;
        self
    }
    /// Sets the highest limit (at least `min_concurrency`).
    pub fn with_max_concurrency(mut self, n: usize) -> Self {
        self.policy.max = n;
        self
    }
    /// Sets the limit at start (within min and max).
    pub fn with_initial_concurrency(mut self, n: usize) -> Self {
        self.policy.initial = n;
        self
    }
    /// Sets the EWMA weight of the newest window.
    pub fn with_ewma_alpha(mut self, a: f64) -> Self {
        self.policy.ewma_alpha = a;
        self
    }
    /// Sets how many RTT deviations count as back-pressure.
    pub fn with_rtt_deviation_scale(mut self, s: f64) -> Self {
        self.policy.rtt_deviation_scale = s;
        self
    }
    /// Sets the multiplicative decrease.
    pub fn with_decrease_ratio(mut self, r: f64) -> Self {
        self.policy.decrease_ratio = r;
        self
    }

    /// Checks every setting and returns the policy.
    ///
    /// # Errors
    ///
    /// [`ResilienceError::InvalidSettings`] listing every setting out of range.
    pub fn build(self) -> Result<ConcurrencyPolicy, ResilienceError> {
        let p = &self.policy;
        let mut problems = Vec::new();
        if p.min == 0 {
            problems.push("min_concurrency 0: must be at least 1".to_owned());
        }
        if p.max < p.min.max(1) {
            problems.push(format!(
                "max_concurrency {}: must be at least min_concurrency {} and 1",
                p.max, p.min
            ));
        }
        if p.initial < p.min || p.initial > p.max {
            problems.push(format!(
                "initial_concurrency {}: must lie within min_concurrency {} and max_concurrency {}",
                p.initial, p.min, p.max
            ));
        }
        if !(p.ewma_alpha > 0.0 && p.ewma_alpha <= 1.0) {
            problems.push(format!(
                "ewma_alpha {}: must be in (0, 1], e.g. 0.4",
                p.ewma_alpha
            ));
        }
        if !p.rtt_deviation_scale.is_finite() || p.rtt_deviation_scale < 0.0 {
            problems.push(format!(
                "rtt_deviation_scale {}: must be a finite number >= 0, e.g. 2.5",
                p.rtt_deviation_scale
            ));
        }
        if !(p.decrease_ratio > 0.0 && p.decrease_ratio < 1.0) {
            problems.push(format!(
                "decrease_ratio {}: must be in (0, 1), e.g. 0.9",
                p.decrease_ratio
            ));
        }
        ResilienceError::check("adaptive concurrency", problems)?;
        Ok(self.policy)
    }
}
