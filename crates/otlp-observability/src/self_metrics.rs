//! The Prometheus registry of otlp-rust's own metrics.

use std::{
    fmt,
    sync::atomic::AtomicU64,
    time::{Duration, Instant},
};

use otlp_core::{DropReason, FailReason, Observer, Signal};
use prometheus_client::{
    encoding::{prometheus_text, text as openmetrics_text},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
        info::Info,
    },
    registry::{Registry, Unit},
};

use crate::{
    ExporterHealth, ObservabilityError, names, process::CpuSampler, process::ProcessStats,
};

type Labels1 = [(&'static str, &'static str); 1];
type Labels2 = [(&'static str, &'static str); 2];
/// The `kind` label values of [`names::ERRORS_TOTAL`]: the classifications
/// of [`otlp_core::Retryability`] plus calls cancelled by the caller.
const ERROR_KINDS: [&str; 5] = [
    "retryable",
    "throttled",
    "permanent",
    "too_large",
    "cancelled",
];

type HistogramFamily = Family<Labels1, Histogram, fn() -> Histogram>;

/// The `Content-Type` of the Prometheus text format 0.0.4 (what [`SelfMetrics::encode_text`] writes).
pub const PROMETHEUS_TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The `Content-Type` of OpenMetrics 1.0 text (what [`SelfMetrics::encode_openmetrics`] writes).
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A recovery action taken by the resilience layer, a bounded metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecoveryAction {
    /// An oversized request was split in two.
    Split,
    /// The connection was re-established.
    Reconnect,
}

/// otlp-rust's self-metrics: one Prometheus registry with every family of
/// [`names`], pre-registered label sets, and process memory and CPU.
///
/// It implements [`Observer`], so the pipeline reports item accounting into
/// it; the [`Metrics`](crate::Metrics) layer reports requests; the other
/// components call the plain `record_*` / `set_*` methods. Every recording is
/// one or two relaxed atomic operations on a pre-resolved handle, except
/// request recording, which looks its label set up in a read-locked map.
///
/// ```
/// use otlp_core::{Observer, Signal};
/// use otlp_observability::SelfMetrics;
///
/// let metrics = SelfMetrics::new();
/// metrics.accepted(Signal::Traces, 10);
/// metrics.sent(Signal::Traces, 10);
/// let text = metrics.encode_text()?;
/// assert!(text.contains("otlp_items_sent_total{signal=\"traces\"} 10"));
/// # Ok::<(), otlp_observability::ObservabilityError>(())
/// ```
pub struct SelfMetrics {
    registry: Registry,
    requests: Family<Labels2, Counter>,
    request_duration: HistogramFamily,
    known: [KnownSignal; Signal::COUNT],
    errors: Family<Labels2, Counter>,
    active_connections: Gauge,
    memory: Gauge,
    cpu: Gauge<f64, AtomicU64>,
    accepted: [Counter; Signal::COUNT],
    sent: [Counter; Signal::COUNT],
    recovered: [Counter; Signal::COUNT],
    dropped: [[Counter; DropReason::ALL.len()]; Signal::COUNT],
    refused: [[Counter; DropReason::ALL.len()]; Signal::COUNT],
    failed: [[Counter; FailReason::ALL.len()]; Signal::COUNT],
    retries: [Counter; Signal::COUNT],
    throttles: [Counter; Signal::COUNT],
    rejected: [Counter; Signal::COUNT],
    queue_items: [Gauge; Signal::COUNT],
    queue_bytes: [Gauge; Signal::COUNT],
    queue_capacity_items: Gauge,
    queue_capacity_bytes: Gauge,
    in_flight: Gauge,
    concurrency_limit: Gauge,
    recoveries: Family<Labels2, Counter>,
    consecutive_failures: Gauge,
    last_success: Gauge<f64, AtomicU64>,
    attempts: [[Counter; ATTEMPT_OUTCOMES.len()]; Signal::COUNT],
    up: [Gauge; Signal::COUNT],
    since_success: Gauge<f64, AtomicU64>,
    memory_limit: Gauge,
    oldest_age: [Gauge<f64, AtomicU64>; Signal::COUNT],
    absorbable: Gauge<f64, AtomicU64>,
    backlog_source: std::sync::OnceLock<BacklogSource>,
    balancers: balance::BalancerSources,
    /// (when, intake bytes) at recent scrapes, oldest first: the intake rate.
    intake_samples: std::sync::Mutex<std::collections::VecDeque<(std::time::Instant, u64)>>,
    concurrency_source: std::sync::OnceLock<ConcurrencySource>,
    losses: crate::LossLog,
    profiler: std::sync::OnceLock<crate::StageProfiler>,
    exporter: ExporterHealth,
    cpu_sampler: CpuSampler,
}

