//! Our producers behind the `ours-native` and `ours-sdk` binaries: the facade
//! crate `otlp` creating the [`crate::shape`] telemetry.
//!
//! `ours-native` builds each span (or log record) as an opentelemetry-proto
//! message exactly as [`shape::proto_span`] does and hands it to the pipeline
//! with [`otlp::span_item`] under resource and scope groups encoded once;
//! with `--direct` it writes the same span through the borrowed
//! [`otlp::wire::SpanRecord`] API instead ([`shape::DirectShape`]), with no
//! prost message and no allocation per field.
//! `ours-sdk` runs the same `opentelemetry_sdk` tracer and loop as the peer
//! ([`shape::create_spans`]) with our [`OtlpSpanProcessor`] in place of the
//! SDK's batch processor. Both then flush, shut down within a deadline, and
//! report the pipeline's own accounting beside the created count.

use std::{
    fmt::Write as _,
    sync::Arc,
    time::{Duration, Instant},
};

use opentelemetry::{logs::LoggerProvider as _, trace::TracerProvider as _};
use opentelemetry_sdk::{logs::SdkLoggerProvider, trace::SdkTracerProvider};
use otlp::{
    Otlp,
    config::{Flags, Overflow},
    core::{Batch, DropReason, Signal},
    pipeline::ShutdownReport,
    sdk::{OtlpLogProcessor, OtlpSpanProcessor},
};

use crate::{BenchesError, Compression, Protocol, args, shape};

/// How long the final `shutdown` may take to drain what is still queued.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(30);

/// Which of our front doors a run goes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// The facade API with opentelemetry-proto messages (`ours-native`).
    Native,
    /// The `opentelemetry_sdk` tracer / logger with our processors (`ours-sdk`).
    Sdk,
}

/// How `ours-native` / `ours-sdk` run.
#[derive(Clone, Debug, PartialEq)]
pub struct OursConfig {
    /// Native facade API or the SDK bridge.
    pub path: Path,
    /// Traces (spans) or logs (log records).
    pub signal: Signal,
    /// gRPC or HTTP/protobuf.
    pub protocol: Protocol,
    /// The base URL of the receiver; for HTTP the pipeline appends `/v1/<signal>`.
    pub endpoint: String,
    /// How many items to create.
    pub count: u64,
    /// The queue's overflow policy; `None` keeps the config default.
    pub overflow: Option<Overflow>,
    /// Native path only: when set, one export request of this many items is
    /// encoded up front and sent again and again as an encoded batch (the
    /// relay's input and the transport's ceiling), instead of one item at a time.
    pub preencoded: Option<u64>,
    /// Native path only: build each item through the borrowed `otlp::wire`
    /// records instead of opentelemetry-proto messages.
    pub direct: bool,
    /// Request compression (at the config's default level).
    pub compression: Compression,
}

/// What a run of our producer knows: its own timings and the pipeline's accounting.
#[derive(Clone, Debug, PartialEq)]
pub struct OursReport {
    /// Items created and offered to the pipeline.
    pub created: u64,
    /// Items the overflow policy dropped while they were offered (not those
    /// left at shutdown): send errors on the native path, the accounting's
    /// queue drops on the SDK path.
    pub refused: u64,
    /// Seconds spent creating and offering the items.
    pub create_s: f64,
    /// Seconds spent flushing.
    pub flush_s: f64,
    /// Seconds spent in the final shutdown.
    pub shutdown_s: f64,
    /// The pipeline's shutdown report (its final accounting).
    pub report: ShutdownReport,
}

// === impl Path ===

impl Path {
    /// `native` or `sdk`, as the binaries are named.
    pub const fn as_str(self) -> &'static str {
        match self {
            Path::Native => "native",
            Path::Sdk => "sdk",
        }
    }
}

// === impl OursConfig ===

