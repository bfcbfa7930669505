//! The limits a receiver enforces on every connection and request.

use std::time::Duration;

use crate::receive::{IntakeBudget, ReceiveError};

/// Limits that hold under hostile input, shared by the gRPC and HTTP receivers.
///
/// Every limit refuses early: an oversized body is refused from its
/// `Content-Length` or while it is read, a compressed body is counted while it
/// is decompressed (so a gzip bomb stops at the limit and memory stays flat),
/// a client that trickles its request headers is disconnected, and requests
/// or connections beyond the concurrency limits are refused rather than queued.
///
/// ```
/// use std::time::Duration;
/// use otlp_transport::ReceiverLimits;
///
/// let limits = ReceiverLimits::new()
///     .with_max_request_bytes(1 << 20)
///     .with_max_decompressed_bytes(8 << 20)
///     .with_header_read_timeout(Duration::from_secs(5));
/// assert_eq!(limits.max_request_bytes(), 1 << 20);
/// assert!(limits.validate().is_ok());
/// assert!(ReceiverLimits::new().with_max_connections(0).validate().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiverLimits {
    max_request_bytes: usize,
    max_decompressed_bytes: usize,
    header_read_timeout: Duration,
    max_concurrent_requests: usize,
    max_connections: usize,
    ready_timeout: Duration,
    retry_after: Duration,
    shutdown_grace: Duration,
    body_read_timeout: Duration,
    idle_timeout: Duration,
    max_streams_per_connection: usize,
    intake: Option<IntakeBudget>,
}

// === impl ReceiverLimits ===

