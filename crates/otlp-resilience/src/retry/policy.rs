//! The retry knobs: backoff schedule, limits and per-attempt timeout.

use std::time::Duration;

use crate::{ResilienceError, RetryBudget};

/// How [`Retry`](crate::Retry) and [`connect_with_retry`](crate::connect_with_retry)
/// space and bound their attempts.
///
/// The defaults are [`otlp_core::retry_defaults`], the one home the config
/// shares: 1s doubling to 30s with 20% jitter, 300s in all. The OTLP
/// specification asks for exponential backoff with jitter and leaves the
/// numbers open. There is no attempt count limit (`max_retries` is unset):
/// the elapsed budget bounds the retries.
/// The per-attempt timeout defaults to 10s, the specification's default
/// `OTEL_EXPORTER_OTLP_TIMEOUT` ([`otlp_core::DEFAULT_EXPORT_TIMEOUT`]).
/// Server throttle hints are honoured up to five minutes
/// ([`otlp_core::MAX_THROTTLE`], the cap the transport applies when it parses
/// them), so a misbehaving server cannot park an exporter for hours.
///
/// ```
/// use std::time::Duration;
/// use otlp_resilience::RetryPolicy;
///
/// let policy = RetryPolicy::builder()
///     .with_initial_backoff(Duration::from_millis(100))
///     .with_max_backoff(Duration::from_secs(2))
///     .with_jitter(0.0)
///     .with_max_retries(Some(3))
///     .build()?;
/// assert_eq!(policy.base_backoff(1), Duration::from_millis(100));
/// assert_eq!(policy.base_backoff(2), Duration::from_millis(200));
/// # Ok::<(), otlp_resilience::ResilienceError>(())
/// ```
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    initial_backoff: Duration,
    multiplier: f64,
    max_backoff: Duration,
    jitter: f64,
    max_retries: Option<u32>,
    max_elapsed: Duration,
    attempt_timeout: Option<Duration>,
    max_throttle: Duration,
    budget: RetryBudget,
}

/// Builds a validated [`RetryPolicy`].
#[derive(Clone, Debug)]
pub struct RetryPolicyBuilder {
    policy: RetryPolicy,
}

// === impl RetryPolicy ===

impl RetryPolicy {
    /// Default first backoff ([`otlp_core::retry_defaults::INITIAL_BACKOFF`]).
    pub const DEFAULT_INITIAL_BACKOFF: Duration = otlp_core::retry_defaults::INITIAL_BACKOFF;
    /// Default backoff growth factor ([`otlp_core::retry_defaults::MULTIPLIER`]).
    pub const DEFAULT_MULTIPLIER: f64 = otlp_core::retry_defaults::MULTIPLIER;
    /// Default largest backoff ([`otlp_core::retry_defaults::MAX_BACKOFF`]).
    pub const DEFAULT_MAX_BACKOFF: Duration = otlp_core::retry_defaults::MAX_BACKOFF;
    /// Default jitter fraction ([`otlp_core::retry_defaults::JITTER`]).
    pub const DEFAULT_JITTER: f64 = otlp_core::retry_defaults::JITTER;
    /// Default total time budget ([`otlp_core::retry_defaults::MAX_ELAPSED`]).
    pub const DEFAULT_MAX_ELAPSED: Duration = otlp_core::retry_defaults::MAX_ELAPSED;
    /// Default per-attempt timeout (OTLP `OTEL_EXPORTER_OTLP_TIMEOUT` default, 10s).
    pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = otlp_core::DEFAULT_EXPORT_TIMEOUT;
    /// Default cap on a server's throttle hint (five minutes).
    pub const DEFAULT_MAX_THROTTLE: Duration = otlp_core::MAX_THROTTLE;

    /// A builder starting from the defaults.
    pub fn builder() -> RetryPolicyBuilder {
        RetryPolicyBuilder {
            policy: RetryPolicy::default(),
        }
    }

