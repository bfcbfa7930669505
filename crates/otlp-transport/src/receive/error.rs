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
    /// A TLS file of the receiver could not be used.
    #[error("receiver tls {setting} '{path}': {reason}")]
    Tls {
        /// The setting the file came from (`cert_file`, `key_file`, `client_ca_file`).
        setting: &'static str,
        /// The file's path.
        path: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// TLS was asked for but otlp-transport was built without feature `tls`.
    #[error(
        "receiver tls (cert_file '{cert_file}') needs otlp-transport's `tls` feature, which this build lacks; rebuild with feature `tls` or remove the receiver tls settings to serve plaintext"
    )]
    TlsFeatureDisabled {
        /// The configured certificate file.
        cert_file: String,
    },
    /// The gRPC reflection service could not load the OTLP descriptors.
    #[error(
        "cannot build the gRPC reflection service: {0}; this is a build problem of otlp-transport, report it"
    )]
    Reflection(String),
}
