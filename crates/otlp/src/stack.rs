//! The export stack, assembled in one readable place, top to bottom in request order.
//!
//! ```text
//! Pipeline worker ─► SignalRouter ─► Metrics ─► (fold) ─► Recovery ─► Retry
//!                     (by signal)                    ─► AdaptiveConcurrency ─► Transport
//! ```

use std::{
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use otlp_config::Config;
use otlp_core::{Batch, Classify, ExportResponse, Retryability, Signal};
use otlp_observability::{MetricsLayer, SelfMetrics, Stage, StageProfiler};
use otlp_resilience::{
    AdaptiveConcurrencyLayer, ConcurrencyHandle, GiveUp, Recovered, RecoveryLayer, RetryError,
    RetryEvents, RetryLayer,
};
use otlp_transport::{Exporter, TransportError};
use tower::{
    Service, ServiceBuilder, ServiceExt,
    util::{BoxCloneSyncService, Oneshot},
};

use crate::{OtlpError, convert};

/// The error a batch can end with after the whole stack: the transport's
/// error, possibly wrapped by retry's per-attempt timeout.
pub type ExportError = RetryError<TransportError>;

/// One signal's export stack, type-erased (the one place generic types are erased).
pub type ExportService = BoxCloneSyncService<Batch, ExportResponse, ExportError>;

/// Routes each batch to the stack of its signal (each signal may have its own
/// endpoint, protocol and headers).
#[derive(Clone, Debug)]
pub struct SignalRouter {
    services: [ExportService; Signal::COUNT],
}

/// What the facade keeps from building the stacks.
#[derive(Debug)]
pub(crate) struct Stacks {
    pub(crate) router: SignalRouter,
    pub(crate) concurrency: Vec<ConcurrencyHandle>,
    pub(crate) last_errors: Arc<LastErrors>,
}

/// The error of each signal's last failed export attempt, as text, for
/// reports such as `otlp-client send`'s. Header values never appear in
/// transport errors, so none appear here.
#[derive(Debug, Default)]
pub(crate) struct LastErrors([Mutex<Option<String>>; Signal::COUNT]);

impl LastErrors {
    /// Keeps `error` (with a protocol-mismatch hint when the answer shows
    /// one its text does not name) as `signal`'s last error.
    fn record(&self, signal: Signal, error: &TransportError) {
        let text = match otlp_transport::protocol_mismatch_hint(error) {
            Some(hint) => format!("{error} ({hint})"),
            None => error.to_string(),
        };
        if let Some(slot) = self.0.get(signal.index()) {
            *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(text);
        }
    }

    /// `signal`'s last error, if an attempt has failed.
    pub(crate) fn get(&self, signal: Signal) -> Option<String> {
        self.0
            .get(signal.index())
            .and_then(|slot| slot.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

/// A no-op that pins a seam to `Service<Batch>`, so a type error names the
/// layer that broke it instead of the whole stack.
fn check_service<S: Service<Batch>>(s: S) -> S {
    s
}

/// Builds the signal stacks from config, one per [`Signal`].
pub(crate) fn build(
    config: &Config,
    metrics: &Arc<SelfMetrics>,
    profiler: &Arc<StageProfiler>,
) -> Result<Stacks, OtlpError> {
    let mut services = Vec::with_capacity(Signal::COUNT);
    let mut concurrency = Vec::with_capacity(Signal::COUNT);
    let last_errors = Arc::new(LastErrors::default());
    for signal in Signal::ALL {
        let (svc, handle) = signal_stack(signal, config, metrics, profiler, &last_errors)?;
        services.push(svc);
        concurrency.push(handle);
    }
    let services: [ExportService; Signal::COUNT] = services
        .try_into()
        .map_err(|_| OtlpError::Internal("one stack per signal"))?;
    Ok(Stacks {
        router: SignalRouter { services },
        concurrency,
        last_errors,
    })
}

/// The stack of one signal, outermost layer first.
fn signal_stack(
    signal: Signal,
    config: &Config,
    metrics: &Arc<SelfMetrics>,
    profiler: &Arc<StageProfiler>,
    last_errors: &Arc<LastErrors>,
) -> Result<(ExportService, ConcurrencyHandle), OtlpError> {
    let profiler = profiler.clone();
    let attempts = metrics.clone();
    let last_errors = last_errors.clone();
    // Transport: sends the batch's bytes as they are and classifies the answer
    // per the OTLP spec. It applies the request timeout to each attempt itself.
    // With `loadbalancing:`, a load balancer over one exporter per backend.
    let (transport, exporter) = crate::balance::transport(config, signal, metrics)?;
    let transport = check_service(transport);
    let compress = exporter
        .filter(Exporter::compresses)
        .map(|exporter| (exporter, profiler.clone()));

    let concurrency = AdaptiveConcurrencyLayer::new(convert::concurrency_policy(config)?);
    let handle = concurrency.handle();

    let stack = ServiceBuilder::new()
        // Metrics: outermost, so it records each batch once, with its final
        // outcome after recovery and retries; exporter health is fed per
        // attempt further in.
        .layer(MetricsLayer::new(metrics.clone()).without_health())
        // Recovery answers per part (a split batch can half succeed); fold that
        // back into one ExportResponse so the pipeline's accounting stays exact.
        .map_result(fold_recovered)
        // Recovery: split a too-large batch, reconnect, slow down on throttling
        // (the built-in strategies, in that order). Outside retry, so each half
        // of a split batch gets its own retries.
        .layer(RecoveryLayer::default())
        // Compression: once per batch (or split part), here on the
        // export worker before the first attempt; the batch keeps the bytes
        // for its retries. A failure is left to the attempt, which fails the
        // same way with its error.
        .map_request(move |batch: Batch| {
            if let Some((exporter, profiler)) = &compress {
                let started = Instant::now();
                if exporter.prepare(&batch).is_ok() {
                    profiler.record(Stage::Compress, started.elapsed());
                }
            }
            batch
        })
        // Retry: backoff with jitter, throttle hints, a budget against retry storms.
        .layer(
            RetryLayer::new(convert::retry_policy(config, signal)?).with_shared_events(Arc::new(
                SignalRetryEvents {
                    signal,
                    metrics: metrics.clone(),
                    profiler: profiler.clone(),
                },
            )),
        )
        // Adaptive concurrency: inside retry, so every attempt holds a permit
        // and every round trip feeds the RTT estimate.
        .layer(concurrency)
        // Each attempt: its time on the wire ("send") for the profiler, and
        // its outcome for the attempt counters and exporter health, so an
        // outage shows at the first failed attempt, not when retries give up;
        // and a failed attempt's error as the signal's last error.
        .map_future(move |fut| {
            let profiler = profiler.clone();
            let attempts = attempts.clone();
            let last_errors = last_errors.clone();
            let started = Instant::now();
            async move {
                let res: Result<ExportResponse, TransportError> = fut.await;
                profiler.record(Stage::Send, started.elapsed());
                let outcome = match &res {
                    Ok(_) => "ok",
                    Err(e) => {
                        last_errors.record(signal, e);
                        e.classify().as_str()
                    }
                };
                attempts.record_attempt(signal, outcome);
                res
            }
        })
        .service(transport);
    let stack = check_service(stack);
    Ok((BoxCloneSyncService::new(stack), handle))
}

/// Folds Recovery's answer into one `ExportResponse`: items of parts that
/// failed for good count as rejected (with the first failure's message). When
/// nothing was delivered, the first failure is the batch's error.
fn fold_recovered(
    res: Result<Recovered<ExportResponse, ExportError>, ExportError>,
) -> Result<ExportResponse, ExportError> {
    let recovered = res?;
    let failed_items = recovered.failed_items();
    let delivered = recovered.delivered_items();
    let (response, failed) = recovered.into_parts();
    match (response, failed.into_iter().next()) {
        (None, Some(first)) if delivered == 0 => Err(first.error),
        (response, first) => {
            let mut response = response.unwrap_or_default();
            if failed_items > 0 {
                response.rejected += failed_items;
                if let Some(first) = first {
                    if !response.message.is_empty() {
                        response.message.push_str("; ");
                    }
                    response.message.push_str(&format!(
                        "{failed_items} items failed after the batch was split: {}",
                        first.error
                    ));
                }
            }
            Ok(response)
        }
    }
}

/// Feeds retry events of one signal into the self-metrics.
#[derive(Debug)]
struct SignalRetryEvents {
    signal: Signal,
    metrics: Arc<SelfMetrics>,
    profiler: Arc<StageProfiler>,
}

impl RetryEvents for SignalRetryEvents {
    fn on_retry(&self, attempt: u32, delay: Duration, cause: Retryability) {
        self.metrics.record_retry(self.signal);
        // The back-off the retry loop sleeps before the next attempt.
        self.profiler.record(Stage::RetryWait, delay);
        tracing::debug!(signal = %self.signal, attempt, ?delay, cause = cause.as_str(), "retrying export");
    }

    fn on_throttle(&self, delay: Duration) {
        self.metrics.record_throttle(self.signal);
        tracing::info!(signal = %self.signal, ?delay, "collector asked to slow down");
    }

    fn on_give_up(&self, reason: GiveUp) {
        tracing::warn!(signal = %self.signal, reason = reason.as_str(), "giving up on a batch");
    }
}

// === impl SignalRouter ===

impl SignalRouter {
    /// A router over one service per signal, in [`Signal::ALL`] order
    /// (traces, metrics, logs, profiles).
    pub fn new(services: [ExportService; Signal::COUNT]) -> Self {
        Self { services }
    }
}

impl Service<Batch> for SignalRouter {
    type Response = ExportResponse;
    type Error = ExportError;
    type Future = Oneshot<ExportService, Batch>;

    /// Always ready: which stack is needed is known only in `call`, where the
    /// chosen stack's own readiness (adaptive concurrency) is awaited.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, batch: Batch) -> Self::Future {
        let i = batch.signal().index();
        self.services[i].clone().oneshot(batch)
    }
}
