//! The resolved, typed configuration the facade builds the stack from.
//!
//! Everything here is plain data with public fields, so other crates' own
//! configs can be built from it without this crate knowing them.

use std::{fmt, net::SocketAddr, path::PathBuf, str::FromStr, time::Duration};

use otlp_core::Signal;

/// The default gRPC endpoint (the OTel spec's default for `grpc`).
pub const DEFAULT_GRPC_ENDPOINT: &str = "http://localhost:4317";
/// The default OTLP/HTTP base endpoint; the signal path `v1/<signal>` is appended.
pub const DEFAULT_HTTP_ENDPOINT: &str = "http://localhost:4318";
/// The default admin (health and metrics) listen address.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:8080";
/// The default agent gRPC receiver listen address: loopback only, as the
/// Collector's defaults (set `0.0.0.0:4317` to receive from other hosts).
pub const DEFAULT_RECEIVER_GRPC: &str = "127.0.0.1:4317";
/// The default agent HTTP receiver listen address (loopback only).
pub const DEFAULT_RECEIVER_HTTP: &str = "127.0.0.1:4318";
/// The default time a request has to deliver its whole body to a receiver.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// The default largest request a receiver takes, on the wire and once
/// decompressed: 64 MiB, the OTLP specification's recommended server limit.
pub const DEFAULT_RECEIVER_MAX_REQUEST_BYTES: u64 = 64 << 20;
/// The default time an idle receiver connection stays open.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The effective configuration after all sources were merged and validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The preset the batch, queue and tuning defaults came from.
    pub preset: Preset,
    /// Per-signal export settings, indexed by [`Signal::index`]; see [`Config::signal`].
    pub signals: [SignalConfig; Signal::COUNT],
    /// How long to wait for a connection to be established.
    pub connect_timeout: Duration,
    /// Retry with exponential backoff.
    pub retry: RetryConfig,
    /// When the batcher cuts a batch.
    pub batch: BatchConfig,
    /// The bounded queue between batcher and export workers.
    pub queue: QueueConfig,
    /// Adaptive concurrency of the export workers.
    pub tuning: TuningConfig,
    /// Upper bound of memory the pipeline may hold, in bytes.
    pub memory_limit: u64,
    /// The gzip / zstd level (`compression_level`); `None` for the fastest,
    /// 1. Each batch is compressed once, whatever the number of attempts.
    pub compression_level: Option<u32>,
    /// The admin server (`/health`, `/metrics`).
    pub admin: AdminConfig,
    /// Agent mode receivers; `None` when agent mode is off.
    pub receivers: Option<ReceiversConfig>,
    /// `receivers.enabled` as configured (`None` when unset): `otlp-client
    /// run` receives on the default addresses unless it is `false`.
    pub receivers_enabled: Option<bool>,
    /// Limits of the receivers, whenever they run.
    pub intake: IntakeConfig,
    /// Extra upstream base URLs the exporter balances across (with the main endpoint).
    pub endpoints: Vec<String>,
    /// Attributes of the resource the library and `otlp-client send` produce
    /// (`resource_attributes` / `OTEL_RESOURCE_ATTRIBUTES`, percent-decoded),
    /// with `service.name` from `service_name` / `OTEL_SERVICE_NAME` winning
    /// over one among them. Empty when none is set. The agent never applies
    /// it to data it relays.
    pub resource: Vec<(String, String)>,
    /// The metrics temporality preference (`metrics.temporality_preference`,
    /// `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`): the default of the
    /// SDK bridge's metric exporter; forwarded metrics keep theirs.
    pub metrics_temporality: Temporality,
    /// Trace-aware load balancing over several backends (`loadbalancing:`);
    /// `None` when the section is not set.
    pub loadbalancing: Option<crate::LoadBalancingConfig>,
}

/// The OTLP exporter spec's metrics temporality preference.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Temporality {
    /// Every instrument cumulative (the default).
    #[default]
    Cumulative,
    /// Delta for counters, asynchronous counters and histograms; cumulative
    /// for up-down counters.
    Delta,
    /// Delta for synchronous counters and histograms; cumulative for
    /// up-down counters and asynchronous counters.
    LowMemory,
}

