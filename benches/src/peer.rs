//! The peer producer behind the `peer-otlp` binary: the standard
//! `opentelemetry_sdk` with its batch processor and `opentelemetry-otlp`.
//!
//! It is set up the way the SDK and exporter documentation show, with only the
//! queue and batch sizes changed by flags, and it creates the spans or log
//! records of [`crate::shape`] from one thread as fast as it can, then
//! flushes and shuts down with the SDK's default timeouts. What it cannot see
//! (how many items its batch processor dropped) the receiver tells.

use std::{
    fmt,
    str::FromStr,
    time::{Duration, Instant},
};

use opentelemetry::{logs::LoggerProvider as _, trace::TracerProvider as _};
use opentelemetry_otlp::{
    LogExporter, SpanExporter, WithExportConfig, WithHttpConfig, WithTonicConfig,
};
use opentelemetry_sdk::{
    error::OTelSdkResult,
    logs::{BatchLogProcessor, SdkLoggerProvider},
    trace::{BatchSpanProcessor, SdkTracerProvider},
};
use otlp_core::Signal;

use crate::{BenchesError, args, shape};

/// How the peer exports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/gRPC through tonic.
    Grpc,
    /// OTLP/HTTP with protobuf bodies (the exporter's default blocking reqwest client).
    Http,
}

/// Request compression, as every producer's `--compression` names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    /// Uncompressed (the default).
    #[default]
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

/// How `peer-otlp` runs.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerConfig {
    /// Traces (spans) or logs (log records).
    pub signal: Signal,
    /// gRPC or HTTP/protobuf.
    pub protocol: Protocol,
    /// The base URL of the receiver (`http://127.0.0.1:4317`); for HTTP the
    /// signal path (`/v1/traces`) is appended.
    pub endpoint: String,
    /// How many items to create.
    pub count: u64,
    /// The batch processor's queue size (the SDK default is 2048).
    pub max_queue_size: usize,
    /// The batch processor's export batch size (the SDK default is 512).
    pub max_export_batch_size: usize,
    /// Request compression (the exporter's own, at its default level).
    pub compression: Compression,
}

/// What the peer knows after a run; delivered counts come from the receiver.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerReport {
    /// Items created (handed to the SDK).
    pub created: u64,
    /// Seconds spent creating them.
    pub create_s: f64,
    /// Seconds spent in `force_flush`.
    pub flush_s: f64,
    /// Seconds spent in `shutdown` (the SDK gives up after 5 s).
    pub shutdown_s: f64,
    /// The error `force_flush` returned, if any.
    pub flush_error: Option<String>,
    /// The error `shutdown` returned, if any.
    pub shutdown_error: Option<String>,
}

// === impl Protocol ===

impl Protocol {
    /// `grpc` or `http`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::Http => "http",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocol {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "grpc" => Ok(Protocol::Grpc),
            "http" | "http/protobuf" => Ok(Protocol::Http),
            other => Err(format!("unknown protocol '{other}', use grpc or http")),
        }
    }
}

// === impl Compression ===

impl Compression {
    /// `none`, `gzip` or `zstd`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    /// The peer exporter's setting, `None` for no compression.
    fn otlp(self) -> Option<opentelemetry_otlp::Compression> {
        match self {
            Compression::None => None,
            Compression::Gzip => Some(opentelemetry_otlp::Compression::Gzip),
            Compression::Zstd => Some(opentelemetry_otlp::Compression::Zstd),
        }
    }
}

impl FromStr for Compression {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Compression::None),
            "gzip" => Ok(Compression::Gzip),
            "zstd" => Ok(Compression::Zstd),
            other => Err(format!(
                "unknown compression '{other}', use none, gzip or zstd"
            )),
        }
    }
}

// === impl PeerConfig ===