/// The `outcome` labels of [`names::EXPORT_ATTEMPTS_TOTAL`] (an unknown
/// outcome counts as the last).
const ATTEMPT_OUTCOMES: [&str; 5] = ["ok", "retryable", "throttled", "too_large", "permanent"];

/// Reads the concurrency limit in force at scrape time.
type ConcurrencySource = Box<dyn Fn() -> u64 + Send + Sync>;
type BacklogSource = Box<dyn Fn() -> otlp_core::Backlog + Send + Sync>;

/// The window the intake rate of `otlp_outage_absorbable_seconds` is taken over.
const INTAKE_WINDOW: Duration = Duration::from_secs(60);

/// Pre-resolved request series of one signal.
struct KnownSignal {
    ok: Counter,
    duration: Histogram,
    failed: [Counter; ERROR_KINDS.len()],
    errors: [Counter; ERROR_KINDS.len()],
}

/// Decrements the in-flight gauge when dropped.
#[derive(Debug)]
pub(crate) struct InFlightGuard {
    gauge: Gauge,
}

// === impl RecoveryAction ===

impl RecoveryAction {
    /// A short, fixed label for metrics and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            RecoveryAction::Split => "split",
            RecoveryAction::Reconnect => "reconnect",
        }
    }
}

// === impl SelfMetrics ===

impl SelfMetrics {
    /// Buckets of [`names::REQUEST_DURATION_SECONDS`]: 1 ms to about 33 s, doubling.
    pub const DURATION_BUCKETS: (f64, f64, u16) = (0.001, 2.0, 16);

