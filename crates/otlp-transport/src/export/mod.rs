//! The exporters: OTLP/gRPC, OTLP/HTTP (protobuf and JSON), and the
//! [`Exporter`] that dispatches over protocols and balances over endpoints.

// With neither `grpc` nor `http` there is no exporter to build (build() reports
// the missing feature), so the shared plumbing is unused in that configuration.
#![cfg_attr(
    not(any(feature = "grpc", feature = "http")),
    allow(dead_code, unused_variables, unused_mut, unused_imports)
)]

use std::{
    fmt,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use otlp_core::{Batch, Classify as _, ExportResponse};

use crate::TransportError;

pub(crate) mod classify;
mod compress;
pub(crate) mod connect;
#[cfg(feature = "grpc")]
mod grpc;
#[cfg(feature = "http")]
mod http;
#[cfg(feature = "http-json")]
pub(crate) mod json;
#[cfg(feature = "tls")]
pub(crate) mod tls;

#[cfg(feature = "grpc")]
pub use self::grpc::GrpcExporter;
#[cfg(feature = "http")]
pub use self::http::HttpExporter;

/// The spec-style User-Agent sent by every exporter.
pub const USER_AGENT: &str = concat!(
    "OTel-OTLP-Exporter-Rust/",
    env!("CARGO_PKG_VERSION"),
    " otlp-rust"
);

/// Default `max_request_bytes`: 64 MiB.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;

/// The wire protocol of an exporter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// OTLP/gRPC (default port 4317).
    #[default]
    Grpc,
    /// OTLP/HTTP with protobuf bodies (default port 4318).
    HttpProtobuf,
    /// OTLP/HTTP with JSON bodies (default port 4318).
    HttpJson,
}

/// Request body compression, applied once per batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// No compression.
    #[default]
    None,
    /// gzip (feature `gzip`).
    Gzip,
    /// zstd (feature `zstd`).
    Zstd,
}

/// TLS settings for `https://` endpoints.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM file of the CA(s) that signed the collector's certificate; the
    /// system roots are used when unset.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain for mutual TLS.
    pub cert_file: Option<PathBuf>,
    /// PEM client private key for mutual TLS.
    pub key_file: Option<PathBuf>,
    /// As in the OpenTelemetry spec: for an endpoint written without a scheme,
    /// `true` means plaintext (`http://`), `false` means TLS (`https://`).
    /// It never downgrades an explicit `https://`.
    pub insecure: bool,
    /// **Dangerous**: accept any server certificate (unknown issuer, wrong
    /// name, expired) on an `https://` endpoint. The connection is still
    /// encrypted and the handshake signature still checked, but anyone on the
    /// path can impersonate the collector. For tests against self-signed
    /// collectors only; prefer `ca_file`.
    pub insecure_skip_verify: bool,
}

/// Everything an exporter needs, as plain values.
///
/// `Debug` shows header names only: header values (tokens) are never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct ExporterConfig {
    /// Base URL of the collector, e.g. `http://localhost:4317` (gRPC) or
    /// `http://localhost:4318` (HTTP, the exporter appends `/v1/<signal>`).
    pub endpoint: String,
    /// More endpoints of the same collector tier: requests go round-robin over
    /// all endpoints and fail over to the next one on connection errors.
    pub additional_endpoints: Vec<String>,
    /// The wire protocol.
    pub protocol: Protocol,
    /// Extra request headers (e.g. authorization), sent with every request.
    pub headers: Vec<(String, String)>,
    /// Timeout of one export request (default 10 s).
    pub timeout: Duration,
    /// Timeout of connection setup, TCP and TLS (default 5 s).
    pub connect_timeout: Duration,
    /// Request compression (default none).
    pub compression: Compression,
    /// The compression level (default [`Compression::DEFAULT_LEVEL`], the
    /// fastest); see [`Compression::levels`].
    pub compression_level: Option<u32>,
    /// TLS settings for `https://`.
    pub tls: TlsConfig,
    /// Batches whose encoded size exceeds this are refused before sending (default 64 MiB).
    pub max_request_bytes: usize,
    /// TCP keepalive idle time (default 30 s), `None` to disable.
    pub tcp_keepalive: Option<Duration>,
    /// Disable Nagle's algorithm (default true).
    pub tcp_nodelay: bool,
    /// How long an idle pooled connection is kept (HTTP, default 90 s).
    pub pool_idle_timeout: Duration,
    /// HTTP: append `/v1/<signal>` to the endpoint (default true, the spec's
    /// rule for the generic `OTEL_EXPORTER_OTLP_ENDPOINT`). Set false when the
    /// endpoint is already a signal's full URL, used as given.
    pub append_signal_path: bool,
}

