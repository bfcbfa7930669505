//! `Otlp`, the assembled exporter, and its builder.

use std::{path::Path, sync::Arc, time::Duration};

use otlp_config::{Config, ConfigFile, Env, Flags, Sources};
use otlp_core::{Batch, Observer, Signal};
use otlp_observability::{
    DiskCheck, ExporterCheck, HealthChecker, MemoryCheck, Probe, QueueCheck, SelfMetrics,
    StageProfiler,
};
use otlp_pipeline::{Item, Pipeline, Sender, ShutdownReport, Stats, TrySendError};
use otlp_resilience::ConcurrencyHandle;

use crate::{Intake, OtlpError, convert, stack};

/// The assembled exporter: pipeline, export stack and self-metrics.
///
/// Cheap handles to feed it come from [`Otlp::sender`]; everything it
/// accepted is accounted in [`Otlp::stats`] and its metrics.
#[derive(Debug)]
pub struct Otlp {
    pipeline: Pipeline,
    // Kept, not made per call: `try_export` runs once per item.
    sender: Sender,
    metrics: Arc<SelfMetrics>,
    profiler: Arc<StageProfiler>,
    config: Config,
    concurrency: Vec<ConcurrencyHandle>,
    last_errors: Arc<stack::LastErrors>,
}

/// Builds an [`Otlp`] from config sources.
///
/// Without any source the defaults apply, then the process environment is
/// *not* read: call [`OtlpBuilder::with_env`] with `Env::from_process()` to
/// follow `OTEL_EXPORTER_OTLP_*`.
#[derive(Debug, Default)]
pub struct OtlpBuilder {
    sources: Sources,
    config: Option<Config>,
    metrics: Option<Arc<SelfMetrics>>,
}

// === impl OtlpBuilder ===

impl OtlpBuilder {
    /// Uses this config as it is (no file, env or flags).
    pub fn with_config(mut self, config: Config) -> Self {
        self.config = Some(config);
        self
    }

    /// Reads a YAML config file.
    ///
    /// # Errors
    ///
    /// Returns [`OtlpError::Config`] when the file cannot be read or is not YAML.
    pub fn with_config_file(mut self, path: impl AsRef<Path>) -> Result<Self, OtlpError> {
        self.sources = self.sources.with_file(ConfigFile::read(path)?);
        Ok(self)
    }

    /// Takes environment variables from `env` (`Env::from_process()` for the real one).
    pub fn with_env(mut self, env: Env) -> Self {
        self.sources = self.sources.with_env(env);
        self
    }

    /// Applies command-line style overrides (highest precedence).
    pub fn with_flags(mut self, flags: Flags) -> Self {
        self.sources = self.sources.with_flags(flags);
        self
    }

    /// Reports into these self-metrics (for example shared with an admin server).
    pub fn with_metrics(mut self, metrics: Arc<SelfMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Resolves the config and assembles pipeline and stack.
    ///
    /// # Errors
    ///
    /// [`OtlpError::NoRuntime`] outside a tokio runtime; [`OtlpError::Config`]
    /// listing every config problem; [`OtlpError::Transport`] when an
    /// exporter cannot be built (for example an `https://` endpoint without
    /// the `tls` feature).
    pub fn build(self) -> Result<Otlp, OtlpError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(OtlpError::NoRuntime);
        }
        let config = match self.config {
            Some(c) => c,
            None => self.sources.load()?,
        };
        warn_insecure_skip_verify(&config);
        let metrics = self.metrics.unwrap_or_default();
        let profiler = Arc::new(StageProfiler::new());
        let stacks = stack::build(&config, &metrics, &profiler)?;
        let pipeline_config = convert::pipeline_config(&config);
        metrics.set_queue_capacity(
            pipeline_config.queue.max_items,
            pipeline_config.queue.max_bytes,
        );
        metrics.set_memory_limit(config.memory_limit);
        metrics.set_profiler((*profiler).clone());
        {
            // The gauge shows the highest limit in force across the signals.
            let handles = stacks.concurrency.clone();
            metrics.set_concurrency_source(move || {
                handles.iter().map(|h| h.limit() as u64).max().unwrap_or(0)
            });
        }
        let observer: Arc<dyn Observer> = metrics.clone();
        let pipeline = Pipeline::builder(pipeline_config)
            .with_observer(observer)
            .build(stacks.router)?;
        {
            // Weak: the metrics must not keep a dropped pipeline alive.
            let probe = pipeline.backlog_probe();
            metrics.set_backlog_source(move || probe.read().unwrap_or_default());
        }
        Ok(Otlp {
            sender: pipeline.sender(),
            pipeline,
            metrics,
            profiler,
            config,
            concurrency: stacks.concurrency,
            last_errors: stacks.last_errors,
        })
    }
}

