//! The one error type of otlp-observability.

use std::{io, net::SocketAddr, path::PathBuf};

/// Everything that can fail in otlp-observability.
///
/// Recording metrics, pushing log events and profiling never fail; only
/// setting things up (binding the admin port, opening the log file,
/// installing the global subscriber) and reading the operating system can.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ObservabilityError {
    /// The admin server could not bind its address.
    #[error(
        "admin server: cannot bind {addr}: {source}; pick a free port or another address (the default is 127.0.0.1:8080)"
    )]
    Bind {
        /// The address that was asked for.
        addr: SocketAddr,
        /// The operating system's answer.
        #[source]
        source: io::Error,
    },
    /// The log file could not be opened for appending.
    #[error(
        "log file '{}': cannot open for appending: {source}; check that the directory exists and is writable",
        path.display()
    )]
    LogFile {
        /// The file that was asked for.
        path: PathBuf,
        /// The operating system's answer.
        #[source]
        source: io::Error,
    },
    /// The log filter (`RUST_LOG`) could not be parsed.
    #[error(
        "log filter '{filter}' is invalid: {message}; use directives such as 'info' or 'info,otlp=debug'"
    )]
    LogFilter {
        /// The filter text.
        filter: String,
        /// What the parser said.
        message: String,
    },
    /// A global `tracing` subscriber was already installed.
    #[error("logging is already initialised in this process; call init_logging once, at startup")]
    LoggingAlreadyInitialised,
    /// A process statistic could not be read from the operating system.
    #[error(
        "cannot read process statistics from {path}: {source}; /proc must be mounted (Linux only)"
    )]
    ProcessStats {
        /// The file that was read.
        path: &'static str,
        /// The operating system's answer.
        #[source]
        source: io::Error,
    },
    /// The free space of a directory could not be read.
    #[error(
        "cannot read the free space of '{}': {source}; check that the disk queue directory exists",
        path.display()
    )]
    DiskSpace {
        /// The directory that was asked about.
        path: PathBuf,
        /// The operating system's answer.
        #[source]
        source: io::Error,
    },
    /// The metrics registry could not be encoded as text.
    #[error(
        "metrics exposition failed while encoding the registry: {0}; a metric has an unencodable label"
    )]
    Encode(#[from] std::fmt::Error),
}