impl OursConfig {
    /// The flags `ours-native` and `ours-sdk` accept, for `--help`.
    pub const USAGE: &'static str = "usage: ours-native|ours-sdk [--signal traces|logs] [--protocol grpc|http] [--endpoint URL] [--count N] [--overflow default|block|drop_newest|drop_oldest] [--preencoded N] [--direct] [--compression none|gzip|zstd]

Creates N spans (or log records) of the benchmark shape from one thread and
exports them with the otlp facade (ours-native: opentelemetry-proto messages
through the facade API; ours-sdk: the opentelemetry_sdk tracer or logger with
our OtlpSpanProcessor / OtlpLogProcessor), then flushes, shuts down within
30 s and prints one JSON line with the created count, the timings and the
pipeline's final accounting. --overflow default keeps the config default
(drop_oldest); block holds the producer back instead of dropping.
--preencoded N (ours-native only) encodes one request of N items up front and
sends it repeatedly as an already-encoded batch. --direct (ours-native only)
builds each item with the borrowed otlp::wire records instead of
opentelemetry-proto messages. --compression sets the request compression
(config key compression, default level).";

    /// Reads the flags (without the program name) for a run on `path`.
    ///
    /// # Errors
    ///
    /// Returns [`BenchesError::Arg`] for an unknown flag, a bad value, or the
    /// metrics signal (not a workload of these producers).
    pub fn from_args(
        path: Path,
        args: impl IntoIterator<Item = String>,
    ) -> Result<Self, BenchesError> {
        let mut signal = Signal::Traces;
        let mut protocol = Protocol::Grpc;
        let mut endpoint = None;
        let mut count = 100_000;
        let mut overflow = None;
        let mut preencoded = None;
        let mut direct = false;
        let mut compression = Compression::None;
        let mut it = args.into_iter();
        while let Some(flag) = it.next() {
            match flag.as_str() {
                "--signal" => signal = args::value(&mut it, &flag)?,
                "--protocol" => protocol = args::value(&mut it, &flag)?,
                "--endpoint" => endpoint = Some(args::value::<String>(&mut it, &flag)?),
                "--count" => count = args::value(&mut it, &flag)?,
                "--overflow" => {
                    let raw: String = args::value(&mut it, &flag)?;
                    overflow = if raw == "default" {
                        None
                    } else {
                        Some(raw.parse::<Overflow>().map_err(|()| BenchesError::Arg {
                            flag: flag.clone(),
                            problem: format!(
                                "'{raw}': use default, block, drop_newest or drop_oldest"
                            ),
                        })?)
                    };
                }
                "--preencoded" => preencoded = Some(args::value(&mut it, &flag)?),
                "--direct" => direct = true,
                "--compression" => compression = args::value(&mut it, &flag)?,
                _ => return Err(args::unknown(&flag)),
            }
        }
        if signal == Signal::Metrics {
            return Err(BenchesError::Arg {
                flag: "--signal".into(),
                problem: "metrics is not a benchmark workload, use traces or logs".into(),
            });
        }
        if preencoded == Some(0) || (preencoded.is_some() && path == Path::Sdk) {
            return Err(BenchesError::Arg {
                flag: "--preencoded".into(),
                problem: "give at least 1 item per request, and only to ours-native".into(),
            });
        }
        if direct && (path == Path::Sdk || preencoded.is_some()) {
            return Err(BenchesError::Arg {
                flag: "--direct".into(),
                problem: "only ours-native encodes items directly, and not with --preencoded"
                    .into(),
            });
        }
        let endpoint = endpoint.unwrap_or_else(|| match protocol {
            Protocol::Grpc => "http://127.0.0.1:4317".to_owned(),
            Protocol::Http => "http://127.0.0.1:4318".to_owned(),
        });
        Ok(Self {
            path,
            signal,
            protocol,
            endpoint,
            count,
            overflow,
            preencoded,
            direct,
            compression,
        })
    }

