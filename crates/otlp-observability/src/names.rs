//! Every metric name otlp-rust exports, in one place.
//!
//! The alert rules in `deploy/` and the dashboards use exactly these names, and
//! a tidy test checks that each name used there is exported here. Counters end
//! in `_total` and units are spelled out at the end of the name (`_seconds`,
//! `_bytes`), as the Prometheus naming conventions and `promtool check metrics`
//! require.
//!
//! Label values are all drawn from fixed sets (signals, drop and fail reasons,
//! error classes, outcomes), so no series count grows with traffic; the one
//! exception, `endpoint` of the `otlp_backend_*` families, is bounded by the
//! load balancer's resolved backend set: a backend's series end when it
//! leaves the set.

/// Export requests, by `signal` and `outcome` (`ok`, `retryable`, `throttled`, `permanent`, `too_large`, `cancelled`).
pub const REQUESTS_TOTAL: &str = "otlp_requests_total";
/// Export request duration histogram, by `signal`.
pub const REQUEST_DURATION_SECONDS: &str = "otlp_request_duration_seconds";
/// Open connections to the collector (or to the receiver, for the agent).
pub const ACTIVE_CONNECTIONS: &str = "otlp_active_connections";
/// Resident set size of this process, read from the operating system.
pub const MEMORY_USAGE_BYTES: &str = "otlp_memory_usage_bytes";
/// CPU used by this process since the previous scrape, in percent of one core.
pub const CPU_USAGE_PERCENT: &str = "otlp_cpu_usage_percent";
/// Failed export requests, by `signal` and `kind` (the error's classification).
pub const ERRORS_TOTAL: &str = "otlp_errors_total";
/// Items accepted into the pipeline, by `signal`.
pub const ITEMS_ACCEPTED_TOTAL: &str = "otlp_items_accepted_total";
/// Items delivered to the collector, by `signal`.
pub const ITEMS_SENT_TOTAL: &str = "otlp_items_sent_total";
/// Items found at start in the persistent queue an earlier run left (intact,
/// or counted as dropped with reason `corrupt`), by `signal`; the identity is
/// `accepted + recovered = sent + dropped + failed + queued`.
pub const ITEMS_RECOVERED_TOTAL: &str = "otlp_items_recovered_total";
/// Items dropped before sending, by `signal` and `reason`.
pub const ITEMS_DROPPED_TOTAL: &str = "otlp_items_dropped_total";
/// Items of whole requests the agent's intake refused with back-pressure
/// before taking any of them (never accepted, so not a loss), by `signal`
/// and `reason` (`queue_full`, `disk_full`, `oversized`, `shutdown`).
pub const ITEMS_REFUSED_TOTAL: &str = "otlp_items_refused_total";
/// Items that failed for good, by `signal` and `reason`.
pub const ITEMS_FAILED_TOTAL: &str = "otlp_items_failed_total";
/// Retried export attempts, by `signal`.
pub const RETRIES_TOTAL: &str = "otlp_retries_total";
/// Throttle answers from the collector (RetryInfo, Retry-After), by `signal`.
pub const THROTTLES_TOTAL: &str = "otlp_throttles_total";
/// Items the collector rejected in a partial success, by `signal`.
pub const PARTIAL_SUCCESS_REJECTED_TOTAL: &str = "otlp_partial_success_rejected_items_total";
/// Items waiting in the queue, by `signal`.
pub const QUEUE_ITEMS: &str = "otlp_queue_items";
/// Encoded bytes waiting in the queue, by `signal`.
pub const QUEUE_BYTES: &str = "otlp_queue_bytes";
/// The queue's capacity in items.
pub const QUEUE_CAPACITY_ITEMS: &str = "otlp_queue_capacity_items";
/// The queue's capacity in bytes.
pub const QUEUE_CAPACITY_BYTES: &str = "otlp_queue_capacity_bytes";
/// Export requests currently in flight.
pub const IN_FLIGHT_REQUESTS: &str = "otlp_in_flight_requests";
/// The adaptive concurrency limit currently in force.
pub const CONCURRENCY_LIMIT: &str = "otlp_concurrency_limit";
/// Recovery actions taken, by `action` (`split`, `reconnect`) and `outcome` (`ok`, `failed`).
pub const RECOVERIES_TOTAL: &str = "otlp_recoveries_total";
/// Consecutive failed exports since the last success.
pub const EXPORTER_CONSECUTIVE_FAILURES: &str = "otlp_exporter_consecutive_failures";
/// Unix time of the last successful export, 0 before the first one.
pub const EXPORTER_LAST_SUCCESS_TIMESTAMP_SECONDS: &str =
    "otlp_exporter_last_success_timestamp_seconds";