    /// A registry with every family registered and every bounded label set
    /// pre-created at zero (so alerts see the series before the first event).
    pub fn new() -> Self {
        let mut registry = Registry::default();

        let requests = Family::<Labels2, Counter>::default();
        register(
            &mut registry,
            names::REQUESTS_TOTAL,
            "Export requests by signal and outcome",
            requests.clone(),
        );
        let request_duration: HistogramFamily = Family::new_with_constructor(|| {
            let (start, factor, count) = SelfMetrics::DURATION_BUCKETS;
            Histogram::new(exponential_buckets(start, factor, count))
        });
        register(
            &mut registry,
            names::REQUEST_DURATION_SECONDS,
            "Export request duration by signal",
            request_duration.clone(),
        );
        let errors = Family::<Labels2, Counter>::default();
        register(
            &mut registry,
            names::ERRORS_TOTAL,
            "Failed export requests by signal and error class",
            errors.clone(),
        );
        // Pre-create the series of every signal so that alerts and
        // dashboards see zeros, not absent series, before the first export.
        // The handles are kept, so recording a request of a known signal
        // skips the families' locked label lookup.
        let known = Signal::ALL.map(|signal| {
            let signal = signal.as_str();
            KnownSignal {
                ok: requests.get_or_create_owned(&[("signal", signal), ("outcome", "ok")]),
                duration: request_duration.get_or_create_owned(&[("signal", signal)]),
                failed: ERROR_KINDS.map(|kind| {
                    requests.get_or_create_owned(&[("signal", signal), ("outcome", kind)])
                }),
                errors: ERROR_KINDS
                    .map(|kind| errors.get_or_create_owned(&[("signal", signal), ("kind", kind)])),
            }
        });
        let active_connections = Gauge::default();
        register(
            &mut registry,
            names::ACTIVE_CONNECTIONS,
            "Open connections",
            active_connections.clone(),
        );
        let memory = Gauge::default();
        register(
            &mut registry,
            names::MEMORY_USAGE_BYTES,
            "Resident set size of the process",
            memory.clone(),
        );
        let cpu = Gauge::<f64, AtomicU64>::default();
        register(
            &mut registry,
            names::CPU_USAGE_PERCENT,
            "CPU used since the previous scrape in percent of one core",
            cpu.clone(),
        );

        let accepted = per_signal_counter(
            &mut registry,
            names::ITEMS_ACCEPTED_TOTAL,
            "Items accepted into the pipeline",
        );
        let sent = per_signal_counter(
            &mut registry,
            names::ITEMS_SENT_TOTAL,
            "Items delivered to the collector",
        );
        let recovered = per_signal_counter(
            &mut registry,
            names::ITEMS_RECOVERED_TOTAL,
            "Items found at start in the persistent queue an earlier run left",
        );
        let dropped_family = Family::<Labels2, Counter>::default();
        register(
            &mut registry,
            names::ITEMS_DROPPED_TOTAL,
            "Items dropped before sending, by reason",
            dropped_family.clone(),
        );
        let dropped = Signal::ALL.map(|s| {
            DropReason::ALL.map(|r| {
                dropped_family
                    .get_or_create_owned(&[("signal", s.as_str()), ("reason", r.as_str())])
            })
        });
        let refused_family = Family::<Labels2, Counter>::default();
        register(
            &mut registry,
            names::ITEMS_REFUSED_TOTAL,
            "Items of whole requests refused with back-pressure before any was taken, by reason",
            refused_family.clone(),
        );
        let refused = Signal::ALL.map(|s| {
            DropReason::ALL.map(|r| {
                refused_family
                    .get_or_create_owned(&[("signal", s.as_str()), ("reason", r.as_str())])
            })
        });
        let failed_family = Family::<Labels2, Counter>::default();
        register(
            &mut registry,
            names::ITEMS_FAILED_TOTAL,
            "Items that failed for good, by reason",
            failed_family.clone(),
        );
        let failed = Signal::ALL.map(|s| {
            FailReason::ALL.map(|r| {
                failed_family.get_or_create_owned(&[("signal", s.as_str()), ("reason", r.as_str())])
            })
        });
        let retries = per_signal_counter(
            &mut registry,
            names::RETRIES_TOTAL,
            "Retried export attempts",
        );
        let throttles = per_signal_counter(
            &mut registry,
            names::THROTTLES_TOTAL,
            "Throttle answers from the collector",
        );
        let rejected = per_signal_counter(
            &mut registry,
            names::PARTIAL_SUCCESS_REJECTED_TOTAL,
            "Items rejected by the collector in a partial success",
        );

        let queue_items = per_signal_gauge(
            &mut registry,
            names::QUEUE_ITEMS,
            "Items waiting in the queue",
        );
        let queue_bytes = per_signal_gauge(
            &mut registry,
            names::QUEUE_BYTES,
            "Encoded bytes waiting in the queue",
        );
        let queue_capacity_items = Gauge::default();
        register(
            &mut registry,
            names::QUEUE_CAPACITY_ITEMS,
            "Queue capacity in items",
            queue_capacity_items.clone(),
        );
        let queue_capacity_bytes = Gauge::default();
        register(
            &mut registry,
            names::QUEUE_CAPACITY_BYTES,
            "Queue capacity in bytes",
            queue_capacity_bytes.clone(),
        );
        let in_flight = Gauge::default();
        register(
            &mut registry,
            names::IN_FLIGHT_REQUESTS,
            "Export requests in flight",
            in_flight.clone(),
        );
        let concurrency_limit = Gauge::default();
        register(
            &mut registry,
            names::CONCURRENCY_LIMIT,
            "Adaptive concurrency limit in force",
            concurrency_limit.clone(),
        );
        let recoveries = Family::<Labels2, Counter>::default();
        register(
            &mut registry,
            names::RECOVERIES_TOTAL,
            "Recovery actions by action and outcome",
            recoveries.clone(),
        );
        for action in [RecoveryAction::Split, RecoveryAction::Reconnect] {
            for outcome in ["ok", "failed"] {
                recoveries
                    .get_or_create_owned(&[("action", action.as_str()), ("outcome", outcome)]);
            }
        }
        let consecutive_failures = Gauge::default();
        register(
            &mut registry,
            names::EXPORTER_CONSECUTIVE_FAILURES,
            "Failed exports since the last success",
            consecutive_failures.clone(),
        );
        let last_success = Gauge::<f64, AtomicU64>::default();
        register(
            &mut registry,
            names::EXPORTER_LAST_SUCCESS_TIMESTAMP_SECONDS,
            "Unix time of the last successful export",
            last_success.clone(),
        );
        let attempts_family = Family::<Labels2, Counter>::default();
        register(
            &mut registry,
            names::EXPORT_ATTEMPTS_TOTAL,
            "Export attempts (each try of the retry loop) by signal and outcome",
            attempts_family.clone(),
        );
        let attempts = Signal::ALL.map(|s| {
            ATTEMPT_OUTCOMES.map(|o| {
                attempts_family.get_or_create_owned(&[("signal", s.as_str()), ("outcome", o)])
            })
        });
        let up = per_signal_gauge(
            &mut registry,
            names::EXPORTER_UP,
            "1 when the last export attempt of the signal succeeded, 0 when it failed",
        );
        for g in &up {
            g.set(1);
        }
        let since_success = Gauge::<f64, AtomicU64>::default();
        register(
            &mut registry,
            names::EXPORTER_SECONDS_SINCE_LAST_SUCCESS,
            "Seconds since the last successful export attempt (since start before the first)",
            since_success.clone(),
        );
        let oldest_family = Family::<Labels1, Gauge<f64, AtomicU64>>::default();
        register(
            &mut registry,
            names::QUEUE_OLDEST_ITEM_AGE_SECONDS,
            "Seconds the oldest undelivered item of the signal has waited (batch, queue, disk or in flight); 0 when nothing waits",
            oldest_family.clone(),
        );
        let oldest_age =
            Signal::ALL.map(|s| oldest_family.get_or_create_owned(&[("signal", s.as_str())]));
        let absorbable = Gauge::<f64, AtomicU64>::default();
        absorbable.set(f64::INFINITY);
        register(
            &mut registry,
            names::OUTAGE_ABSORBABLE_SECONDS,
            "Seconds of upstream outage the queue can still absorb: free queue bytes / intake rate of the last minute (+Inf with no intake)",
            absorbable.clone(),
        );
        let memory_limit = Gauge::default();
        register(
            &mut registry,
            names::MEMORY_LIMIT_BYTES,
            "The configured memory_limit in bytes (0 when unset)",
            memory_limit.clone(),
        );
        let build = Info::new([("version", env!("CARGO_PKG_VERSION"))]);
        register(&mut registry, names::BUILD_INFO, "Build information", build);
        let balancers = balance::BalancerSources::default();
        registry.register_collector(Box::new(balancers.clone()));

        Self {
            registry,
            requests,
            request_duration,
            known,
            errors,
            active_connections,
            memory,
            cpu,
            accepted,
            sent,
            recovered,
            dropped,
            refused,
            failed,
            retries,
            throttles,
            rejected,
            queue_items,
            queue_bytes,
            queue_capacity_items,
            queue_capacity_bytes,
            in_flight,
            concurrency_limit,
            recoveries,
            consecutive_failures,
            last_success,
            attempts,
            up,
            since_success,
            memory_limit,
            oldest_age,
            absorbable,
            backlog_source: std::sync::OnceLock::new(),
            balancers,
            intake_samples: std::sync::Mutex::new(std::collections::VecDeque::new()),
            concurrency_source: std::sync::OnceLock::new(),
            losses: crate::LossLog::default(),
            profiler: std::sync::OnceLock::new(),
            exporter: ExporterHealth::new(),
            cpu_sampler: CpuSampler::default(),
        }
    }

