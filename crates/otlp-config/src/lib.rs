//! Configuration of otlp-rust: model, loading from file, environment and flags, validation and autofix.
//!
//! Placeholder docs while being built.
//!
//! # Example
//!
//! ```
//! assert_eq!(otlp_core::Signal::Traces.as_str(), "traces");
//! ```

pub mod env;
mod cli;
mod error;
mod explain;
mod fix;
mod model;
mod resolve;
mod schema;
mod source;
mod units;
mod yaml;

pub use self::{
    cli::{CommandOutcome, EXIT_INVALID, EXIT_UNREADABLE, EXIT_VALID, OutputFormat, explain_config, fix_file, validate_file},
    env::Env,
    error::ConfigError,
    explain::{ExplainEntry, ExplainSignal, Explained, REDACTED, explain},
    fix::{Fix, Fixed, autofix},
    model::{
        AdminConfig, BatchConfig, Compression, Config, DEFAULT_ADMIN_LISTEN, DEFAULT_GRPC_ENDPOINT,
        DEFAULT_HTTP_ENDPOINT, DEFAULT_RECEIVER_GRPC, DEFAULT_RECEIVER_HTTP, Overflow,
        PersistentConfig, Preset, Protocol, QueueConfig, ReceiversConfig, RetryConfig,
        SignalConfig, TlsConfig, TuningConfig,
    },
    resolve::{
        DEFAULT_CONNECT_TIMEOUT, DEFAULT_MEMORY_LIMIT, DEFAULT_PERSISTENT_MAX_BYTES,
        DEFAULT_TIMEOUT, GRPC_DEFAULT_MAX_MESSAGE, Resolved, Sources,
    },
    source::{ConfigFile, Flags, Problem, Severity, Source},
    units::{format_duration, format_size, parse_duration, parse_size},
};