/// Builds an [`Exporter`]; see [`Exporter::builder`].
#[derive(Clone, Debug, Default)]
pub struct ExporterBuilder {
    config: ExporterConfig,
}

/// The exporter for any protocol and one or more endpoints.
///
/// A `tower::Service<Batch, Response = ExportResponse, Error = TransportError>`,
/// cheap to clone (clones share connections).
#[derive(Clone, Debug)]
pub struct Exporter {
    targets: Arc<[Target]>,
    next: Arc<AtomicUsize>,
    compresses: bool,
}

/// One endpoint's exporter.
// Targets live once in an `Arc<[Target]>` and are never moved on the hot path,
// so the size difference between variants costs nothing.
#[allow(
    clippy::large_enum_variant,
    reason = "stored once per endpoint, never moved per request"
)]
#[derive(Clone, Debug)]
enum Target {
    #[cfg(feature = "grpc")]
    Grpc(GrpcExporter),
    #[cfg(feature = "http")]
    Http(HttpExporter),
}

/// A normalized endpoint: full URL with scheme, as a `http::Uri`.
pub(crate) fn parse_endpoint(
    endpoint: &str,
    tls: &TlsConfig,
) -> Result<::http::Uri, TransportError> {
    let trimmed = endpoint.trim();
    if trimmed.is_empty() {
        return Err(TransportError::NoEndpoint);
    }
    let full = if trimmed.contains("://") {
        trimmed.to_owned()
    } else if tls.insecure {
        format!("http://{trimmed}")
    } else {
        format!("https://{trimmed}")
    };
    let uri: ::http::Uri = full.parse().map_err(|e| TransportError::InvalidEndpoint {
        endpoint: endpoint.to_owned(),
        reason: format!("not a valid url ({e}); use e.g. http://localhost:4317"),
    })?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            if !cfg!(feature = "tls") {
                return Err(TransportError::TlsFeatureDisabled {
                    endpoint: endpoint.to_owned(),
                });
            }
        }
        Some(other) => {
            return Err(TransportError::InvalidEndpoint {
                endpoint: endpoint.to_owned(),
                reason: format!("unsupported scheme '{other}', use http:// or https://"),
            });
        }
        None => {
            return Err(TransportError::InvalidEndpoint {
                endpoint: endpoint.to_owned(),
                reason: "missing scheme, use http:// or https://".into(),
            });
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(TransportError::InvalidEndpoint {
            endpoint: endpoint.to_owned(),
            reason: "missing host, use e.g. http://collector:4317".into(),
        });
    }
    Ok(uri)
}

/// A hint when the port is the other protocol's well-known port.
pub(crate) fn port_hint(uri: &::http::Uri, protocol: Protocol) -> &'static str {
    match (protocol, uri.port_u16()) {
        (Protocol::Grpc, Some(4318)) => {
            " (port 4318 is the OTLP/HTTP port; use port 4317 for gRPC or protocol http/protobuf)"
        }
        (Protocol::HttpProtobuf | Protocol::HttpJson, Some(4317)) => {
            " (port 4317 is the OTLP/gRPC port; use port 4318 for OTLP/HTTP or protocol grpc)"
        }
        _ => "",
    }
}

pub(crate) fn validate_headers(
    headers: &[(String, String)],
) -> Result<::http::HeaderMap, TransportError> {
    let mut map = ::http::HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let invalid = || TransportError::InvalidHeader { name: name.clone() };
        let n = ::http::HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| invalid())?;
        let mut v = ::http::HeaderValue::from_str(value.trim()).map_err(|_| invalid())?;
        // Header values are secrets (tokens): keep them out of hyper's debug output.
        v.set_sensitive(true);
        map.append(n, v);
    }
    Ok(map)
}

pub(crate) fn check_compression(c: Compression) -> Result<(), TransportError> {
    match c {
        Compression::None => Ok(()),
        Compression::Gzip if cfg!(feature = "gzip") => Ok(()),
        Compression::Zstd if cfg!(feature = "zstd") => Ok(()),
        Compression::Gzip => Err(TransportError::CompressionDisabled {
            compression: "gzip",
        }),
        Compression::Zstd => Err(TransportError::CompressionDisabled {
            compression: "zstd",
        }),
    }
}