    /// The export health state the [`Metrics`](crate::Metrics) layer feeds,
    /// for the exporter health check.
    pub fn exporter_health(&self) -> ExporterHealth {
        self.exporter.clone()
    }

    /// Records one finished export request of kind `label` (the signal) with
    /// its `outcome` (`"ok"` or an error class) and duration.
    pub fn record_request(&self, label: &'static str, outcome: &'static str, duration: Duration) {
        if let Some(known) = Signal::ALL
            .iter()
            .position(|s| s.as_str() == label)
            .and_then(|i| self.known.get(i))
        {
            if outcome == "ok" {
                known.duration.observe(duration.as_secs_f64());
                known.ok.inc();
                return;
            }
            if let Some(k) = ERROR_KINDS.iter().position(|k| *k == outcome) {
                known.duration.observe(duration.as_secs_f64());
                known.failed[k].inc();
                known.errors[k].inc();
                return;
            }
        }
        self.record_request_slow(label, outcome, duration);
    }

    fn record_request_slow(&self, label: &'static str, outcome: &'static str, duration: Duration) {
        self.requests
            .get_or_create(&[("signal", label), ("outcome", outcome)])
            .inc();
        self.request_duration
            .get_or_create(&[("signal", label)])
            .observe(duration.as_secs_f64());
        if outcome != "ok" {
            self.errors
                .get_or_create(&[("signal", label), ("kind", outcome)])
                .inc();
        }
    }