/// Export settings of one signal, fully resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignalConfig {
    /// The signal these settings are for.
    pub signal: Signal,
    /// The full URL: for HTTP including the path (e.g. `http://localhost:4318/v1/traces`),
    /// for gRPC the authority only (e.g. `http://localhost:4317`).
    pub endpoint: String,
    /// The wire protocol.
    pub protocol: Protocol,
    /// Headers sent with every export request (already percent-decoded).
    pub headers: Vec<(String, String)>,
    /// Deadline of one export attempt: the transport bounds its request by it
    /// and the retry layer each attempt (every retry gets its own).
    pub timeout: Duration,
    /// Request body compression.
    pub compression: Compression,
    /// TLS material and options.
    pub tls: TlsConfig,
}

/// The OTLP wire protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// OTLP over gRPC (default port 4317).
    Grpc,
    /// OTLP over HTTP with protobuf bodies (default port 4318).
    HttpProtobuf,
    /// OTLP over HTTP with JSON bodies (default port 4318).
    HttpJson,
}

/// Request body compression.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compression {
    /// No compression.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

/// TLS material and options of one signal's connection.
///
/// Paths written in a config file are resolved against the file's directory;
/// paths from the environment or flags are taken as given (relative to the
/// working directory). TLS is used when the endpoint is `https://` (or, for
/// gRPC, written without a scheme while `insecure` is false); the validator
/// refuses TLS files on an `http://` endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM file of the CA certificate(s) that sign the server's certificate.
    pub ca_file: Option<PathBuf>,
    /// PEM file of the client certificate (mutual TLS).
    pub cert_file: Option<PathBuf>,
    /// PEM file of the client private key (mutual TLS).
    pub key_file: Option<PathBuf>,
    /// As the OpenTelemetry specification says: for a gRPC endpoint written
    /// without a scheme (`collector:4317`), `true` means plaintext and `false`
    /// (the default) TLS. The resolved [`SignalConfig::endpoint`] carries the
    /// chosen scheme; an endpoint with a scheme is never changed by it.
    pub insecure: bool,
    /// **Dangerous** (`tls.insecure_skip_verify`): accept any server
    /// certificate on an `https://` endpoint; warned about at start.
    pub insecure_skip_verify: bool,
}

/// Retry with exponential backoff and jitter.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryConfig {
    /// Retries after the first attempt; `None` (the default) bounds retries
    /// by `max_elapsed` only, `Some(0)` disables retry.
    pub max_retries: Option<u32>,
    /// The first backoff.
    pub initial_backoff: Duration,
    /// The cap on one backoff.
    pub max_backoff: Duration,
    /// Backoff growth factor per attempt (at least 1).
    pub multiplier: f64,
    /// Random fraction (0..=1) of each backoff added or removed.
    pub jitter: f64,
    /// Give up after this much time since the first attempt; `None` never
    /// gives up. Default 5 minutes with the memory queue (the Collector's
    /// exporterhelper default) and `None` with `queue.persistent`: data on
    /// disk is retried until delivered unless a limit is set. `0` in the
    /// config means `None`.
    pub max_elapsed: Option<Duration>,
}

/// When the batcher cuts a batch: whichever limit is reached first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchConfig {
    /// Items per batch.
    pub max_batch_size: usize,
    /// Encoded bytes per batch.
    pub max_batch_bytes: u64,
    /// Longest time an item waits for its batch to fill.
    pub batch_timeout: Duration,
}

/// The bounded queue between batcher and export workers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueConfig {
    /// Items the queue holds at most.
    pub max_items: usize,
    /// Encoded bytes the queue holds at most.
    pub max_bytes: u64,
    /// What happens when the queue is full.
    pub overflow: Overflow,
    /// A disk-backed queue; `None` keeps the queue in memory.
    pub persistent: Option<PersistentConfig>,
}

/// What a full queue does with new data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Overflow {
    /// Refuse the new batch and count it as dropped.
    DropNewest,
    /// Evict the oldest batch and count it as dropped.
    DropOldest,
    /// Make the producer wait (up to its deadline) for room.
    Block,
}

/// A disk-backed queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersistentConfig {
    /// The directory the queue files live in.
    pub dir: PathBuf,
    /// Bytes the queue may use on disk.
    pub max_bytes: u64,
    /// Sync every write to disk before acknowledging it (survives power loss).
    pub fsync: bool,
}

/// Adaptive concurrency of the export workers (AIMD).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TuningConfig {
    /// Adjust concurrency to observed latency and errors.
    pub adaptive: bool,
    /// The lowest concurrency.
    pub min_concurrency: usize,
    /// The highest concurrency (and the fixed one when not adaptive).
    pub max_concurrency: usize,
}