    /// The seed's `AutoReconnect` preset for establishing a connection at
    /// start-up: 100ms doubling to 30s, five retries, jitter 0.2, one minute in all,
    /// each attempt bounded by 10s, and no shared budget (one caller).
    pub fn for_connect() -> Self {
        RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            multiplier: 2.0,
            max_backoff: Duration::from_secs(30),
            jitter: 0.2,
            max_retries: Some(5),
            max_elapsed: Duration::from_secs(60),
            attempt_timeout: Some(Self::DEFAULT_ATTEMPT_TIMEOUT),
            max_throttle: Self::DEFAULT_MAX_THROTTLE,
            budget: RetryBudget::unlimited(),
        }
    }

    /// The backoff before retry number `retry` (1-based), before jitter:
    /// `initial * multiplier^(retry-1)`, capped at `max_backoff`.
    pub fn base_backoff(&self, retry: u32) -> Duration {
        let exp = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
        let secs = self.initial_backoff.as_secs_f64() * self.multiplier.powi(exp);
        let max = self.max_backoff.as_secs_f64();
        if !secs.is_finite() || secs >= max {
            self.max_backoff
        } else {
            Duration::from_secs_f64(secs)
        }
    }

    /// The delay before retry number `retry`: the base backoff spread uniformly
    /// over `±jitter` of itself, then raised to the server's throttle hint (capped
    /// at `max_throttle`) when there is one.
    ///
    /// As in the Collector, a jittered delay may exceed `max_backoff` by up to the
    /// jitter fraction; the base never does.
    pub fn delay(&self, retry: u32, throttle: Option<Duration>) -> Duration {
        let base = self.base_backoff(retry);
        let spread = if self.jitter > 0.0 {
            1.0 - self.jitter + 2.0 * self.jitter * fastrand::f64()
        } else {
            1.0
        };
        let delay = base.mul_f64(spread);
        match throttle {
            Some(hint) => delay.max(hint.min(self.max_throttle)),
            None => delay,
        }
    }

    /// The first backoff.
    pub fn initial_backoff(&self) -> Duration {
        self.initial_backoff
    }
    /// The growth factor between backoffs.
    pub fn multiplier(&self) -> f64 {
        self.multiplier
    }
    /// The largest base backoff.
    pub fn max_backoff(&self) -> Duration {
        self.max_backoff
    }
    /// The jitter fraction in `[0, 1]`.
    pub fn jitter(&self) -> f64 {
        self.jitter
    }
    /// The largest number of retries after the first attempt, if limited.
    pub fn max_retries(&self) -> Option<u32> {
        self.max_retries
    }
    /// The total time from the first attempt after which no retry starts.
    pub fn max_elapsed(&self) -> Duration {
        self.max_elapsed
    }
    /// The timeout of each attempt, if any.
    pub fn attempt_timeout(&self) -> Option<Duration> {
        self.attempt_timeout
    }
    /// The cap on a server throttle hint.
    pub fn max_throttle(&self) -> Duration {
        self.max_throttle
    }
    /// The retry budget shared by every clone of a retry layer built from this policy.
    pub fn budget(&self) -> &RetryBudget {
        &self.budget
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_backoff: Self::DEFAULT_INITIAL_BACKOFF,
            multiplier: Self::DEFAULT_MULTIPLIER,
            max_backoff: Self::DEFAULT_MAX_BACKOFF,
            jitter: Self::DEFAULT_JITTER,
            max_retries: None,
            max_elapsed: Self::DEFAULT_MAX_ELAPSED,
            attempt_timeout: Some(Self::DEFAULT_ATTEMPT_TIMEOUT),
            max_throttle: Self::DEFAULT_MAX_THROTTLE,
            budget: RetryBudget::default(),
        }
    }
}

// === impl RetryPolicyBuilder ===

impl RetryPolicyBuilder {
    /// Sets the first backoff (must be non-zero).
    pub fn with_initial_backoff(mut self, d: Duration) -> Self {
        self.policy.initial_backoff = d;
        self
    }
    /// Sets the growth factor (must be finite and at least 1).
    pub fn with_multiplier(mut self, m: f64) -> Self {
        self.policy.multiplier = m;
        self
    }
    /// Sets the largest base backoff (at least the initial backoff).
    pub fn with_max_backoff(mut self, d: Duration) -> Self {
        self.policy.max_backoff = d;
        self
    }
    /// Sets the jitter fraction, in `[0, 1]`; 0 gives an exact schedule.
    pub fn with_jitter(mut self, j: f64) -> Self {
        self.policy.jitter = j;
        self
    }
    /// Sets the largest number of retries; `None` leaves only the elapsed budget.
    pub fn with_max_retries(mut self, n: Option<u32>) -> Self {
        self.policy.max_retries = n;
        self
    }
    /// Sets the total time budget (must be non-zero).
    pub fn with_max_elapsed(mut self, d: Duration) -> Self {
        self.policy.max_elapsed = d;
        self
    }
    /// Sets the per-attempt timeout; `None` lets each attempt run as long as the inner service does.
    pub fn with_attempt_timeout(mut self, d: Option<Duration>) -> Self {
        self.policy.attempt_timeout = d;
        self
    }
    /// Sets the cap on a server throttle hint.
    pub fn with_max_throttle(mut self, d: Duration) -> Self {
        self.policy.max_throttle = d;
        self
    }
    /// Sets the retry budget.
    pub fn with_budget(mut self, budget: RetryBudget) -> Self {
        self.policy.budget = budget;
        self
    }

    /// Checks every setting and returns the policy.
    ///
    /// # Errors
    ///
    /// [`ResilienceError::InvalidSettings`] listing every setting out of range.
    pub fn build(self) -> Result<RetryPolicy, ResilienceError> {
        let p = &self.policy;
        let mut problems = Vec::new();
        if p.initial_backoff.is_zero() {
            problems.push("initial_backoff 0s: must be positive, e.g. 5s".to_owned());
        }
        if !p.multiplier.is_finite() || p.multiplier < 1.0 {
            problems.push(format!(
                "multiplier {}: must be a finite number >= 1, e.g. 1.5",
                p.multiplier
            ));
        }
        if p.max_backoff < p.initial_backoff {
            problems.push(format!(
                "max_backoff {:?}: must be at least initial_backoff {:?}",
                p.max_backoff, p.initial_backoff
            ));
        }
        if !(0.0..=1.0).contains(&p.jitter) {
            problems.push(format!(
                "jitter {}: must be within 0 and 1, e.g. 0.5",
                p.jitter
            ));
        }
        if p.max_elapsed.is_zero() {
            problems.push("max_elapsed 0s: must be positive, e.g. 300s".to_owned());
        }
        if p.attempt_timeout.is_some_and(|t| t.is_zero()) {
            problems
                .push("attempt_timeout 0s: must be positive, or unset to disable it".to_owned());
        }
        ResilienceError::check("retry policy", problems)?;
        Ok(self.policy)
    }
}