// === impl Compression ===

impl Compression {
    /// The `Content-Encoding` / `grpc-encoding` token.
    pub const fn as_str(self) -> &'static str {
        match self {
            Compression::None => "identity",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

// === impl Protocol ===

impl Protocol {
    /// The OTEL spec name (`grpc`, `http/protobuf`, `http/json`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
            Protocol::HttpJson => "http/json",
        }
    }
}

// === impl ExporterConfig ===

impl Default for ExporterConfig {
    fn default() -> Self {
        ExporterConfig {
            endpoint: "http://localhost:4317".into(),
            additional_endpoints: Vec::new(),
            protocol: Protocol::Grpc,
            headers: Vec::new(),
            timeout: otlp_core::DEFAULT_EXPORT_TIMEOUT,
            connect_timeout: Duration::from_secs(5),
            compression: Compression::None,
            compression_level: None,
            tls: TlsConfig::default(),
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            tcp_keepalive: Some(Duration::from_secs(30)),
            tcp_nodelay: true,
            pool_idle_timeout: Duration::from_secs(90),
            append_signal_path: true,
        }
    }
}

impl fmt::Debug for ExporterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<_> = self
            .headers
            .iter()
            .map(|(n, _)| format!("{n}: <redacted>"))
            .collect();
        f.debug_struct("ExporterConfig")
            .field("endpoint", &self.endpoint)
            .field("additional_endpoints", &self.additional_endpoints)
            .field("protocol", &self.protocol)
            .field("headers", &headers)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("compression", &self.compression)
            .field("compression_level", &self.compression_level)
            .field("tls", &self.tls)
            .field("max_request_bytes", &self.max_request_bytes)
            .field("tcp_keepalive", &self.tcp_keepalive)
            .field("tcp_nodelay", &self.tcp_nodelay)
            .field("pool_idle_timeout", &self.pool_idle_timeout)
            .finish()
    }
}

// === impl ExporterBuilder ===

impl ExporterBuilder {
    /// Starts from a complete config.
    pub fn from_config(config: ExporterConfig) -> Self {
        ExporterBuilder { config }
    }

    /// Sets the (first) endpoint.
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.config.endpoint = endpoint.into();
        self
    }

    /// Adds an endpoint to balance over.
    pub fn with_additional_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.config.additional_endpoints.push(endpoint.into());
        self
    }

    /// Sets the protocol.
    pub fn with_protocol(mut self, protocol: Protocol) -> Self {
        self.config.protocol = protocol;
        self
    }

    /// Adds a request header (its value is never logged).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = timeout;
        self
    }

    /// Sets the connect timeout.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// Sets the compression.
    pub fn with_compression(mut self, compression: Compression) -> Self {
        self.config.compression = compression;
        self
    }

    /// Sets the compression level (see [`Compression::levels`]).
    pub fn with_compression_level(mut self, level: u32) -> Self {
        self.config.compression_level = Some(level);
        self
    }

    /// Sets the TLS settings.
    pub fn with_tls(mut self, tls: TlsConfig) -> Self {
        self.config.tls = tls;
        self
    }

    /// Sets the largest request that will be sent.
    pub fn with_max_request_bytes(mut self, max: usize) -> Self {
        self.config.max_request_bytes = max;
        self
    }

    /// HTTP: whether `/v1/<signal>` is appended to the endpoint (see
    /// [`ExporterConfig::append_signal_path`]).
    pub fn with_append_signal_path(mut self, append: bool) -> Self {
        self.config.append_signal_path = append;
        self
    }

    /// The config as set so far.
    pub fn config(&self) -> &ExporterConfig {
        &self.config
    }

    /// Validates the config and builds the exporter. Connections are made lazily.
    ///
    /// Must be called inside a tokio runtime (the HTTP client spawns its pool tasks there).
    ///
    /// # Errors
    ///
    /// Any invalid endpoint, header, TLS file, or a protocol / compression / TLS
    /// feature that was compiled out.
    pub fn build(self) -> Result<Exporter, TransportError> {
        let cfg = self.config;
        let mut targets = Vec::with_capacity(1 + cfg.additional_endpoints.len());
        for endpoint in std::iter::once(&cfg.endpoint).chain(&cfg.additional_endpoints) {
            let one = ExporterConfig {
                endpoint: endpoint.clone(),
                additional_endpoints: Vec::new(),
                ..cfg.clone()
            };
            targets.push(Target::build(&one)?);
        }
        Ok(Exporter {
            compresses: cfg.compression != Compression::None,
            targets: targets.into(),
            next: Arc::new(AtomicUsize::new(0)),
        })
    }
}