    /// Records one export attempt (one try of the retry loop) of `signal`
    /// with its `outcome` (`"ok"` or a [`Retryability`](otlp_core::Retryability)
    /// name): the attempt counters, the upstream-up gauge and the exporter
    /// health the health check reads all see every attempt, so an outage
    /// shows at its first failed attempt, not when a retry loop gives up.
    pub fn record_attempt(&self, signal: Signal, outcome: &'static str) {
        let i = signal.index();
        let k = ATTEMPT_OUTCOMES
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or(ATTEMPT_OUTCOMES.len() - 1);
        self.attempts[i][k].inc();
        if outcome == "ok" {
            self.up[i].set(1);
            self.exporter.record_success();
        } else {
            self.up[i].set(0);
            self.exporter.record_failure();
        }
    }

    /// Reads `otlp_concurrency_limit` from `source` at every scrape (the
    /// facade passes its adaptive controllers); the first source set wins.
    pub fn set_concurrency_source(&self, source: impl Fn() -> u64 + Send + Sync + 'static) {
        let _ = self.concurrency_source.set(Box::new(source));
    }

    /// Reads `signal`'s load balancer at every scrape into the per-backend
    /// families (`otlp_backend_*`, one series per backend of the current
    /// set) and `otlp_items_duplicated_total`.
    pub fn add_balancer_source(
        &self,
        signal: Signal,
        source: impl Fn() -> BalancerSample + Send + Sync + 'static,
    ) {
        self.balancers.add(signal, Box::new(source));
    }

    /// Reads the backlog gauges (`otlp_queue_oldest_item_age_seconds`,
    /// `otlp_outage_absorbable_seconds`) from `source` at every scrape (the
    /// facade passes its pipeline); the first source set wins.
    pub fn set_backlog_source(
        &self,
        source: impl Fn() -> otlp_core::Backlog + Send + Sync + 'static,
    ) {
        let _ = self.backlog_source.set(Box::new(source));
    }

