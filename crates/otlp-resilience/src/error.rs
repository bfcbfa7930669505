//! The errors of otlp-resilience: invalid settings, a timed-out attempt.

use std::{fmt, time::Duration};

use otlp_core::{Classify, Retryability};

/// Settings given to a builder of this crate were invalid.
///
/// Builders check every setting before failing, so one error lists every problem.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResilienceError {
    /// One or more settings were out of range.
    #[error("invalid {component} settings: {}", join(.problems))]
    InvalidSettings {
        /// The component being built (`retry policy`, `adaptive concurrency`, ...).
        component: &'static str,
        /// Each problem: the setting, the value given and how to fix it.
        problems: Vec<String>,
    },
}

/// The error of [`Retry`](crate::Retry): the inner service's error, or an
/// attempt that ran past the per-attempt timeout.
///
/// The retry layer keeps the inner error as it is (`Inner`); the one failure it
/// adds of its own is the per-attempt timeout, which has no inner error to
/// return. A concrete enum (rather than a boxed error) keeps it matchable, and
/// it implements [`Classify`] so the layers above keep working.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryError<E> {
    /// The inner service failed; when the error was retryable, retries were exhausted.
    Inner(E),
    /// The last attempt did not complete within the per-attempt timeout.
    AttemptTimeout {
        /// The per-attempt timeout that elapsed.
        timeout: Duration,
        /// How many attempts were made in total.
        attempts: u32,
    },
}

fn join(problems: &[String]) -> String {
    problems.join("; ")
}

// === impl ResilienceError ===

impl ResilienceError {
    /// Builds an `InvalidSettings` error when `problems` is not empty.
    pub(crate) fn check(component: &'static str, problems: Vec<String>) -> Result<(), Self> {
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ResilienceError::InvalidSettings {
                component,
                problems,
            })
        }
    }
}

// === impl RetryError ===

impl<E> RetryError<E> {
    /// The inner service's error, if the failure came from it.
    pub fn into_inner(self) -> Option<E> {
        match self {
            RetryError::Inner(e) => Some(e),
            RetryError::AttemptTimeout { .. } => None,
        }
    }

    /// A reference to the inner service's error, if the failure came from it.
    pub fn inner(&self) -> Option<&E> {
        match self {
            RetryError::Inner(e) => Some(e),
            RetryError::AttemptTimeout { .. } => None,
        }
    }
}

impl<E: Classify> Classify for RetryError<E> {
    /// A timed-out attempt is retryable, as the OTLP specification treats gRPC
    /// `DEADLINE_EXCEEDED`; the inner error keeps its own classification.
    fn classify(&self) -> Retryability {
        match self {
            RetryError::Inner(e) => e.classify(),
            RetryError::AttemptTimeout { .. } => Retryability::Retryable,
        }
    }

    fn is_connection_error(&self) -> bool {
        match self {
            RetryError::Inner(e) => e.is_connection_error(),
            RetryError::AttemptTimeout { .. } => false,
        }
    }

    fn is_invalid_request(&self) -> bool {
        self.inner().is_some_and(Classify::is_invalid_request)
    }
}

impl<E: fmt::Display> fmt::Display for RetryError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetryError::Inner(e) => fmt::Display::fmt(e, f),
            RetryError::AttemptTimeout { timeout, attempts } => write!(
                f,
                "export attempt {attempts} timed out after {timeout:?}; raise the per-attempt timeout or check the collector's latency"
            ),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for RetryError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RetryError::Inner(e) => e.source(),
            RetryError::AttemptTimeout { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Bad;
    impl Classify for Bad {
        fn classify(&self) -> Retryability {
            Retryability::Permanent
        }
    }

    #[test]
    fn attempt_timeout_is_retryable_and_inner_keeps_its_class() {
        let t: RetryError<Bad> = RetryError::AttemptTimeout {
            timeout: Duration::from_secs(1),
            attempts: 2,
        };
        assert!(t.classify().is_retryable());
        assert_eq!(RetryError::Inner(Bad).classify(), Retryability::Permanent);
    }

    #[test]
    fn invalid_settings_lists_every_problem() {
        let err = ResilienceError::check("retry policy", vec!["a".into(), "b".into()]);
        let msg = err.map_err(|e| e.to_string()).err();
        assert_eq!(msg.as_deref(), Some("invalid retry policy settings: a; b"));
        assert!(ResilienceError::check("x", Vec::new()).is_ok());
    }
}