/// Export attempts (each try of the retry loop), by `signal` and `outcome`
/// (`ok`, `retryable`, `throttled`, `permanent`, `too_large`).
pub const EXPORT_ATTEMPTS_TOTAL: &str = "otlp_export_attempts_total";
/// 1 when the last export attempt of `signal` succeeded, 0 when it failed
/// (1 before the first attempt).
pub const EXPORTER_UP: &str = "otlp_exporter_up";
/// Seconds since the last successful export attempt (since start before the first).
pub const EXPORTER_SECONDS_SINCE_LAST_SUCCESS: &str = "otlp_exporter_seconds_since_last_success";
/// The configured `memory_limit` in bytes, for alerts against the RSS.
pub const MEMORY_LIMIT_BYTES: &str = "otlp_memory_limit_bytes";
/// Seconds the oldest undelivered item of `signal` has waited (in a batch,
/// the queue, on disk or in flight and retrying); 0 when nothing waits.
pub const QUEUE_OLDEST_ITEM_AGE_SECONDS: &str = "otlp_queue_oldest_item_age_seconds";
/// How many seconds of outage the queue can still absorb: its free bytes
/// divided by the intake rate of the last minute (`+Inf` with no intake).
pub const OUTAGE_ABSORBABLE_SECONDS: &str = "otlp_outage_absorbable_seconds";
/// Items a load-balancing backend accepted, by `signal` and `endpoint`
/// (series only for the backends in the current set).
pub const BACKEND_ITEMS_SENT_TOTAL: &str = "otlp_backend_items_sent_total";
/// Items of parts a load-balancing backend failed (each routed again to
/// another backend, or the batch retried), by `signal` and `endpoint`.
pub const BACKEND_ITEMS_FAILED_TOTAL: &str = "otlp_backend_items_failed_total";
/// Items being sent to a load-balancing backend right now (there is no
/// per-backend queue), by `signal` and `endpoint`.
pub const BACKEND_IN_FLIGHT_ITEMS: &str = "otlp_backend_in_flight_items";
/// 1 when a load-balancing backend's last part was delivered, 0 while it
/// fails (it is skipped for its cooldown, then probed), by `signal` and `endpoint`.
pub const BACKEND_UP: &str = "otlp_backend_up";
/// Items delivered to a backend as part of a load-balanced batch that was
/// then sent again whole (another part found no backend, or the attempt
/// was cut off): the duplicates at-least-once delivery makes, by `signal`.
pub const ITEMS_DUPLICATED_TOTAL: &str = "otlp_items_duplicated_total";
/// Build information (`version`), always 1.
pub const BUILD_INFO: &str = "otlp_build_info";

/// Every exported family name, for tests and the tidy check against `deploy/`.
///
/// The histogram also exposes `_bucket`, `_sum` and `_count` series under its name.
pub const ALL: [&str; 36] = [
    REQUESTS_TOTAL,
    REQUEST_DURATION_SECONDS,
    ACTIVE_CONNECTIONS,
    MEMORY_USAGE_BYTES,
    CPU_USAGE_PERCENT,
    ERRORS_TOTAL,
    ITEMS_ACCEPTED_TOTAL,
    ITEMS_SENT_TOTAL,
    ITEMS_RECOVERED_TOTAL,
    ITEMS_DROPPED_TOTAL,
    ITEMS_REFUSED_TOTAL,
    ITEMS_FAILED_TOTAL,
    RETRIES_TOTAL,
    THROTTLES_TOTAL,
    PARTIAL_SUCCESS_REJECTED_TOTAL,
    QUEUE_ITEMS,
    QUEUE_BYTES,
    QUEUE_CAPACITY_ITEMS,
    QUEUE_CAPACITY_BYTES,
    IN_FLIGHT_REQUESTS,
    CONCURRENCY_LIMIT,
    RECOVERIES_TOTAL,
    EXPORTER_CONSECUTIVE_FAILURES,
    EXPORTER_LAST_SUCCESS_TIMESTAMP_SECONDS,
    EXPORT_ATTEMPTS_TOTAL,
    EXPORTER_UP,
    EXPORTER_SECONDS_SINCE_LAST_SUCCESS,
    MEMORY_LIMIT_BYTES,
    QUEUE_OLDEST_ITEM_AGE_SECONDS,
    OUTAGE_ABSORBABLE_SECONDS,
    BACKEND_ITEMS_SENT_TOTAL,
    BACKEND_ITEMS_FAILED_TOTAL,
    BACKEND_IN_FLIGHT_ITEMS,
    BACKEND_UP,
    ITEMS_DUPLICATED_TOTAL,
    BUILD_INFO,
];