    /// The config flags our exporter is built from: endpoint, protocol,
    /// compression (none unless asked, as the peer), and the overflow policy
    /// when one is given.
    pub fn flags(&self) -> Flags {
        let protocol = match self.protocol {
            Protocol::Grpc => "grpc",
            Protocol::Http => "http/protobuf",
        };
        let mut flags = Flags::new()
            .set("endpoint", self.endpoint.clone())
            .set("protocol", protocol)
            .set("compression", self.compression.as_str());
        if let Some(o) = self.overflow {
            flags = flags.set("queue.overflow", o.as_str());
        }
        flags
    }

    fn build(&self) -> Result<Otlp, BenchesError> {
        Otlp::builder()
            .with_flags(self.flags())
            .build()
            .map_err(|e| BenchesError::Ours(Box::new(e)))
    }
}

// === impl OursReport ===

impl OursReport {
    /// The report as the flat JSON object the binaries print.
    pub fn to_json(&self, config: &OursConfig) -> serde_json::Value {
        let stats = self.report.stats.signal(config.signal);
        let mut reasons = String::new();
        for (reason, n) in &stats.dropped {
            if *n > 0 {
                let _ = write!(
                    reasons,
                    "{}{}={n}",
                    if reasons.is_empty() { "" } else { "," },
                    reason.as_str()
                );
            }
        }
        serde_json::json!({
            "event": "done",
            "producer": format!("ours-{}", config.path.as_str()),
            "signal": config.signal.as_str(),
            "protocol": config.protocol.as_str(),
            "overflow": config.overflow.map_or("default", Overflow::as_str),
            "direct": config.direct,
            "compression": config.compression.as_str(),
            "created": self.created,
            "refused": self.refused,
            "create_s": self.create_s,
            "flush_s": self.flush_s,
            "shutdown_s": self.shutdown_s,
            "shutdown_ok": self.report.drained,
            "accepted": stats.accepted,
            "sent": stats.sent,
            "dropped_total": stats.dropped_total(),
            "dropped_reasons": reasons,
            "failed_total": stats.failed_total(),
            "left_queued": self.report.left_queued,
        })
    }

