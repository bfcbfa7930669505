//! The one error type of the crate, [`TransportError`], and its classification.

use std::{fmt, time::Duration};

use otlp_core::{Classify, Retryability};

use crate::{
    export::classify::{grpc_retryability, http_retryability},
    google_rpc::code::name as grpc_code_name,
};

/// Everything that can go wrong building an exporter or sending a batch.
///
/// Each variant says which step failed and how to fix it; [`Classify`] maps it
/// onto the OTLP specification's retry rules (see `export::classify`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The endpoint URL could not be used.
    #[error("endpoint '{endpoint}': {reason}")]
    InvalidEndpoint {
        /// The endpoint as configured.
        endpoint: String,
        /// What is wrong with it and how to fix it.
        reason: String,
    },
    /// An `https://` endpoint was configured but the crate was built without TLS.
    #[error(
        "endpoint '{endpoint}' uses https:// but otlp-transport was built without the `tls` feature; enable feature `tls` (plaintext is never used for https)"
    )]
    TlsFeatureDisabled {
        /// The endpoint as configured.
        endpoint: String,
    },
    /// The configured protocol was compiled out.
    #[error(
        "protocol '{protocol}' is not available: otlp-transport was built without feature `{feature}`; enable it or choose another protocol"
    )]
    ProtocolDisabled {
        /// The protocol asked for.
        protocol: &'static str,
        /// The cargo feature that provides it.
        feature: &'static str,
    },
    /// The configured compression was compiled out.
    #[error(
        "compression '{compression}' is not available: otlp-transport was built without feature `{compression}`; enable it or set compression to none"
    )]
    CompressionDisabled {
        /// The compression asked for.
        compression: &'static str,
    },
    /// The configured compression level is not one the algorithm has.
    #[error(
        "compression level {level} is not a {compression} level; use {min} (fastest, the default) to {max} (smallest), or remove compression_level"
    )]
    CompressionLevel {
        /// The compression.
        compression: &'static str,
        /// The level asked for.
        level: u32,
        /// The lowest level.
        min: u32,
        /// The highest level.
        max: u32,
    },
    /// TLS settings (CA, certificate, key files) could not be loaded.
    #[error("tls setting '{setting}' ({value}): {reason}")]
    TlsConfig {
        /// Which setting (`ca_file`, `cert_file`, `key_file`).
        setting: &'static str,
        /// Its value (a path; never key material).
        value: String,
        /// What failed and how to fix it.
        reason: String,
    },
    /// A header name or value is not valid HTTP.
    #[error(
        "header '{name}': invalid name or value; use ASCII letters, digits and '-' in names and visible ASCII in values"
    )]
    InvalidHeader {
        /// The header name (its value is never shown).
        name: String,
    },
    /// The batch is larger than `max_request_bytes`, so it was not sent.
    #[error(
        "request of {size} bytes exceeds max_request_bytes {max}; split the batch (smaller max batch size) or raise max_request_bytes"
    )]
    RequestTooLarge {
        /// The encoded (uncompressed) size of the request.
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// The connection to the collector could not be made.
    #[error("connecting to {endpoint} failed at {step}: {detail}")]
    Connect {
        /// `host:port` that was dialled.
        endpoint: String,
        /// Which step of connection setup failed.
        step: ConnectStep,
        /// The reason, in words an operator can act on.
        detail: String,
    },
    /// The gRPC server answered with a non-OK status.
    #[error("grpc status {} ({code}) from {endpoint}: {message}{}", grpc_code_name(*.code), hint_suffix(*.retry_after))]
    GrpcStatus {
        /// The collector endpoint.
        endpoint: String,
        /// The numeric gRPC status code.
        code: i32,
        /// The status message sent by the server.
        message: String,
        /// The server's `RetryInfo` delay, if it sent one.
        retry_after: Option<Duration>,
    },
    /// The HTTP server answered with a non-2xx status.
    #[error("http status {status} from {endpoint}: {message}{}", hint_suffix(*.retry_after))]
    HttpStatus {
        /// The collector endpoint.
        endpoint: String,
        /// The HTTP status code.
        status: u16,
        /// The status message (from a `google.rpc.Status` body when present).
        message: String,
        /// The server's `Retry-After` delay, if it sent one.
        retry_after: Option<Duration>,
    },
    /// The export did not complete within the request timeout.
    #[error(
        "export to {endpoint} timed out after {after:?}; raise the timeout or check collector latency"
    )]
    Timeout {
        /// The collector endpoint.
        endpoint: String,
        /// The configured timeout.
        after: Duration,
    },
    /// The server's response body was larger than the 4 MiB cap.
    #[error(
        "response from {endpoint} exceeds {limit} bytes; the peer is probably not an OTLP collector"
    )]
    ResponseTooLarge {
        /// The collector endpoint.
        endpoint: String,
        /// The cap in bytes.
        limit: usize,
    },
    /// The connection broke or the peer spoke an unexpected protocol mid-request.
    #[error("exchange with {endpoint} failed: {detail}")]
    Protocol {
        /// The collector endpoint.
        endpoint: String,
        /// What happened and what to check.
        detail: String,
        /// Whether the connection itself failed (reset, closed).
        connection: bool,
    },
    /// The batch could not be re-encoded (OTLP/JSON) because its bytes do not decode.
    #[error(
        "batch of {signal} could not be decoded for json re-encoding: {reason}; the batch bytes are not a valid export request"
    )]
    Encode {
        /// The signal of the batch.
        signal: &'static str,
        /// The decode or serialize failure.
        reason: String,
    },
    /// The batch could not be split by its routing key because its bytes do not decode.
    #[error(
        "batch of {signal} could not be split for load balancing: {reason}; the batch bytes are not a valid export request"
    )]
    Route {
        /// The signal of the batch.
        signal: &'static str,
        /// The decode failure.
        reason: String,
    },
    /// Compressing the request body failed.
    #[error("compressing the request with {compression} failed: {source}")]
    Compress {
        /// The compression used.
        compression: &'static str,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// No endpoint was configured.
    #[error("no endpoint configured; set at least one endpoint, e.g. http://localhost:4317")]
    NoEndpoint,
    /// The load balancer has no backend to send to right now (the resolver
    /// found none yet, or every one failed this attempt): retryable, the
    /// backend set may change.
    #[error(
        "load balancing over {resolver}: no backend available; check that the name resolves and the backends are up"
    )]
    NoBackend {
        /// The resolver, e.g. `dns gateways.example:4317` or `static list`.
        resolver: String,
    },
}