/// Says loudly, once per start, that a signal's collector certificate is not
/// verified (`tls.insecure_skip_verify`).
fn warn_insecure_skip_verify(config: &Config) {
    for sc in &config.signals {
        if sc.tls.insecure_skip_verify
            && sc
                .endpoint
                .trim()
                .to_ascii_lowercase()
                .starts_with("https://")
        {
            tracing::warn!(
                signal = %sc.signal,
                "tls.insecure_skip_verify is on: the collector's certificate is NOT verified, so anyone on the network path can impersonate it and read the data; set tls.ca_file to the CA that signed it instead"
            );
        }
    }
}

// === impl Otlp ===

impl Otlp {
    /// A builder with default config.
    pub fn builder() -> OtlpBuilder {
        OtlpBuilder::default()
    }

    /// A producer handle (cheap to clone, never waits on the network).
    pub fn sender(&self) -> Sender {
        self.sender.clone()
    }

    /// Offers one encoded item; never blocks.
    ///
    /// # Errors
    ///
    /// [`TrySendError`] when the item was not accepted (queue full under a
    /// drop policy, or shut down); the drop is counted.
    pub fn try_export(&self, item: Item) -> Result<(), TrySendError> {
        self.sender.try_send(item)
    }

    /// Offers one already-encoded export request; never blocks.
    ///
    /// # Errors
    ///
    /// As [`Otlp::try_export`].
    pub fn try_export_batch(&self, batch: Batch) -> Result<(), TrySendError> {
        self.sender.try_send_batch(batch)
    }

    /// Waits until everything accepted so far is sent or failed.
    ///
    /// # Cancel safety
    ///
    /// Cancelling the wait loses nothing: the pipeline keeps exporting.
    pub async fn flush(&self) {
        self.pipeline.flush().await;
    }

    /// Stops intake, drains within `deadline`, and reports what was left.
    /// Always returns, even with a dead collector.
    pub async fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        self.pipeline.shutdown(deadline).await
    }

    /// Item accounting so far.
    pub fn stats(&self) -> Stats {
        self.pipeline.stats()
    }

    /// The self-metrics this exporter reports into.
    pub fn metrics(&self) -> &Arc<SelfMetrics> {
        &self.metrics
    }

    /// The stage profiler (per-attempt send times are recorded here).
    pub fn profiler(&self) -> &Arc<StageProfiler> {
        &self.profiler
    }

    /// The resource the config describes (`OTEL_SERVICE_NAME`,
    /// `OTEL_RESOURCE_ATTRIBUTES`); see [`crate::resource`].
    pub fn resource(&self) -> opentelemetry_proto::tonic::resource::v1::Resource {
        crate::encode::resource(&self.config, &[])
    }

    /// The effective config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The error of `signal`'s last failed export attempt (retries included),
    /// `None` while none has failed; kept after later successes. It says why
    /// items were not delivered even when they were still being retried at
    /// shutdown (counted as dropped, `shutdown`). Header values never appear in it.
    pub fn last_error(&self, signal: Signal) -> Option<String> {
        self.last_errors.get(signal)
    }

    /// The adaptive concurrency limit of each signal's stack, indexed by
    /// [`Signal::index`] (traces, metrics, logs, profiles).
    pub fn concurrency_limits(&self) -> [usize; Signal::COUNT] {
        Signal::ALL.map(|s| {
            self.concurrency
                .get(s.index())
                .map_or(0, ConcurrencyHandle::limit)
        })
    }

    /// The health checks of this exporter, by probe:
    ///
    /// - `/health/live`: none beyond answering (the process is responsive);
    ///   never the queue or the upstream, so a backlog or an outage never
    ///   gets the process restarted (that would lose the memory queue);
    /// - `/health/ready`: queue saturation, memory against the limit, and
    ///   the disk queue's free space: whether data can be accepted now;
    ///   never the upstream, so one collector outage does not take every
    ///   replica out of its Service while their queues have room;
    /// - `/health`: all of the above plus the exporter (every attempt;
    ///   503 within 15 s of the first failed attempt, 200 at the first success).
    pub fn health_checker(&self) -> HealthChecker {
        let mut checker = HealthChecker::new()
            .with_probe(
                Probe::Overall,
                ExporterCheck::new(self.metrics.exporter_health()),
            )
            .with_probe(
                Probe::Readiness,
                QueueCheck::from_metrics(self.metrics.clone()),
            )
            .with_probe(Probe::Readiness, MemoryCheck::new(self.config.memory_limit));
        if let Some(p) = &self.config.queue.persistent {
            // Degrade before the quota's last batch: one batch of headroom.
            checker = checker.with_probe(
                Probe::Readiness,
                DiskCheck::new(p.dir.clone(), self.config.batch.max_batch_bytes),
            );
        }
        checker
    }

    /// An intake service for receivers: hands received requests to the
    /// pipeline (see [`Intake`]).
    pub fn intake(&self) -> Intake {
        Intake::new(self.sender.clone())
    }

    /// The pipeline, for callers that need its full API.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }
}
