//! OTLP/gRPC and OTLP/HTTP exporters and receivers as tower services.
//!
//! This crate sits at the bottom of the export stack: below retry, timeout and
//! concurrency layers (otlp-resilience) it turns one encoded [`Batch`](otlp_core::Batch)
//! into one request to a collector, and classifies every failure by the OTLP
//! specification ([`TransportError`] implements `otlp_core::Classify`). It
//! depends only on otlp-core; the facade `otlp` wires it under the other layers.
//! [`google_rpc`] holds the `google.rpc` messages and gRPC code table.
//! [`diagnose()`] walks DNS, TCP, TLS and an OTLP probe for `otlp-client diagnose`.
//!
//! # Example
//!
//! ```
//! # #[cfg(feature = "grpc")]
//! # {
//! use otlp_transport::{Exporter, Protocol, TransportError};
//!
//! # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! # rt.block_on(async {
//! // Connections are made lazily, so building needs no collector.
//! let exporter = Exporter::builder()
//!     .with_endpoint("http://localhost:4317")
//!     .with_protocol(Protocol::Grpc)
//!     .with_header("authorization", "Bearer secret")
//!     .build()?;
//! assert_eq!(exporter.endpoints(), 1);
//!
//! // An endpoint that is not a URL is refused with a clear message.
//! let err = Exporter::builder().with_endpoint("ftp://collector:4317").build().unwrap_err();
//! assert!(err.to_string().contains("use http:// or https://"));
//! # Ok::<(), TransportError>(())
//! # })?;
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---------|---------|--------------|
//! | `grpc` | yes | OTLP/gRPC exporter and receiver (tonic) |
//! | `http` | yes | OTLP/HTTP with protobuf bodies (hyper 1) |
//! | `http-json` | no | OTLP/HTTP with JSON bodies (the proto3 JSON mapping through the OTLP descriptors; re-encodes) |
//! | `gzip` | yes | gzip request compression |
//! | `zstd` | no | zstd request compression |
//! | `tls` | no | `https://` endpoints with rustls: custom CA, mTLS, system roots; TLS step of `diagnose`; receivers serving TLS and mTLS ([`ReceiverTls`]) |

// `balance` and `google_rpc` are public modules on purpose: each is a
// self-contained surface with its own vocabulary (`balance::LoadBalancer`,
// `balance::DnsResolver`, `balance::Rendezvous`; the `google.rpc` messages and
// the gRPC code table that the test receivers share), whose names would crowd
// the crate root. `diagnose` and `export` are internal: what they offer is
// re-exported below.
pub mod balance;
mod diagnose;
mod error;
mod export;
pub mod google_rpc;
#[cfg(feature = "http-json")]
mod json;

// --- exporters (owned by the exporter work) ---
#[cfg(feature = "grpc")]
pub use self::export::GrpcExporter;
#[cfg(feature = "http")]
pub use self::export::HttpExporter;
#[cfg(feature = "http-json")]
pub use self::export::json::to_json as to_otlp_json;
#[cfg(feature = "http-json")]
pub use self::receive::from_otlp_json;
pub use self::{
    diagnose::{Diagnosis, Step, StepKind, Verdict, diagnose, protocol_mismatch_hint},
    error::{ConnectStep, TransportError},
    export::{
        Compression, DEFAULT_MAX_REQUEST_BYTES, Exporter, ExporterBuilder, ExporterConfig,
        Protocol, TlsConfig, USER_AGENT,
    },
};
// --- receivers (owned by the receiver work) ---
mod receive;
#[cfg(feature = "grpc")]
pub use self::receive::GrpcReceiver;
pub use self::receive::{BoundReceiver, IntakeBudget, ReceiveError, ReceiverLimits, ReceiverTls};
#[cfg(feature = "http")]
pub use self::receive::{GetHandler, HttpReceiver};