/// The admin server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminConfig {
    /// The address `/health` and `/metrics` are served on.
    pub listen: SocketAddr,
}

/// Agent mode: the receivers the agent listens on. A `None` address is not served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiversConfig {
    /// OTLP/gRPC listen address.
    pub grpc: Option<SocketAddr>,
    /// OTLP/HTTP listen address.
    pub http: Option<SocketAddr>,
    /// Server-side TLS of both receivers (`receivers.tls`); `None` serves plaintext.
    pub tls: Option<ReceiverTlsConfig>,
}

/// Limits of the agent's receivers (`receivers.*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntakeConfig {
    /// Bytes that requests being received, decompressed and validated may
    /// hold at once (`receivers.intake_budget`, default a quarter of
    /// `memory_limit`); past it senders get back-pressure.
    pub budget: u64,
    /// The largest request body on the wire (`receivers.max_request_bytes`, 64 MiB).
    pub max_request_bytes: u64,
    /// The largest request once decompressed (`receivers.max_decompressed_bytes`, 64 MiB).
    pub max_decompressed_bytes: u64,
    /// Time a request has to deliver its whole body (`receivers.body_read_timeout`).
    pub body_read_timeout: Duration,
    /// Time a connection with no request in flight stays open (`receivers.idle_timeout`).
    pub idle_timeout: Duration,
}

/// Server-side TLS of the agent's receivers, as the OpenTelemetry
/// Collector's `tls` receiver settings.
///
/// Paths written in a config file are resolved against the file's directory.
/// The validator requires both files and checks that they hold PEM of the
/// right kind; with `client_ca_file` every client must present a certificate
/// signed by it (mutual TLS).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiverTlsConfig {
    /// PEM file of the server certificate chain (leaf first).
    pub cert_file: PathBuf,
    /// PEM file of the server private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM file of the CA certificate(s) client certificates must chain to;
    /// when set, clients without such a certificate are refused (mutual TLS).
    pub client_ca_file: Option<PathBuf>,
}

/// A named starting point for the batch, queue and tuning settings.
///
/// | setting | `low_latency` | `balanced` | `high_throughput` |
/// |---|---|---|---|
/// | `batch.max_batch_size` | 100 | 512 | 1000 |
/// | `batch.batch_timeout` | 50ms | 200ms | 1s |
/// | `batch.max_batch_bytes` | 1MiB | 2MiB | 4MiB |
/// | `queue.max_items` | 16384 | 65536 | 262144 |
/// | `queue.max_bytes` | 16MiB | 64MiB | 256MiB |
/// | `tuning.max_concurrency` | 4 | 8 | 16 |
///
/// * `low_latency` (the seed's `for_low_latency`): small batches cut after at
///   most 50 ms, so an item reaches the collector quickly; a small queue keeps
///   memory low and makes back-pressure visible early.
/// * `balanced` (default): the OTel SDK's 512-item batch, cut within 200 ms;
///   a queue of a few seconds of traffic at moderate rates.
/// * `high_throughput` (the seed's `for_high_throughput`): 1000-item batches
///   waiting up to 1 s amortise per-request cost; a large queue rides out
///   collector hiccups. `max_batch_bytes` stays at 4 MiB, the default gRPC
///   receive limit of the OpenTelemetry Collector.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Preset {
    /// Small batches, short waits.
    LowLatency,
    /// The default trade-off.
    #[default]
    Balanced,
    /// Large batches and queue.
    HighThroughput,
}

// === impl Config ===

impl Config {
    /// The export settings of `signal`.
    pub fn signal(&self, signal: Signal) -> &SignalConfig {
        &self.signals[signal.index()]
    }
}

impl Default for Config {
    /// The configuration with no file, environment or flags.
    fn default() -> Self {
        crate::resolve::Sources::default().resolve().config
    }
}

// === impl Protocol ===

impl Protocol {
    /// The spelling used in config files and `OTEL_EXPORTER_OTLP_PROTOCOL`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
            Protocol::HttpJson => "http/json",
        }
    }

    /// The accepted spellings.
    pub const VALUES: [&'static str; 3] = ["grpc", "http/protobuf", "http/json"];

    /// Whether this is one of the HTTP protocols.
    pub const fn is_http(self) -> bool {
        !matches!(self, Protocol::Grpc)
    }

    /// The default endpoint (without signal path) for this protocol.
    pub const fn default_endpoint(self) -> &'static str {
        match self {
            Protocol::Grpc => DEFAULT_GRPC_ENDPOINT,
            Protocol::HttpProtobuf | Protocol::HttpJson => DEFAULT_HTTP_ENDPOINT,
        }
    }
}