/// The step of connection setup that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ConnectStep {
    /// Name resolution.
    Dns,
    /// The TCP connection was refused (nothing listens on the port).
    Refused,
    /// The TCP connection did not complete within the connect timeout.
    ConnectTimeout,
    /// Another TCP-level failure (unreachable network, reset).
    Tcp,
    /// The TLS handshake failed (unknown CA, name mismatch, expired certificate...).
    TlsHandshake,
    /// The peer answered but does not speak the expected protocol.
    ProtocolMismatch,
}

fn hint_suffix(retry_after: Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!(" (server asks to retry after {d:?})"),
        None => String::new(),
    }
}

// === impl ConnectStep ===

impl ConnectStep {
    /// A short, fixed label.
    pub const fn as_str(self) -> &'static str {
        match self {
            ConnectStep::Dns => "dns",
            ConnectStep::Refused => "tcp connect (refused)",
            ConnectStep::ConnectTimeout => "tcp connect (timeout)",
            ConnectStep::Tcp => "tcp",
            ConnectStep::TlsHandshake => "tls handshake",
            ConnectStep::ProtocolMismatch => "protocol negotiation",
        }
    }
}

impl fmt::Display for ConnectStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl TransportError ===

impl TransportError {
    /// The step of connection setup that failed, if this is a connection error.
    pub fn connect_step(&self) -> Option<ConnectStep> {
        match self {
            TransportError::Connect { step, .. } => Some(*step),
            _ => None,
        }
    }
}

impl Classify for TransportError {
    fn classify(&self) -> Retryability {
        match self {
            TransportError::GrpcStatus {
                code,
                message,
                retry_after,
                ..
            } => grpc_retryability(*code, message, *retry_after),
            TransportError::HttpStatus {
                status,
                retry_after,
                ..
            } => http_retryability(*status, *retry_after),
            TransportError::RequestTooLarge { .. } => Retryability::TooLarge,
            TransportError::Connect { step, .. } => match step {
                // A certificate problem does not heal by resending; it needs an
                // operator. A protocol mismatch is retried: an HTTP/2 connection
                // closed early looks the same, and dropping data on a guess is worse.
                ConnectStep::TlsHandshake => Retryability::Permanent,
                ConnectStep::ProtocolMismatch
                | ConnectStep::Dns
                | ConnectStep::Refused
                | ConnectStep::ConnectTimeout
                | ConnectStep::Tcp => Retryability::Retryable,
            },
            TransportError::Timeout { .. } | TransportError::NoBackend { .. } => {
                Retryability::Retryable
            }
            TransportError::Protocol { connection, .. } => {
                if *connection {
                    Retryability::Retryable
                } else {
                    Retryability::Permanent
                }
            }
            TransportError::InvalidEndpoint { .. }
            | TransportError::TlsFeatureDisabled { .. }
            | TransportError::ProtocolDisabled { .. }
            | TransportError::CompressionDisabled { .. }
            | TransportError::CompressionLevel { .. }
            | TransportError::TlsConfig { .. }
            | TransportError::InvalidHeader { .. }
            | TransportError::ResponseTooLarge { .. }
            | TransportError::Encode { .. }
            | TransportError::Route { .. }
            | TransportError::Compress { .. }
            | TransportError::NoEndpoint => Retryability::Permanent,
        }
    }

    fn is_connection_error(&self) -> bool {
        match self {
            TransportError::Connect { .. } => true,
            TransportError::Protocol { connection, .. } => *connection,
            _ => false,
        }
    }

    /// gRPC `INVALID_ARGUMENT` and HTTP 400: the collector refused the data itself.
    fn is_invalid_request(&self) -> bool {
        match self {
            // 3 is gRPC INVALID_ARGUMENT.
            TransportError::GrpcStatus { code, .. } => *code == 3,
            TransportError::HttpStatus { status, .. } => *status == 400,
            _ => false,
        }
    }
}
