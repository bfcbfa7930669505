//! Establishing a connection with retry: the seed's `connect_with_retry`.

use std::{fmt::Display, future::Future};

use otlp_core::Classify;
use tokio::time::{Instant, sleep, timeout};

use crate::{RetryError, RetryPolicy};

/// Calls `make` until it succeeds, waiting the policy's backoff between
/// attempts, and logs each failure with its cause and the next delay.
///
/// Exporters and the CLI use it at start-up, with [`RetryPolicy::for_connect`].
/// An error that classifies as not retryable (a bad URI, a TLS configuration
/// error) is returned at once; so is the last error when the policy's count,
/// elapsed time or budget runs out. A throttle hint in the error raises the
/// next delay like it does in [`Retry`](crate::Retry).
///
/// # Errors
///
/// The last error of `make`, as [`RetryError::Inner`], or
/// [`RetryError::AttemptTimeout`] when the last attempt ran past the policy's
/// per-attempt timeout.
///
/// # Cancel safety
///
/// Dropping the future drops the attempt in flight; nothing else is held.
///
/// ```
/// use std::time::Duration;
/// use otlp_core::{Classify, Retryability};
/// use otlp_resilience::{RetryPolicy, connect_with_retry};
///
/// #[derive(Debug)]
/// struct Refused;
/// impl Classify for Refused {
///     fn classify(&self) -> Retryability { Retryability::Retryable }
///     fn is_connection_error(&self) -> bool { true }
/// }
/// impl std::fmt::Display for Refused {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("connection refused")
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let mut attempts = 0;
/// let conn = connect_with_retry(
///     || {
///         attempts += 1;
///         let n = attempts;
///         async move { if n < 3 { Err(Refused) } else { Ok("connected") } }
///     },
///     &RetryPolicy::for_connect(),
/// )
/// .await;
/// assert_eq!(conn.ok(), Some("connected"));
/// assert_eq!(attempts, 3);
/// # }
/// ```
pub async fn connect_with_retry<T, E, F, Fut>(
    mut make: F,
    policy: &RetryPolicy,
) -> Result<T, RetryError<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Classify + Display,
{
    let started = Instant::now();
    let mut retries: u32 = 0;
    loop {
        let attempt = make();
        let result = match policy.attempt_timeout() {
            Some(limit) => match timeout(limit, attempt).await {
                Ok(r) => r.map_err(RetryError::Inner),
                Err(_) => Err(RetryError::AttemptTimeout {
                    timeout: limit,
                    attempts: retries + 1,
                }),
            },
            None => attempt.await.map_err(RetryError::Inner),
        };
        let error = match result {
            Ok(conn) => {
                if retries > 0 {
                    tracing::info!(attempt = retries + 1, "connection established");
                }
                return Ok(conn);
            }
            Err(e) => e,
        };
        let class = error.classify();
        let next = retries + 1;
        if !class.is_retryable() {
            tracing::error!(attempt = next, error = %error, "connection failed and cannot succeed by retrying");
            return Err(error);
        }
        let delay = policy.delay(next, class.throttle());
        let out_of_count = policy.max_retries().is_some_and(|max| next > max);
        let out_of_time = started.elapsed().saturating_add(delay) > policy.max_elapsed();
        if out_of_count || out_of_time || !policy.budget().withdraw() {
            tracing::error!(attempts = next, error = %error, "all connection attempts failed");
            return Err(error);
        }
        tracing::warn!(attempt = next, error = %error, next_delay = ?delay, "connection attempt failed, retrying");
        sleep(delay).await;
        retries = next;
    }
}