impl FromStr for Protocol {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s.trim() {
            "grpc" => Ok(Protocol::Grpc),
            "http/protobuf" => Ok(Protocol::HttpProtobuf),
            "http/json" => Ok(Protocol::HttpJson),
            _ => Err(()),
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl Compression ===

impl Compression {
    /// The accepted spellings.
    pub const VALUES: [&'static str; 3] = ["none", "gzip", "zstd"];

    /// The spelling used in config files and `OTEL_EXPORTER_OTLP_COMPRESSION`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

impl FromStr for Compression {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s.trim() {
            "none" => Ok(Compression::None),
            "gzip" => Ok(Compression::Gzip),
            "zstd" => Ok(Compression::Zstd),
            _ => Err(()),
        }
    }
}

// === impl Temporality ===

impl Temporality {
    /// The accepted spellings (case-insensitive).
    pub const VALUES: [&'static str; 3] = ["cumulative", "delta", "lowmemory"];

    /// The spelling used in config files and the environment.
    pub const fn as_str(self) -> &'static str {
        match self {
            Temporality::Cumulative => "cumulative",
            Temporality::Delta => "delta",
            Temporality::LowMemory => "lowmemory",
        }
    }
}

impl FromStr for Temporality {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cumulative" => Ok(Temporality::Cumulative),
            "delta" => Ok(Temporality::Delta),
            "lowmemory" => Ok(Temporality::LowMemory),
            _ => Err(()),
        }
    }
}

// === impl Overflow ===

impl Overflow {
    /// The accepted spellings.
    pub const VALUES: [&'static str; 3] = ["drop_newest", "drop_oldest", "block"];

    /// The spelling used in config files.
    pub const fn as_str(self) -> &'static str {
        match self {
            Overflow::DropNewest => "drop_newest",
            Overflow::DropOldest => "drop_oldest",
            Overflow::Block => "block",
        }
    }
}

impl FromStr for Overflow {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s.trim() {
            "drop_newest" => Ok(Overflow::DropNewest),
            "drop_oldest" => Ok(Overflow::DropOldest),
            "block" => Ok(Overflow::Block),
            _ => Err(()),
        }
    }
}

// === impl Preset ===

impl Preset {
    /// The accepted spellings.
    pub const VALUES: [&'static str; 3] = ["low_latency", "balanced", "high_throughput"];

    /// The spelling used in config files (`preset:`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Preset::LowLatency => "low_latency",
            Preset::Balanced => "balanced",
            Preset::HighThroughput => "high_throughput",
        }
    }

    /// The batch settings of this preset.
    pub const fn batch(self) -> BatchConfig {
        match self {
            Preset::LowLatency => BatchConfig {
                max_batch_size: 100,
                max_batch_bytes: 1 << 20,
                batch_timeout: Duration::from_millis(50),
            },
            Preset::Balanced => BatchConfig {
                max_batch_size: 512,
                max_batch_bytes: 2 << 20,
                batch_timeout: Duration::from_millis(200),
            },
            Preset::HighThroughput => BatchConfig {
                max_batch_size: 1000,
                max_batch_bytes: 4 << 20,
                batch_timeout: Duration::from_secs(1),
            },
        }
    }

    /// `(queue.max_items, queue.max_bytes)` of this preset.
    pub const fn queue_limits(self) -> (usize, u64) {
        match self {
            // Every preset takes the Collector's default 8192-item batch
            // several times over: the byte limit is what bounds memory.
            Preset::LowLatency => (16_384, 16 << 20),
            Preset::Balanced => (65_536, 64 << 20),
            Preset::HighThroughput => (262_144, 256 << 20),
        }
    }

    /// `tuning.max_concurrency` of this preset.
    pub const fn max_concurrency(self) -> usize {
        match self {
            Preset::LowLatency => 4,
            Preset::Balanced => 8,
            Preset::HighThroughput => 16,
        }
    }
}

impl FromStr for Preset {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s.trim() {
            "low_latency" => Ok(Preset::LowLatency),
            "balanced" => Ok(Preset::Balanced),
            "high_throughput" => Ok(Preset::HighThroughput),
            _ => Err(()),
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
