//! The one error type of the benchmark harness.

use std::{io, net::SocketAddr};

/// What can go wrong while running a benchmark process (count-sink or a producer).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchesError {
    /// A command-line flag is unknown, lacks its value, or has a bad value.
    #[error("bad argument {flag}: {problem}; run with --help for the accepted flags")]
    Arg {
        /// The flag as given.
        flag: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}; pick a free port or use port 0")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The tokio runtime could not be started.
    #[error(
        "cannot start the tokio runtime: {0}; check the process limits (threads, file descriptors)"
    )]
    Runtime(#[source] io::Error),
    /// The OTLP exporter of the peer could not be built.
    #[error(
        "cannot build the opentelemetry-otlp {protocol} exporter for '{endpoint}': {message}; check the endpoint URL"
    )]
    Exporter {
        /// `grpc` or `http`.
        protocol: &'static str,
        /// The endpoint given.
        endpoint: String,
        /// The exporter's own message.
        message: String,
    },
    /// Our exporter (the `otlp` facade) could not be built.
    #[error("cannot build the otlp exporter: {0}; check the --endpoint and --protocol flags")]
    Ours(#[source] Box<otlp::OtlpError>),
    /// Encoding a protobuf message failed.
    #[error("cannot encode the benchmark request: {0}; this is a bug in the span shape")]
    Encode(#[from] prost::EncodeError),
}