    /// Sets the backlog gauges from `backlog`, read at `now`: the intake rate
    /// is taken over the scrapes of the last [`INTAKE_WINDOW`].
    fn set_backlog(&self, backlog: otlp_core::Backlog, now: std::time::Instant) {
        for (gauge, age) in self.oldest_age.iter().zip(backlog.oldest) {
            gauge.set(age.map_or(0.0, |a| a.as_secs_f64()));
        }
        let mut samples = self
            .intake_samples
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        samples.push_back((now, backlog.intake_bytes));
        // Bounded however often it is scraped (the window then shrinks).
        if samples.len() > 256 {
            samples.pop_front();
        }
        // Keep one sample at least a window old, as the rate's start.
        while samples
            .get(1)
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) >= INTAKE_WINDOW)
        {
            samples.pop_front();
        }
        let rate = match samples.front() {
            Some(&(t, bytes)) if now.saturating_duration_since(t) >= Duration::from_secs(1) => {
                backlog.intake_bytes.saturating_sub(bytes) as f64
                    / now.saturating_duration_since(t).as_secs_f64()
            }
            _ => 0.0,
        };
        drop(samples);
        self.absorbable.set(if rate > 0.0 {
            backlog.free_bytes as f64 / rate
        } else {
            f64::INFINITY
        });
    }

    /// Records the pipeline's stage times (batch, queue wait) into
    /// `profiler` from now on; the first profiler set wins.
    pub fn set_profiler(&self, profiler: crate::StageProfiler) {
        let _ = self.profiler.set(profiler);
    }

    /// The log of the last losses (`/debug/losses`).
    pub fn losses(&self) -> &crate::LossLog {
        &self.losses
    }

    /// Exports the configured `memory_limit` (`otlp_memory_limit_bytes`).
    pub fn set_memory_limit(&self, bytes: u64) {
        self.memory_limit.set(to_i64(bytes));
    }

    /// Counts one retried attempt.
    pub fn record_retry(&self, signal: Signal) {
        self.retries[signal.index()].inc();
    }

    /// Counts one throttle answer from the collector.
    pub fn record_throttle(&self, signal: Signal) {
        self.throttles[signal.index()].inc();
    }

    /// Counts items the collector rejected in a partial success.
    ///
    /// [`Observer::failed`] with [`FailReason::Rejected`] already counts
    /// here; call this only for rejections not reported through the observer.
    pub fn record_partial_success(&self, signal: Signal, rejected: u64) {
        self.rejected[signal.index()].inc_by(rejected);
    }

    /// Counts one recovery action and whether it worked.
    pub fn record_recovery(&self, action: RecoveryAction, ok: bool) {
        let outcome = if ok { "ok" } else { "failed" };
        self.recoveries
            .get_or_create(&[("action", action.as_str()), ("outcome", outcome)])
            .inc();
    }

    /// Sets the adaptive concurrency limit in force.
    pub fn set_concurrency_limit(&self, limit: u64) {
        self.concurrency_limit.set(to_i64(limit));
    }

    /// Sets the queue's capacity, in items and in bytes.
    pub fn set_queue_capacity(&self, items: u64, bytes: u64) {
        self.queue_capacity_items.set(to_i64(items));
        self.queue_capacity_bytes.set(to_i64(bytes));
    }

    /// Sets the number of open connections.
    pub fn set_active_connections(&self, connections: u64) {
        self.active_connections.set(to_i64(connections));
    }

    /// A connection opened.
    pub fn connection_opened(&self) {
        self.active_connections.inc();
    }

    /// A connection closed.
    pub fn connection_closed(&self) {
        self.active_connections.dec();
    }

    /// The queue's current fill across signals and its capacity, as
    /// `(items, bytes, capacity_items, capacity_bytes)`.
    pub fn queue_level(&self) -> (u64, u64, u64, u64) {
        let items = self.queue_items.iter().map(|g| to_u64(g.get())).sum();
        let bytes = self.queue_bytes.iter().map(|g| to_u64(g.get())).sum();
        (
            items,
            bytes,
            to_u64(self.queue_capacity_items.get()),
            to_u64(self.queue_capacity_bytes.get()),
        )
    }

    /// Requests in flight right now.
    pub fn in_flight(&self) -> u64 {
        to_u64(self.in_flight.get())
    }

    /// Items sent so far for `signal`.
    pub fn sent_items(&self, signal: Signal) -> u64 {
        self.sent[signal.index()].get()
    }

    /// Items dropped so far for `signal` with `reason`.
    pub fn dropped_items(&self, signal: Signal, reason: DropReason) -> u64 {
        drop_index(reason).map_or(0, |i| self.dropped[signal.index()][i].get())
    }

    /// Items of `signal` refused so far with `reason`.
    pub fn refused_items(&self, signal: Signal, reason: DropReason) -> u64 {
        drop_index(reason).map_or(0, |i| self.refused[signal.index()][i].get())
    }

    /// Reads process memory and CPU from the operating system into their gauges.
    ///
    /// [`encode_text`](Self::encode_text) calls this, so every scrape is fresh;
    /// the CPU percentage covers the time since the previous refresh.
    ///
    /// # Errors
    ///
    /// [`ObservabilityError::ProcessStats`] when `/proc` cannot be read; the
    /// gauges keep their previous values.
    pub fn refresh_process(&self) -> Result<ProcessStats, ObservabilityError> {
        let stats = ProcessStats::read()?;
        self.memory.set(to_i64(stats.rss_bytes));
        if let Some(pct) = self.cpu_sampler.sample(Instant::now(), stats.cpu_time) {
            self.cpu.set(pct);
        }
        Ok(stats)
    }

    /// Encodes every family in the Prometheus text format 0.0.4
    /// ([`PROMETHEUS_TEXT_CONTENT_TYPE`]), which `promtool check metrics` and
    /// every Prometheus version read.
    ///
    /// # Errors
    ///
    /// [`ObservabilityError::Encode`] if the encoder fails, which the fixed
    /// label sets make impossible in practice.
    pub fn encode_text(&self) -> Result<String, ObservabilityError> {
        self.refresh_scrape_gauges();
        let mut out = String::with_capacity(8 * 1024);
        prometheus_text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    /// Encodes every family as OpenMetrics 1.0 text ([`OPENMETRICS_CONTENT_TYPE`]).
    ///
    /// # Errors
    ///
    /// As [`encode_text`](Self::encode_text).
    pub fn encode_openmetrics(&self) -> Result<String, ObservabilityError> {
        self.refresh_scrape_gauges();
        let mut out = String::with_capacity(8 * 1024);
        openmetrics_text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    fn refresh_scrape_gauges(&self) {
        // Process statistics are best effort: on a system without /proc the
        // gauges stay at zero rather than failing the whole scrape.
        let _ = self.refresh_process();
        self.consecutive_failures
            .set(to_i64(self.exporter.consecutive_failures()));
        if let Some(source) = self.concurrency_source.get() {
            self.concurrency_limit.set(to_i64(source()));
        }
        if let Some(source) = self.backlog_source.get() {
            self.set_backlog(source(), std::time::Instant::now());
        }
        self.since_success.set(
            self.exporter
                .since_last_success()
                .unwrap_or_else(|| self.exporter.uptime())
                .as_secs_f64(),
        );
        if let Some(at) = self.exporter.last_success_unix_seconds() {
            self.last_success.set(at);
        }
    }

    pub(crate) fn in_flight_guard(&self) -> InFlightGuard {
        self.in_flight.inc();
        InFlightGuard {
            gauge: self.in_flight.clone(),
        }
    }
}

impl Default for SelfMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for SelfMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelfMetrics")
            .field("in_flight", &self.in_flight.get())
            .field("exporter", &self.exporter)
            .finish_non_exhaustive()
    }
}

