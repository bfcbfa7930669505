//! Merging the sources in precedence order into a typed [`Config`], and the
//! validator that reports every problem at once.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::PathBuf,
    str::FromStr,
    time::Duration,
};

use otlp_core::{Signal, retry_defaults};

use crate::{
    env::Env,
    error::ConfigError,
    model::{
        AdminConfig, BatchConfig, Compression, Config, DEFAULT_ADMIN_LISTEN,
        DEFAULT_BODY_READ_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_RECEIVER_GRPC,
        DEFAULT_RECEIVER_HTTP, DEFAULT_RECEIVER_MAX_REQUEST_BYTES, IntakeConfig, Overflow,
        PersistentConfig, Preset, Protocol, QueueConfig, ReceiverTlsConfig, ReceiversConfig,
        RetryConfig, SignalConfig, Temporality, TlsConfig, TuningConfig,
    },
    schema::{self, Kind},
    source::{ConfigFile, Flags, Problem, Raw, Setting, Severity, Source},
    units,
};

mod lb;
mod parse;
mod reader;
mod validate;

pub(crate) use self::parse::{
    has_scheme, parse_addr, parse_endpoint_text, parse_url, signal_endpoint,
};
use self::{parse::*, validate::*};

/// The default export timeout of one attempt (the OTel spec's 10 s, [`otlp_core::DEFAULT_EXPORT_TIMEOUT`]).
pub const DEFAULT_TIMEOUT: Duration = otlp_core::DEFAULT_EXPORT_TIMEOUT;
/// The default connect timeout (the seed's 10 s).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The default memory limit of the pipeline.
pub const DEFAULT_MEMORY_LIMIT: u64 = 512 << 20;
/// How long a batch is retried by default with the memory queue
/// ([`otlp_core::retry_defaults::MAX_ELAPSED`]); with `queue.persistent` the
/// default is no limit.
pub const DEFAULT_MAX_ELAPSED: Duration = otlp_core::retry_defaults::MAX_ELAPSED;
/// The default disk space of the persistent queue.
pub const DEFAULT_PERSISTENT_MAX_BYTES: u64 = 1 << 30;
/// The default OpenTelemetry Collector gRPC receive limit; larger batches are refused by it.
pub const GRPC_DEFAULT_MAX_MESSAGE: u64 = 4 << 20;

/// Longest export or connect timeout that is not a mistake.
pub(crate) const MAX_TIMEOUT: Duration = Duration::from_secs(600);
/// Longest batch timeout that is not a mistake.
const MAX_BATCH_TIMEOUT: Duration = Duration::from_secs(60);

/// The inputs of a configuration: an optional file, the environment and flags.
///
/// [`Sources::resolve`] merges them with precedence defaults < file < environment < flags.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// The parsed config file, if any.
    pub file: Option<ConfigFile>,
    /// The environment variables.
    pub env: Env,
    /// The command-line settings.
    pub flags: Flags,
}

/// The outcome of [`Sources::resolve`]: the best-effort config, every problem,
/// and where every value came from.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The effective config. When there are errors, the offending values are
    /// replaced by their defaults, so do not use it without checking [`Resolved::is_valid`].
    pub config: Config,
    /// Every problem found, errors and warnings, in source order.
    pub problems: Vec<Problem>,
    pub(crate) settings: BTreeMap<String, Setting>,
    pub(crate) signal_sources: [SignalSources; Signal::COUNT],
}

/// Which setting each resolved per-signal field came from.
#[derive(Clone, Debug, Default)]
pub(crate) struct SignalSources {
    pub(crate) endpoint: Option<String>,
    pub(crate) protocol: Option<String>,
    pub(crate) headers: Option<String>,
    pub(crate) timeout: Option<String>,
    pub(crate) compression: Option<String>,
    /// The endpoint was written without a scheme and `tls.insecure` chose it.
    pub(crate) scheme_from_insecure: bool,
}

/// A parsed URL: just what the validator and path rules need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Url<'a> {
    pub(crate) scheme: &'a str,
    pub(crate) host: &'a str,
    pub(crate) port: Option<u16>,
    pub(crate) path: &'a str,
}

struct Reader<'a> {
    settings: &'a BTreeMap<String, Setting>,
    problems: Vec<Problem>,
}

type ParseErr = (String, Option<String>);

// === impl Sources ===