    /// Items dropped for `reason`, from the final accounting of `signal`.
    pub fn dropped(&self, signal: Signal, reason: DropReason) -> u64 {
        self.report
            .stats
            .signal(signal)
            .dropped
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| *n)
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, BenchesError> {
    // The default worker count (one per core) runs the pipeline; the items
    // are created on the calling thread, as the peer creates them.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(BenchesError::Runtime)
}

/// Runs one of our producers: builds the exporter, creates the items,
/// flushes, shuts down.
///
/// Call it from a thread that is not inside a tokio runtime: it starts its own.
///
/// # Errors
///
/// Returns [`BenchesError::Runtime`] or [`BenchesError::Ours`] when the
/// pipeline cannot be built; export failures are in the report's accounting.
pub fn run(config: &OursConfig) -> Result<OursReport, BenchesError> {
    let rt = runtime()?;
    let report = match config.path {
        Path::Native => rt.block_on(run_native(config)),
        Path::Sdk => run_sdk(&rt, config),
    };
    rt.shutdown_timeout(Duration::from_secs(1));
    report
}

async fn run_native(config: &OursConfig) -> Result<OursReport, BenchesError> {
    let otlp = config.build()?;
    let sender = otlp.sender();
    // Resource and scope are encoded once, for every item.
    let resource = otlp::resource_group(&shape::proto_resource(), "");
    let scope = otlp::scope_group(&shape::proto_scope(), "");
    let mut refused = 0;
    let t0 = Instant::now();
    match config.signal {
        _ if config.preencoded.is_some() => {
            let per = config.preencoded.unwrap_or(1).min(config.count.max(1));
            let encode = |n: u64| match config.signal {
                Signal::Logs => shape::encode(&shape::logs_request(n)),
                _ => shape::encode(&shape::trace_request(n)),
            };
            let full = encode(per)?;
            let mut left = config.count;
            while left > 0 {
                // A new batch over the same bytes each time (not a clone,
                // which would share the first one's compressed form).
                let batch = if left >= per {
                    Batch::new(config.signal, full.clone(), per)
                } else {
                    Batch::new(config.signal, encode(left)?, left)
                };
                let n = batch.items();
                left -= n;
                if sender.send_batch(batch).await.is_err() {
                    refused += n;
                }
            }
        }
        Signal::Logs if config.direct => {
            let shape = shape::DirectShape::new();
            for _ in 0..config.count {
                let item = shape
                    .log_record(shape::now_nanos())
                    .to_item(&resource, &scope);
                if sender.send(item).await.is_err() {
                    refused += 1;
                }
            }
        }
        Signal::Logs => {
            for _ in 0..config.count {
                let record = shape::proto_log_record(shape::now_nanos());
                let item = otlp::log_item(&resource, &scope, &record);
                if sender.send(item).await.is_err() {
                    refused += 1;
                }
            }
        }
        _ if config.direct => {
            let shape = shape::DirectShape::new();
            for i in 0..config.count {
                let (trace_id, span_id) = shape::ids(i);
                let item = shape.with_span(&trace_id, &span_id, shape::now_nanos(), |span| {
                    span.to_item(&resource, &scope)
                });
                if sender.send(item).await.is_err() {
                    refused += 1;
                }
            }
        }
        _ => {
            for i in 0..config.count {
                let (trace_id, span_id) = shape::ids(i);
                let span = shape::proto_span(trace_id, span_id, shape::now_nanos());
                let item = otlp::span_item(&resource, &scope, &span);
                if sender.send(item).await.is_err() {
                    refused += 1;
                }
            }
        }
    }
    let create_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    // Bounded like the shutdown: a dead receiver must not hang the bench.
    let _ = tokio::time::timeout(SHUTDOWN_DEADLINE, otlp.flush()).await;
    let flush_s = t1.elapsed().as_secs_f64();
    let t2 = Instant::now();
    let report = otlp.shutdown(SHUTDOWN_DEADLINE).await;
    Ok(OursReport {
        created: config.count,
        refused,
        create_s,
        flush_s,
        shutdown_s: t2.elapsed().as_secs_f64(),
        report,
    })
}

fn run_sdk(rt: &tokio::runtime::Runtime, config: &OursConfig) -> Result<OursReport, BenchesError> {
    // The exporter and the processor are made inside the runtime's context
    // (the processor keeps its handle); the spans are then created on this
    // thread outside it, as an application thread would.
    let otlp = {
        let _entered = rt.enter();
        Arc::new(config.build()?)
    };
    // The provider's flush and shutdown results are not needed: the
    // pipeline's own report below is the accounting.
    let (create_s, flush_s, t2) = match config.signal {
        Signal::Logs => {
            let provider = {
                let _entered = rt.enter();
                SdkLoggerProvider::builder()
                    .with_log_processor(OtlpLogProcessor::new(otlp.clone()))
                    .with_resource(shape::otel_resource())
                    .build()
            };
            let logger = provider.logger(shape::SCOPE_NAME);
            phases(
                || shape::emit_logs(&logger, config.count),
                || drop(provider.force_flush()),
                || drop(provider.shutdown()),
            )
        }
        _ => {
            let provider = {
                let _entered = rt.enter();
                SdkTracerProvider::builder()
                    .with_span_processor(OtlpSpanProcessor::new(otlp.clone()))
                    .with_resource(shape::otel_resource())
                    .build()
            };
            let tracer = provider.tracer(shape::SCOPE_NAME);
            phases(
                || shape::create_spans(&tracer, config.count),
                || drop(provider.force_flush()),
                || drop(provider.shutdown()),
            )
        }
    };
    // The provider's shutdown drained the pipeline within the SDK's bound;
    // this returns that report or drains what is left.
    let report = rt.block_on(otlp.shutdown(SHUTDOWN_DEADLINE));
    let mut report = OursReport {
        created: config.count,
        refused: 0,
        create_s,
        flush_s,
        shutdown_s: t2.elapsed().as_secs_f64(),
        report,
    };
    // The SDK hook cannot hand a refusal back, so what the overflow policy
    // dropped while the items were offered is read from the accounting.
    report.refused = [
        DropReason::QueueFull,
        DropReason::Evicted,
        DropReason::BlockTimeout,
        DropReason::Oversized,
    ]
    .into_iter()
    .map(|r| report.dropped(config.signal, r))
    .sum();
    Ok(report)
}

/// Times item creation and flush; returns their seconds and when shutdown
/// started (it ends after the pipeline's own shutdown).
fn phases(
    create: impl FnOnce(),
    flush: impl FnOnce(),
    shutdown: impl FnOnce(),
) -> (f64, f64, Instant) {
    let t0 = Instant::now();
    create();
    let create_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    flush();
    let flush_s = t1.elapsed().as_secs_f64();
    let t2 = Instant::now();
    shutdown();
    (create_s, flush_s, t2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_pick_path_signal_protocol_and_overflow() {
        let args = [
            "--protocol",
            "http",
            "--signal",
            "logs",
            "--count",
            "5",
            "--overflow",
            "block",
        ];
        let cfg = OursConfig::from_args(Path::Sdk, args.map(String::from)).unwrap();
        assert_eq!(
            (cfg.path, cfg.signal, cfg.protocol, cfg.count, cfg.overflow),
            (
                Path::Sdk,
                Signal::Logs,
                Protocol::Http,
                5,
                Some(Overflow::Block)
            )
        );
        assert_eq!(cfg.endpoint, "http://127.0.0.1:4318");
        let cfg = OursConfig::from_args(
            Path::Native,
            ["--overflow", "default", "--preencoded", "512"].map(String::from),
        )
        .unwrap();
        assert_eq!(
            (cfg.protocol, cfg.overflow, cfg.preencoded),
            (Protocol::Grpc, None, Some(512))
        );
        assert!(OursConfig::from_args(Path::Sdk, ["--preencoded", "8"].map(String::from)).is_err());
        assert!(
            OursConfig::from_args(Path::Native, ["--preencoded", "0"].map(String::from)).is_err()
        );
        let cfg = OursConfig::from_args(Path::Native, ["--direct"].map(String::from)).unwrap();
        assert!(cfg.direct);
        assert!(OursConfig::from_args(Path::Sdk, ["--direct"].map(String::from)).is_err());
        assert!(
            OursConfig::from_args(
                Path::Native,
                ["--direct", "--preencoded", "8"].map(String::from)
            )
            .is_err()
        );
    }

    #[test]
    fn bad_overflow_and_metrics_are_refused() {
        let err = OursConfig::from_args(Path::Native, ["--overflow", "wait"].map(String::from))
            .unwrap_err();
        assert!(err.to_string().contains("'wait'"), "{err}");
        let err = OursConfig::from_args(Path::Native, ["--signal", "metrics"].map(String::from))
            .unwrap_err();
        assert!(err.to_string().contains("traces or logs"), "{err}");
    }

    #[test]
    fn flags_build_a_valid_config_for_each_protocol() {
        for protocol in ["grpc", "http"] {
            let cfg = OursConfig::from_args(
                Path::Native,
                ["--protocol", protocol, "--overflow", "block"].map(String::from),
            )
            .unwrap();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let otlp = rt.block_on(async { cfg.build() }).unwrap();
            assert_eq!(otlp.config().queue.overflow, Overflow::Block);
            let endpoint = &otlp.config().signal(Signal::Traces).endpoint;
            assert!(endpoint.starts_with("http://127.0.0.1:431"), "{endpoint}");
            if protocol == "http" {
                assert!(endpoint.ends_with("/v1/traces"), "{endpoint}");
            }
        }
    }
}
