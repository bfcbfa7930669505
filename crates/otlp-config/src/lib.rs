//! Configuration of otlp-rust: one config model loaded from defaults, a YAML file, the environment and flags, with a validator that reports every problem and a safe autofix.
//!
//! This crate sits directly on `otlp-core` and knows no other crate of the
//! workspace. The facade (`otlp`) calls [`Sources::load`] (or
//! [`Sources::resolve`]) once at startup and builds each component's own
//! settings from the plain structs of [`Config`]: per-signal
//! [`SignalConfig`] for the transports, [`RetryConfig`] for resilience,
//! [`BatchConfig`] and [`QueueConfig`] for the pipeline, [`AdminConfig`] and
//! [`ReceiversConfig`] (with its server-side [`ReceiverTlsConfig`]) for the
//! agent. The `otlp-client` commands
//! `validate-config` and `explain-config` are thin wrappers over
//! [`validate_file`], [`fix_file`] and [`explain_config`], which return the exit
//! code and the text to print.
//!
//! Precedence is defaults < file < environment < flags, decided in one place,
//! [`Sources::resolve`]. The environment follows the OpenTelemetry spec
//! (`OTEL_EXPORTER_OTLP_*` and per-signal variants, see [`mod@env`]) and accepts the
//! seed's short forms `OTLP_ENDPOINT`, `OTLP_PROTOCOL` and `OTLP_TIMEOUT`
//! (seconds); it is always injected as an [`Env`], and only a binary calls
//! [`Env::from_process`]. Durations are written with a unit (`10s`, `250ms`),
//! sizes too (`4MiB`). A [`Preset`] (`low_latency`, `balanced`,
//! `high_throughput`) sets the batch, queue and tuning defaults.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use otlp_config::{ConfigFile, Env, Flags, Protocol, Sources, autofix};
//! use otlp_core::Signal;
//!
//! let file = ConfigFile::parse("agent.yaml", "\
//! endpoint: http://collector:4318
//! protocol: http/protobuf
//! preset: low_latency
//! retry:
//!   max_retries: 4
//! ")?;
//! let env = Env::from_map([("OTEL_EXPORTER_OTLP_TIMEOUT", "2500")]);
//! let flags = Flags::new().with_flag("--compression", "compression", "gzip");
//! let config = Sources::new().with_file(file).with_env(env).with_flags(flags).load()?;
//!
//! let traces = config.signal(Signal::Traces);
//! assert_eq!(traces.endpoint, "http://collector:4318/v1/traces");
//! assert_eq!(traces.protocol, Protocol::HttpProtobuf);
//! assert_eq!(traces.timeout, Duration::from_millis(2500));
//! assert_eq!(config.batch.max_batch_size, 100);
//!
//! // Every problem at once, with its path, position and a hint.
//! let broken = ConfigFile::parse("c.yaml", "endpont: http://collector:4317\ntimeout: 0s\n")?;
//! let problems = Sources::new().with_file(broken.clone()).resolve().problems;
//! assert_eq!(problems[0].to_string(), "c.yaml:1:1: error: endpont: unknown key 'endpont'\n    hint: did you mean 'endpoint'?");
//! assert_eq!(problems.len(), 2);
//!
//! // The safe fixes, listed, in the original text.
//! let fixed = autofix(&broken)?;
//! assert_eq!(fixed.text, "endpoint: http://collector:4317\ntimeout: 10s\n");
//!
//! // A grpc endpoint without a scheme is TLS unless `tls.insecure` is true (the OTLP spec).
//! let env = Env::from_map([("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317")]);
//! let config = Sources::new().with_env(env.clone()).load()?;
//! assert_eq!(config.signal(Signal::Logs).endpoint, "https://collector:4317");
//! let env = env.with_var("OTEL_EXPORTER_OTLP_INSECURE", "true");
//! let config = Sources::new().with_env(env).load()?;
//! assert_eq!(config.signal(Signal::Logs).endpoint, "http://collector:4317");
//! assert!(fixed.remaining.is_empty());
//! # Ok::<(), otlp_config::ConfigError>(())
//! ```
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---------|---------|--------------|
//! | (none)  |         | otlp-config has no optional features; YAML is parsed by `saphyr-parser` for key positions |

mod cli;
pub mod env;
mod error;
mod explain;
mod fix;
mod loadbalancing;
mod model;
mod resolve;
mod schema;
mod source;
mod units;
mod yaml;

pub use self::{
    cli::{
        CommandOutcome, EXIT_INVALID, EXIT_UNREADABLE, EXIT_VALID, OutputFormat, explain_config,
        fix_file, validate_file,
    },
    env::Env,
    error::ConfigError,
    explain::{
        ExplainBackends, ExplainEntry, ExplainSignal, Explained, REDACTED, explain,
        is_secret_header,
    },
    fix::{Fix, Fixed, autofix},
    loadbalancing::{
        DEFAULT_LB_DNS_INTERVAL, DEFAULT_LB_DNS_PORT, DEFAULT_LB_DNS_TIMEOUT, LbResolver,
        LoadBalancingConfig, RoutingKey, backend_url,
    },
    model::{
        AdminConfig, BatchConfig, Compression, Config, DEFAULT_ADMIN_LISTEN,
        DEFAULT_BODY_READ_TIMEOUT, DEFAULT_GRPC_ENDPOINT, DEFAULT_HTTP_ENDPOINT,
        DEFAULT_IDLE_TIMEOUT, DEFAULT_RECEIVER_GRPC, DEFAULT_RECEIVER_HTTP,
        DEFAULT_RECEIVER_MAX_REQUEST_BYTES, IntakeConfig, Overflow, PersistentConfig, Preset,
        Protocol, QueueConfig, ReceiverTlsConfig, ReceiversConfig, RetryConfig, SignalConfig,
        Temporality, TlsConfig, TuningConfig,
    },
    resolve::{
        DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_ELAPSED, DEFAULT_MEMORY_LIMIT,
        DEFAULT_PERSISTENT_MAX_BYTES, DEFAULT_TIMEOUT, GRPC_DEFAULT_MAX_MESSAGE, Resolved, Sources,
    },
    source::{ConfigFile, Flags, Problem, Severity, Source},
    units::{format_duration, format_size, parse_duration, parse_size},
};