impl ReceiverLimits {
    /// Default largest request body as received on the wire (64 MiB, the
    /// OTLP specification's recommended server limit, as gRPC's).
    pub const DEFAULT_MAX_REQUEST_BYTES: usize = 64 << 20;
    /// Default largest request after decompression (64 MiB).
    pub const DEFAULT_MAX_DECOMPRESSED_BYTES: usize = 64 << 20;
    /// Default time a new connection has to deliver its first request headers (10 s).
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default number of export requests handled at once (256).
    pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 256;
    /// Default number of open connections (1024).
    pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
    /// Default time the inner service has to become ready (100 ms).
    pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_millis(100);
    /// Default retry hint sent with back-pressure answers (1 s).
    pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);
    /// Default time open connections get to finish at shutdown (5 s).
    pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
    /// Default time a request has to deliver its whole body (30 s).
    pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
    /// Default time a connection with no request in flight stays open (60 s).
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
    /// Default number of concurrent HTTP/2 streams per connection (100, as
    /// gRPC servers commonly advertise).
    pub const DEFAULT_MAX_STREAMS_PER_CONNECTION: usize = 100;

    /// The defaults (see the `DEFAULT_*` constants).
    pub const fn new() -> Self {
        Self {
            max_request_bytes: Self::DEFAULT_MAX_REQUEST_BYTES,
            max_decompressed_bytes: Self::DEFAULT_MAX_DECOMPRESSED_BYTES,
            header_read_timeout: Self::DEFAULT_HEADER_READ_TIMEOUT,
            max_concurrent_requests: Self::DEFAULT_MAX_CONCURRENT_REQUESTS,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            ready_timeout: Self::DEFAULT_READY_TIMEOUT,
            retry_after: Self::DEFAULT_RETRY_AFTER,
            shutdown_grace: Self::DEFAULT_SHUTDOWN_GRACE,
            body_read_timeout: Self::DEFAULT_BODY_READ_TIMEOUT,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            max_streams_per_connection: Self::DEFAULT_MAX_STREAMS_PER_CONNECTION,
            intake: None,
        }
    }

    /// How long a request may take to deliver its whole body once its
    /// headers arrived; a slower one is answered HTTP 408 / gRPC
    /// `DEADLINE_EXCEEDED` and its bytes are given back.
    pub const fn with_body_read_timeout(mut self, timeout: Duration) -> Self {
        self.body_read_timeout = timeout;
        self
    }

    /// How long a connection with no request in flight stays open; then it
    /// is closed gracefully (HTTP/2 `GOAWAY`; an idle HTTP/1.1 connection is
    /// closed between requests). Busy connections are never cut.
    pub const fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// How many HTTP/2 streams one connection may have open at once
    /// (`SETTINGS_MAX_CONCURRENT_STREAMS`), so one connection cannot take
    /// every request slot.
    pub const fn with_max_streams_per_connection(mut self, n: usize) -> Self {
        self.max_streams_per_connection = n;
        self
    }

    /// Shares `budget` (see [`IntakeBudget`]) between the receivers given
    /// these limits; without it each receiver has its own budget of
    /// [`IntakeBudget::DEFAULT_BYTES`].
    pub fn with_intake_budget(mut self, budget: IntakeBudget) -> Self {
        self.intake = Some(budget);
        self
    }

    /// Time allowed to deliver a request body.
    pub const fn body_read_timeout(&self) -> Duration {
        self.body_read_timeout
    }

    /// Time an idle connection stays open.
    pub const fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// HTTP/2 streams per connection.
    pub const fn max_streams_per_connection(&self) -> usize {
        self.max_streams_per_connection
    }

    /// The shared intake budget, when one was given.
    pub fn intake_budget(&self) -> Option<&IntakeBudget> {
        self.intake.as_ref()
    }

    /// Largest request body as received (compressed or not); larger ones get
    /// HTTP 413. For gRPC the message limit is [`Self::max_decompressed_bytes`],
    /// which the receiver applies to the message's length prefix (before any
    /// of the message is buffered) and again while decompressing.
    pub const fn with_max_request_bytes(mut self, bytes: usize) -> Self {
        self.max_request_bytes = bytes;
        self
    }

    /// Largest request after decompression; decompression stops as soon as it
    /// is passed (HTTP 413, gRPC `RESOURCE_EXHAUSTED`).
    pub const fn with_max_decompressed_bytes(mut self, bytes: usize) -> Self {
        self.max_decompressed_bytes = bytes;
        self
    }

    /// How long a new connection may take to deliver complete request headers
    /// (and, on HTTP/1, each later request's headers) before it is closed.
    pub const fn with_header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// How many export requests are handled at once; more get a back-pressure
    /// answer (gRPC `UNAVAILABLE`, HTTP 503) with a retry hint.
    pub const fn with_max_concurrent_requests(mut self, n: usize) -> Self {
        self.max_concurrent_requests = n;
        self
    }

    /// How many connections may be open; a connection beyond it is closed as
    /// soon as it is accepted, which clients treat as a retryable connection error.
    pub const fn with_max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }

    /// How long a request waits for the inner service to become ready before
    /// it is answered with back-pressure (zero polls readiness once).
    pub const fn with_ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// The retry hint sent with back-pressure answers when the inner service
    /// gave none (gRPC `RetryInfo`, HTTP `Retry-After` rounded up to whole seconds).
    pub const fn with_retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = delay;
        self
    }

    /// How long open connections get to finish their requests at shutdown
    /// before they are closed.
    pub const fn with_shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Largest request body as received.
    pub const fn max_request_bytes(&self) -> usize {
        self.max_request_bytes
    }

    /// Largest request after decompression.
    pub const fn max_decompressed_bytes(&self) -> usize {
        self.max_decompressed_bytes
    }

    /// Time allowed to deliver request headers.
    pub const fn header_read_timeout(&self) -> Duration {
        self.header_read_timeout
    }

    /// Export requests handled at once.
    pub const fn max_concurrent_requests(&self) -> usize {
        self.max_concurrent_requests
    }

    /// Connections open at once.
    pub const fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// Time the inner service has to become ready.
    pub const fn ready_timeout(&self) -> Duration {
        self.ready_timeout
    }

    /// Retry hint for back-pressure answers.
    pub const fn retry_after(&self) -> Duration {
        self.retry_after
    }

    /// Time connections get to finish at shutdown.
    pub const fn shutdown_grace(&self) -> Duration {
        self.shutdown_grace
    }

    /// Checks that no limit refuses every request.
    ///
    /// # Errors
    ///
    /// Returns [`ReceiveError::InvalidLimit`] for the first limit that is zero
    /// where zero would refuse everything, or when the decompressed limit is
    /// below the wire limit.
    pub fn validate(&self) -> Result<(), ReceiveError> {
        let zero = |name, fix| ReceiveError::InvalidLimit {
            name,
            value: "0".to_owned(),
            fix,
        };
        if self.max_request_bytes == 0 {
            return Err(zero(
                "max_request_bytes",
                "use a positive size such as 16777216 (16 MiB)",
            ));
        }
        if self.max_decompressed_bytes < self.max_request_bytes {
            return Err(ReceiveError::InvalidLimit {
                name: "max_decompressed_bytes",
                value: self.max_decompressed_bytes.to_string(),
                fix: "use at least max_request_bytes: a decompressed body is never smaller than its uncompressed wire form",
            });
        }
        if self.header_read_timeout.is_zero() {
            return Err(zero(
                "header_read_timeout",
                "use a positive duration such as 10s",
            ));
        }
        if self.max_concurrent_requests == 0 {
            return Err(zero(
                "max_concurrent_requests",
                "use a positive count such as 256",
            ));
        }
        if self.max_connections == 0 {
            return Err(zero("max_connections", "use a positive count such as 1024"));
        }
        if self.body_read_timeout.is_zero() {
            return Err(zero(
                "body_read_timeout",
                "use a positive duration such as 30s",
            ));
        }
        if self.idle_timeout.is_zero() {
            return Err(zero("idle_timeout", "use a positive duration such as 60s"));
        }
        if self.max_streams_per_connection == 0 {
            return Err(zero(
                "max_streams_per_connection",
                "use a positive count such as 100",
            ));
        }
        Ok(())
    }
}

impl Default for ReceiverLimits {
    fn default() -> Self {
        Self::new()
    }
}