impl PeerConfig {
    /// The flags `peer-otlp` accepts, for `--help`.
    pub const USAGE: &'static str = "usage: peer-otlp [--signal traces|logs] [--protocol grpc|http] [--endpoint URL] [--count N] [--queue N] [--batch N] [--compression none|gzip|zstd]
       peer-otlp --describe

Creates N spans (or log records) of the benchmark shape from one thread with
opentelemetry_sdk's batch processor and opentelemetry-otlp, then flushes and
shuts down, and prints what it knows as one JSON line. --queue is the batch
processor's max queue size (SDK default 2048), --batch its export batch size
(default 512), --compression the exporter's request compression (its
default level). The endpoint defaults to http://127.0.0.1:4317 (grpc) or
http://127.0.0.1:4318 (http). --describe prints the shape in Markdown.";

    /// Reads the flags of `peer-otlp` (without the program name).
    ///
    /// # Errors
    ///
    /// Returns [`BenchesError::Arg`] for an unknown flag, a bad value, or the
    /// metrics signal (not a workload of the peer).
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Self, BenchesError> {
        let mut signal = Signal::Traces;
        let mut protocol = Protocol::Grpc;
        let mut endpoint = None;
        let mut count = 100_000;
        let mut max_queue_size = opentelemetry_sdk::trace::OTEL_BSP_MAX_QUEUE_SIZE_DEFAULT;
        let mut max_export_batch_size =
            opentelemetry_sdk::trace::OTEL_BSP_MAX_EXPORT_BATCH_SIZE_DEFAULT;
        let mut compression = Compression::None;
        let mut it = args.into_iter();
        while let Some(flag) = it.next() {
            match flag.as_str() {
                "--signal" => signal = args::value(&mut it, &flag)?,
                "--protocol" => protocol = args::value(&mut it, &flag)?,
                "--endpoint" => endpoint = Some(args::value::<String>(&mut it, &flag)?),
                "--count" => count = args::value(&mut it, &flag)?,
                "--compression" => compression = args::value(&mut it, &flag)?,
                "--queue" => max_queue_size = args::value(&mut it, &flag)?,
                "--batch" => max_export_batch_size = args::value(&mut it, &flag)?,
                _ => return Err(args::unknown(&flag)),
            }
        }
        if signal == Signal::Metrics {
            return Err(BenchesError::Arg {
                flag: "--signal".into(),
                problem: "metrics is not a peer workload, use traces or logs".into(),
            });
        }
        if max_queue_size == 0 || max_export_batch_size == 0 {
            return Err(BenchesError::Arg {
                flag: "--queue/--batch".into(),
                problem: "sizes must be at least 1".into(),
            });
        }
        let endpoint = endpoint.unwrap_or_else(|| match protocol {
            Protocol::Grpc => "http://127.0.0.1:4317".to_owned(),
            Protocol::Http => "http://127.0.0.1:4318".to_owned(),
        });
        Ok(Self {
            signal,
            protocol,
            endpoint,
            count,
            max_queue_size,
            max_export_batch_size,
            compression,
        })
    }

    fn http_url(&self) -> String {
        format!(
            "{}{}",
            self.endpoint.trim_end_matches('/'),
            self.signal.http_path()
        )
    }

    fn exporter_error(&self, e: impl fmt::Display) -> BenchesError {
        BenchesError::Exporter {
            protocol: self.protocol.as_str(),
            endpoint: self.endpoint.clone(),
            message: e.to_string(),
        }
    }
}

// === impl PeerReport ===

impl PeerReport {
    /// The report as the flat JSON object `peer-otlp` prints.
    pub fn to_json(&self, config: &PeerConfig) -> serde_json::Value {
        serde_json::json!({
            "event": "done",
            "producer": "peer-otlp",
            "signal": config.signal.as_str(),
            "protocol": config.protocol.as_str(),
            "max_queue_size": config.max_queue_size,
            "compression": config.compression.as_str(),
            "created": self.created,
            "create_s": self.create_s,
            "flush_s": self.flush_s,
            "shutdown_s": self.shutdown_s,
            "flush_ok": self.flush_error.is_none(),
            "shutdown_ok": self.shutdown_error.is_none(),
            "flush_error": self.flush_error,
            "shutdown_error": self.shutdown_error,
        })
    }
}

/// Runs the peer: builds the SDK pipeline, creates the items, flushes, shuts down.
///
/// Call it from a thread that is not inside a tokio runtime: it starts its
/// own (the tonic channel needs one), and the SDK's batch processor exports
/// from its own thread.
///
/// # Errors
///
/// Returns [`BenchesError::Runtime`] or [`BenchesError::Exporter`] when the
/// pipeline cannot be built, and [`BenchesError::Arg`] for metrics and profiles;
/// export failures are reported in [`PeerReport`].
pub fn run(config: &PeerConfig) -> Result<PeerReport, BenchesError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(BenchesError::Runtime)?;
    let report = {
        // The tonic channel is created lazily on the runtime entered here.
        let _guard = rt.enter();
        match config.signal {
            Signal::Traces => run_traces(config),
            Signal::Logs => run_logs(config),
            Signal::Metrics | Signal::Profiles => Err(BenchesError::Arg {
                flag: "--signal".into(),
                problem: format!(
                    "{} is not a peer workload, use traces or logs",
                    config.signal
                ),
            }),
        }
    };
    rt.shutdown_timeout(Duration::from_secs(1));
    report
}

fn errs(r: OTelSdkResult) -> Option<String> {
    r.err().map(|e| e.to_string())
}