impl Observer for SelfMetrics {
    fn lost(&self, signal: Signal, reason: &'static str, items: u64, cause: &str) {
        self.losses.record(signal, reason, items, cause);
    }

    fn stage_time(&self, _signal: Signal, stage: otlp_core::PipelineStage, took: Duration) {
        if let Some(p) = self.profiler.get() {
            let stage = match stage {
                otlp_core::PipelineStage::Batch => crate::Stage::Batch,
                otlp_core::PipelineStage::QueueWait => crate::Stage::QueueWait,
            };
            p.record(stage, took);
        }
    }

    fn accepted(&self, signal: Signal, items: u64) {
        self.accepted[signal.index()].inc_by(items);
    }

    fn sent(&self, signal: Signal, items: u64) {
        self.sent[signal.index()].inc_by(items);
    }

    fn recovered(&self, signal: Signal, items: u64) {
        self.recovered[signal.index()].inc_by(items);
    }

    fn dropped(&self, signal: Signal, reason: DropReason, items: u64) {
        if let Some(i) = drop_index(reason) {
            self.dropped[signal.index()][i].inc_by(items);
        }
    }

    fn refused(&self, signal: Signal, reason: DropReason, items: u64) {
        if let Some(i) = drop_index(reason) {
            self.refused[signal.index()][i].inc_by(items);
        }
    }