// === impl Target ===

impl Target {
    fn build(cfg: &ExporterConfig) -> Result<Self, TransportError> {
        match cfg.protocol {
            #[cfg(feature = "grpc")]
            Protocol::Grpc => Ok(Target::Grpc(GrpcExporter::new(cfg)?)),
            #[cfg(not(feature = "grpc"))]
            Protocol::Grpc => Err(TransportError::ProtocolDisabled {
                protocol: "grpc",
                feature: "grpc",
            }),
            #[cfg(feature = "http")]
            Protocol::HttpProtobuf => Ok(Target::Http(HttpExporter::new(cfg)?)),
            #[cfg(not(feature = "http"))]
            Protocol::HttpProtobuf => Err(TransportError::ProtocolDisabled {
                protocol: "http/protobuf",
                feature: "http",
            }),
            #[cfg(feature = "http-json")]
            Protocol::HttpJson => Ok(Target::Http(HttpExporter::new(cfg)?)),
            #[cfg(not(feature = "http-json"))]
            Protocol::HttpJson => Err(TransportError::ProtocolDisabled {
                protocol: "http/json",
                feature: "http-json",
            }),
        }
    }

    fn prepare(&self, batch: &Batch) -> Result<Bytes, TransportError> {
        match *self {
            #[cfg(feature = "grpc")]
            Target::Grpc(ref g) => g.prepare(batch),
            #[cfg(feature = "http")]
            Target::Http(ref h) => h.prepare(batch),
        }
    }

    async fn send(&self, batch: Batch) -> Result<ExportResponse, TransportError> {
        match *self {
            #[cfg(feature = "grpc")]
            Target::Grpc(ref g) => g.send(batch).await,
            #[cfg(feature = "http")]
            Target::Http(ref h) => h.send(batch).await,
        }
    }
}

// === impl Exporter ===

impl Exporter {
    /// A builder starting from [`ExporterConfig::default`].
    pub fn builder() -> ExporterBuilder {
        ExporterBuilder::default()
    }

    /// Sends one batch: round-robin over the endpoints, failing over to the
    /// next endpoint on a connection error (each endpoint is tried at most once).
    ///
    /// # Errors
    ///
    /// The last endpoint's [`TransportError`].
    ///
    /// # Cancel safety
    ///
    /// Dropping the future abandons the request; the batch may or may not have
    /// reached the collector.
    pub async fn send(&self, batch: Batch) -> Result<ExportResponse, TransportError> {
        let n = self.targets.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut last = TransportError::NoEndpoint;
        for i in 0..n {
            let Some(target) = self.targets.get((start + i) % n) else {
                break;
            };
            match target.send(batch.clone()).await {
                Ok(r) => return Ok(r),
                Err(e) if e.is_connection_error() => {
                    tracing::debug!(error = %e, "endpoint unreachable, failing over");
                    last = e;
                }
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// Makes `batch`'s wire form now (compressed and / or JSON as
    /// configured; the encoded bytes as they are otherwise), kept by the
    /// batch and its clones so no retry makes it again: call it once before
    /// the first attempt to time compression apart from the send. Every
    /// endpoint shares the protocol and compression, so one form serves all.
    ///
    /// # Errors
    ///
    /// Compression failed; the send would fail the same way.
    pub fn prepare(&self, batch: &Batch) -> Result<(), TransportError> {
        match self.targets.first() {
            Some(target) => target.prepare(batch).map(drop),
            None => Ok(()),
        }
    }

    /// Whether requests are compressed (so [`prepare`](Self::prepare)
    /// compresses).
    pub fn compresses(&self) -> bool {
        self.compresses
    }

    /// How many endpoints this exporter balances over.
    pub fn endpoints(&self) -> usize {
        self.targets.len()
    }
}

impl tower_service::Service<Batch> for Exporter {
    type Response = ExportResponse;
    type Error = TransportError;
    type Future = BoxFuture<'static, Result<ExportResponse, TransportError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Connections are pooled and made per request; there is no capacity to reserve.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, batch: Batch) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.send(batch).await })
    }
}

#[cfg(test)]
mod tests;