fn run_traces(config: &PeerConfig) -> Result<PeerReport, BenchesError> {
    let compression = config.compression.otlp();
    let exporter = match config.protocol {
        Protocol::Grpc => {
            let b = SpanExporter::builder()
                .with_tonic()
                .with_endpoint(config.endpoint.clone());
            match compression {
                Some(c) => b.with_compression(c).build(),
                None => b.build(),
            }
        }
        Protocol::Http => {
            let b = SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(config.http_url());
            match compression {
                Some(c) => b.with_compression(c).build(),
                None => b.build(),
            }
        }
    }
    .map_err(|e| config.exporter_error(e))?;
    let batch = opentelemetry_sdk::trace::BatchConfigBuilder::default()
        .with_max_queue_size(config.max_queue_size)
        .with_max_export_batch_size(config.max_export_batch_size)
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(
            BatchSpanProcessor::builder(exporter)
                .with_batch_config(batch)
                .build(),
        )
        .with_resource(shape::otel_resource())
        .build();
    let tracer = provider.tracer(shape::SCOPE_NAME);
    Ok(timed(
        config.count,
        || shape::create_spans(&tracer, config.count),
        || provider.force_flush(),
        || provider.shutdown(),
    ))
}

fn run_logs(config: &PeerConfig) -> Result<PeerReport, BenchesError> {
    let compression = config.compression.otlp();
    let exporter = match config.protocol {
        Protocol::Grpc => {
            let b = LogExporter::builder()
                .with_tonic()
                .with_endpoint(config.endpoint.clone());
            match compression {
                Some(c) => b.with_compression(c).build(),
                None => b.build(),
            }
        }
        Protocol::Http => {
            let b = LogExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(config.http_url());
            match compression {
                Some(c) => b.with_compression(c).build(),
                None => b.build(),
            }
        }
    }
    .map_err(|e| config.exporter_error(e))?;
    let batch = opentelemetry_sdk::logs::BatchConfigBuilder::default()
        .with_max_queue_size(config.max_queue_size)
        .with_max_export_batch_size(config.max_export_batch_size)
        .build();
    let provider = SdkLoggerProvider::builder()
        .with_log_processor(
            BatchLogProcessor::builder(exporter)
                .with_batch_config(batch)
                .build(),
        )
        .with_resource(shape::otel_resource())
        .build();
    let logger = provider.logger(shape::SCOPE_NAME);
    Ok(timed(
        config.count,
        || shape::emit_logs(&logger, config.count),
        || provider.force_flush(),
        || provider.shutdown(),
    ))
}

/// Times creation, flush and shutdown the same way for every signal's provider.
fn timed(
    count: u64,
    create: impl FnOnce(),
    flush: impl FnOnce() -> OTelSdkResult,
    shutdown: impl FnOnce() -> OTelSdkResult,
) -> PeerReport {
    let t0 = Instant::now();
    create();
    let create_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let flush_error = errs(flush());
    let flush_s = t1.elapsed().as_secs_f64();
    let t2 = Instant::now();
    let shutdown_error = errs(shutdown());
    PeerReport {
        created: count,
        create_s,
        flush_s,
        shutdown_s: t2.elapsed().as_secs_f64(),
        flush_error,
        shutdown_error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_pick_protocol_queue_and_default_endpoint() {
        let args = [
            "--protocol",
            "http",
            "--count",
            "10",
            "--queue",
            "1000000",
            "--signal",
            "logs",
        ];
        let cfg = PeerConfig::from_args(args.map(String::from)).unwrap();
        assert_eq!(cfg.protocol, Protocol::Http);
        assert_eq!(cfg.signal, Signal::Logs);
        assert_eq!(
            (cfg.count, cfg.max_queue_size, cfg.max_export_batch_size),
            (10, 1_000_000, 512)
        );
        assert_eq!(cfg.http_url(), "http://127.0.0.1:4318/v1/logs");
        let cfg = PeerConfig::from_args(Vec::new()).unwrap();
        assert_eq!((cfg.protocol, cfg.max_queue_size), (Protocol::Grpc, 2048));
        assert_eq!(cfg.endpoint, "http://127.0.0.1:4317");
    }

    #[test]
    fn running_a_metrics_workload_is_an_error_not_a_traces_run() {
        let config = PeerConfig {
            signal: Signal::Metrics,
            ..PeerConfig::from_args(Vec::new()).unwrap()
        };
        let err = run(&config).unwrap_err();
        assert!(matches!(err, BenchesError::Arg { .. }), "{err}");
    }

    #[test]
    fn metrics_and_empty_queues_are_refused() {
        let err = PeerConfig::from_args(["--signal", "metrics"].map(String::from)).unwrap_err();
        assert!(err.to_string().contains("traces or logs"), "{err}");
        let err = PeerConfig::from_args(["--queue", "0"].map(String::from)).unwrap_err();
        assert!(err.to_string().contains("at least 1"), "{err}");
        let err = PeerConfig::from_args(["--protocol", "udp"].map(String::from)).unwrap_err();
        assert!(err.to_string().contains("'udp'"), "{err}");
    }
}
