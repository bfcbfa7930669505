//! The error type of the receivers: what can fail before a receiver serves.

use std::{io, net::SocketAddr};

/// A receiver could not be configured or bound.
///
/// Per-request problems (malformed bodies, oversized requests, a busy inner
/// service) never surface here: they are answered to the client with the
/// OTLP status code and message the specification asks for.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiveError {
    /// The listening socket could not be bound.
    #[error(
        "cannot listen on {addr}: {source}; pick a free port (0 lets the system choose) or stop the process holding it"
    )]
    Bind {
        /// The address that was asked for.
        addr: SocketAddr,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A limit was set to a value that would refuse every request.
    #[error("receiver limit '{name}' is {value}: {fix}")]
    InvalidLimit {
        /// The name of the limit (as its setter names it, without `with_`).
        name: &'static str,
        /// The value that was given.
        value: String,
        /// How to fix it.
        fix: &'static str,
    },
    /// The gRPC reflection service could not load the OTLP descriptors.
    #[error(
        "cannot build the gRPC reflection service: {0}; this is a build problem of otlp-transport, report it"
    )]
    Reflection(String),
}