    fn failed(&self, signal: Signal, reason: FailReason, items: u64) {
        if let Some(i) = FailReason::ALL.iter().position(|r| *r == reason) {
            self.failed[signal.index()][i].inc_by(items);
        }
        if reason == FailReason::Rejected {
            self.rejected[signal.index()].inc_by(items);
        }
    }

    fn queue_depth(&self, signal: Signal, items: u64, bytes: u64) {
        self.queue_items[signal.index()].set(to_i64(items));
        self.queue_bytes[signal.index()].set(to_i64(bytes));
    }
}

// === impl InFlightGuard ===

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

fn drop_index(reason: DropReason) -> Option<usize> {
    DropReason::ALL.iter().position(|r| *r == reason)
}

/// Registers `metric` under its exported `name`: prometheus-client appends
/// `_total` to counters, `_info` to infos and the unit to unit-bearing
/// families, so those suffixes are stripped here and the output matches
/// [`names`] exactly.
fn register(
    registry: &mut Registry,
    name: &'static str,
    help: &'static str,
    metric: impl prometheus_client::registry::Metric,
) {
    let base = name
        .strip_suffix("_total")
        .or_else(|| name.strip_suffix("_info"))
        .unwrap_or(name);
    if let Some(base) = base.strip_suffix("_seconds") {
        registry.register_with_unit(base, help, Unit::Seconds, metric);
    } else if let Some(base) = base.strip_suffix("_bytes") {
        registry.register_with_unit(base, help, Unit::Bytes, metric);
    } else {
        registry.register(base, help, metric);
    }
}

fn per_signal_counter(
    registry: &mut Registry,
    name: &'static str,
    help: &'static str,
) -> [Counter; Signal::COUNT] {
    let family = Family::<Labels1, Counter>::default();
    register(registry, name, help, family.clone());
    Signal::ALL.map(|s| family.get_or_create_owned(&[("signal", s.as_str())]))
}

fn per_signal_gauge(
    registry: &mut Registry,
    name: &'static str,
    help: &'static str,
) -> [Gauge; Signal::COUNT] {
    let family = Family::<Labels1, Gauge>::default();
    register(registry, name, help, family.clone());
    Signal::ALL.map(|s| family.get_or_create_owned(&[("signal", s.as_str())]))
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

mod balance;
pub use self::balance::{BackendSample, BalancerSample};

#[cfg(test)]
mod tests;