impl Sources {
    /// No file, no environment, no flags: everything at its default.
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses `file` as the config file.
    pub fn with_file(mut self, file: ConfigFile) -> Self {
        self.file = Some(file);
        self
    }

    /// Uses `env` as the environment.
    pub fn with_env(mut self, env: Env) -> Self {
        self.env = env;
        self
    }

    /// Uses `flags` as the command-line settings.
    pub fn with_flags(mut self, flags: Flags) -> Self {
        self.flags = flags;
        self
    }

    /// Resolves the effective config: **the one place precedence is decided**.
    ///
    /// 1. Start from the built-in defaults; the batch, queue and tuning
    ///    defaults come from the preset (`preset:` key, `OTLP_PRESET`, or a
    ///    flag; `balanced` when none is set).
    /// 2. Apply the file's keys.
    /// 3. Apply the environment: first the seed's short forms (`OTLP_ENDPOINT`,
    ///    `OTLP_PROTOCOL`, `OTLP_TIMEOUT` in seconds), then the spec's
    ///    `OTEL_EXPORTER_OTLP_*` names, so the spec names win when both are set.
    /// 4. Apply the flags.
    ///
    /// A later source replaces a key wholesale (a `headers` map is replaced,
    /// not merged). Per signal, a field comes from `<signal>.<field>` when set
    /// by any source, else from the generic `<field>`: so a file's
    /// `traces.endpoint` beats `OTEL_EXPORTER_OTLP_ENDPOINT`, as the spec's
    /// "signal-specific wins" rule asks. A generic endpoint gets
    /// `v1/<signal>` appended for the HTTP protocols; a per-signal endpoint is
    /// used as given; unset endpoints default to `http://localhost:4317`
    /// (grpc) or `http://localhost:4318/v1/<signal>` (HTTP).
    ///
    /// Never fails: every problem is collected into [`Resolved::problems`].
    pub fn resolve(&self) -> Resolved {
        let mut ordered = Vec::new();
        let mut problems = Vec::new();
        if let Some(file) = &self.file {
            file.settings(&mut ordered, &mut problems);
        }
        crate::source::env_settings(&self.env, &mut ordered, &mut problems);
        self.flags.settings(&mut ordered, &mut problems);
        let mut settings = BTreeMap::new();
        for (key, setting) in ordered {
            settings.insert(key, setting);
        }
        let mut reader = Reader {
            settings: &settings,
            problems,
        };
        let (config, signal_sources) = reader.build();
        let mut problems = reader.problems;
        validate(&config, &settings, &signal_sources, &mut problems);
        // The same generic key is read once per signal; report it once.
        let mut unique: Vec<Problem> = Vec::with_capacity(problems.len());
        for p in problems {
            if !unique.contains(&p) {
                unique.push(p);
            }
        }
        // File problems in file order first, then environment and flags.
        unique.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
        Resolved {
            config,
            problems: unique,
            settings,
            signal_sources,
        }
    }

    /// Resolves and returns the config when it has no errors (warnings are allowed).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] listing every problem when any is an error.
    pub fn load(&self) -> Result<Config, ConfigError> {
        self.resolve().into_result()
    }
}

// === impl Resolved ===

impl Resolved {
    /// Whether no problem is an error.
    pub fn is_valid(&self) -> bool {
        !self.problems.iter().any(|p| p.severity == Severity::Error)
    }

    /// The problems that are errors.
    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
    }

    /// The config, or every problem when any is an error.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] when there are errors.
    pub fn into_result(self) -> Result<Config, ConfigError> {
        if self.is_valid() {
            Ok(self.config)
        } else {
            Err(ConfigError::Invalid {
                problems: self.problems,
            })
        }
    }

    /// Where `key`'s effective value came from.
    pub fn source_of(&self, key: &str) -> Option<&Source> {
        self.settings.get(key).map(|s| &s.source)
    }
}

/// File problems in file order, then environment by variable, then flags, then defaults.
fn sort_key(p: &Problem) -> (u8, usize, usize, &str) {
    match &p.source {
        Source::File { line, column, .. } => (0, *line, *column, ""),
        Source::Env(name) => (1, 0, 0, name),
        Source::Flag(_) => (2, 0, 0, ""),
        Source::Default | Source::Preset(_) => (3, 0, 0, ""),
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn const_addr(text: &str, port: u16, any: bool) -> SocketAddr {
    text.parse().unwrap_or(SocketAddr::new(
        if any {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        },
        port,
    ))
}

#[cfg(test)]
mod tests;
