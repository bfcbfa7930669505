//! Merging the sources in precedence order into a typed [`Config`], and the
//! validator that reports every problem at once.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::PathBuf,
    str::FromStr,
    time::Duration,
};

use otlp_core::Signal;

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

/// The default export timeout of one attempt (the OTel spec's 10 s, [`otlp_core::DEFAULT_EXPORT_TIMEOUT`]).
pub const DEFAULT_TIMEOUT: Duration = otlp_core::DEFAULT_EXPORT_TIMEOUT;
/// The default connect timeout (the seed's 10 s).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The default memory limit of the pipeline.
pub const DEFAULT_MEMORY_LIMIT: u64 = 512 << 20;
/// How long a batch is retried by default with the memory queue (the
/// Collector exporterhelper's `max_elapsed_time`); with `queue.persistent` the
/// default is no limit.
pub const DEFAULT_MAX_ELAPSED: Duration = Duration::from_secs(300);
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
    pub(crate) signal_sources: [SignalSources; 3],
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

// === impl Reader ===

impl Reader<'_> {
    fn source(&self, key: &str) -> Source {
        self.settings
            .get(key)
            .map_or(Source::Default, |s| s.source.clone())
    }

    fn is_set(&self, key: &str) -> bool {
        self.settings.contains_key(key)
    }

    /// The typed value of `key`, or `None` when unset or wrong (a problem is recorded).
    fn get<T>(&mut self, key: &str, parse: impl Fn(&str) -> Result<T, ParseErr>) -> Option<T> {
        let setting = self.settings.get(key)?;
        match &setting.raw {
            Raw::Text(t) => match parse(t) {
                Ok(v) => Some(v),
                Err((msg, hint)) => {
                    let mut p = Problem::error(key, &setting.source, msg);
                    if let Some(h) = hint {
                        p = p.hint(h);
                    }
                    self.problems.push(p);
                    None
                }
            },
            Raw::Null => {
                let p = if key.ends_with("endpoint") {
                    Problem::error(key, &setting.source, "endpoint is empty").hint(
                        "write a URL such as http://localhost:4317, or remove the key to use the default",
                    )
                } else {
                    Problem::error(key, &setting.source, format!("'{key}' has no value"))
                        .hint("write a value after the colon, or remove the key to use the default")
                };
                self.problems.push(p);
                None
            }
            Raw::Map(_) | Raw::List(_) => None,
        }
    }

    fn duration(&mut self, key: &str) -> Option<Duration> {
        self.get(key, |t| units::parse_duration(t).map_err(|m| (m, None)))
    }

    fn size(&mut self, key: &str) -> Option<u64> {
        self.get(key, |t| units::parse_size(t).map_err(|m| (m, None)))
    }

    fn count(&mut self, key: &str) -> Option<u64> {
        self.get(key, parse_count)
    }

    fn float(&mut self, key: &str) -> Option<f64> {
        self.get(key, |t| {
            t.trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .ok_or_else(|| {
                    (
                        format!("'{t}' is not a number"),
                        Some("write a decimal number, e.g. 1.5".into()),
                    )
                })
        })
    }

    fn boolean(&mut self, key: &str) -> Option<bool> {
        self.get(key, |t| match t.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err((
                format!("'{t}' is not a boolean"),
                Some("use true or false".into()),
            )),
        })
    }

    fn choice<T: FromStr>(&mut self, key: &str) -> Option<T> {
        let values = match schema::lookup(key).map(|d| d.kind) {
            Some(Kind::Enum(v)) => v,
            _ => &[],
        };
        self.get(key, |t| {
            T::from_str(t).map_err(|_| {
                let accepted = values.join(", ");
                let hint = match schema::suggest_enum(t, values) {
                    Some(s) => format!("did you mean '{s}'? accepted: {accepted}"),
                    None => format!("accepted: {accepted}"),
                };
                (format!("unknown value '{t}'"), Some(hint))
            })
        })
    }

    fn addr(&mut self, key: &str) -> Option<SocketAddr> {
        self.get(key, parse_addr)
    }

    fn path(&mut self, key: &str) -> Option<PathBuf> {
        self.get(key, |t| {
            if t.trim().is_empty() {
                Err((
                    "the path is empty".into(),
                    Some("give a file path or remove the key".into()),
                ))
            } else {
                Ok(PathBuf::from(t))
            }
        })
    }

    /// An endpoint: a URL, or `host:port` without a scheme (resolved per
    /// signal by [`Reader::with_scheme`]).
    fn url(&mut self, key: &str) -> Option<String> {
        self.get(key, parse_endpoint_text)
    }

    /// Gives a scheme-less endpoint (`collector:4317`) its scheme as the OTLP
    /// specification says: for gRPC, `insecure` chooses plaintext (`http://`)
    /// and its default, false, TLS (`https://`). OTLP/HTTP endpoints must
    /// carry their scheme; one without is an error (`None`). The flag says
    /// whether `insecure` chose the scheme.
    fn with_scheme(
        &mut self,
        key: &str,
        text: String,
        protocol: Protocol,
        insecure: bool,
    ) -> Option<(String, bool)> {
        if has_scheme(&text) {
            return Some((text, false));
        }
        if protocol == Protocol::Grpc {
            let scheme = if insecure { "http" } else { "https" };
            return Some((format!("{scheme}://{text}"), true));
        }
        let source = self.source(key);
        self.problems.push(
            Problem::error(key, &source, format!("endpoint '{text}': missing scheme; OTLP/HTTP endpoints need http:// or https://"))
                .hint(format!("use http://{text} (plaintext) or https://{text} (TLS); only protocol grpc takes host:port, with tls.insecure choosing plaintext (true) or TLS (false, the default)")),
        );
        None
    }

    fn headers(&mut self, key: &str) -> Option<Vec<(String, String)>> {
        let setting = self.settings.get(key)?;
        let Raw::Map(pairs) = &setting.raw else {
            if setting.raw == Raw::Null {
                return Some(Vec::new());
            }
            return None;
        };
        for (name, value) in pairs {
            if !units::is_header_name(name) {
                self.problems.push(
                    Problem::error(
                        key,
                        &setting.source,
                        format!("header name '{name}' is not a valid HTTP header name"),
                    )
                    .hint("use letters, digits and '-' only, e.g. api-key"),
                );
            }
            if !units::is_header_value(value) {
                self.problems.push(
                    Problem::error(key, &setting.source, format!("header '{name}' has a value with control characters (such as a newline)"))
                        .hint("remove line breaks from the value; a secret pasted from a file often ends in one"),
                );
            }
        }
        // Header names are case-insensitive and HTTP/2 (so gRPC) sends them
        // lower-case; lower-casing here matches the OTel SDKs.
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect(),
        )
    }

    fn build(&mut self) -> (Config, [SignalSources; 3]) {
        let preset = self.choice::<Preset>("preset").unwrap_or_default();
        let generic_protocol = self.choice::<Protocol>("protocol");
        let generic_endpoint = self.url("endpoint");
        let generic_headers = self.headers("headers");
        let generic_timeout = self.duration("timeout");
        let generic_compression = self.choice::<Compression>("compression");
        let generic_tls = self.tls("tls");

        let mut sources: [SignalSources; 3] = Default::default();
        let signals = Signal::ALL.map(|signal| {
            let s = signal.as_str();
            let src = &mut sources[signal.index()];
            let pick = |reader: &Reader<'_>, field: &str| {
                let own = format!("{s}.{field}");
                if reader.is_set(&own) {
                    Some(own)
                } else if reader.is_set(field) {
                    Some(field.to_owned())
                } else {
                    None
                }
            };
            src.protocol = pick(self, "protocol");
            src.headers = pick(self, "headers");
            src.timeout = pick(self, "timeout");
            src.compression = pick(self, "compression");
            let protocol = self
                .choice::<Protocol>(&format!("{s}.protocol"))
                .or(generic_protocol)
                .unwrap_or(Protocol::Grpc);
            let own_tls = self.tls(&format!("{s}.tls"));
            let tls = TlsConfig {
                ca_file: own_tls.ca_file.or_else(|| generic_tls.ca_file.clone()),
                cert_file: own_tls.cert_file.or_else(|| generic_tls.cert_file.clone()),
                key_file: own_tls.key_file.or_else(|| generic_tls.key_file.clone()),
                insecure: if self.is_set(&format!("{s}.tls.insecure")) {
                    own_tls.insecure
                } else {
                    generic_tls.insecure
                },
                insecure_skip_verify: generic_tls.insecure_skip_verify,
            };
            let own_key = format!("{s}.endpoint");
            let own_endpoint = self.url(&own_key);
            let written = match (own_endpoint, &generic_endpoint) {
                (Some(e), _) => Some((own_key, e, true)),
                (None, Some(base)) => Some(("endpoint".to_owned(), base.clone(), false)),
                (None, None) => None,
            };
            let resolved = written.and_then(|(key, text, own)| {
                let (url, from_insecure) = self.with_scheme(&key, text, protocol, tls.insecure)?;
                Some((key, url, own, from_insecure))
            });
            let src = &mut sources[signal.index()];
            let endpoint = match resolved {
                Some((key, url, own, from_insecure)) => {
                    src.endpoint = Some(key);
                    src.scheme_from_insecure = from_insecure;
                    if own {
                        url
                    } else {
                        signal_endpoint(&url, protocol, signal)
                    }
                }
                None => signal_endpoint(protocol.default_endpoint(), protocol, signal),
            };
            SignalConfig {
                signal,
                endpoint,
                protocol,
                headers: self
                    .headers(&format!("{s}.headers"))
                    .or_else(|| generic_headers.clone())
                    .unwrap_or_default(),
                timeout: self
                    .duration(&format!("{s}.timeout"))
                    .or(generic_timeout)
                    .unwrap_or(DEFAULT_TIMEOUT),
                compression: self
                    .choice::<Compression>(&format!("{s}.compression"))
                    .or(generic_compression)
                    .unwrap_or(Compression::None),
                tls,
            }
        });

        let batch_defaults = preset.batch();
        let (max_items, max_bytes) = preset.queue_limits();
        let persistent = self.path("queue.persistent.dir");
        let persistent_max = self.size("queue.persistent.max_bytes");
        let fsync = self.boolean("queue.persistent.fsync");
        if persistent.is_none() && !self.is_set("queue.persistent.dir") {
            for key in ["queue.persistent.max_bytes", "queue.persistent.fsync"] {
                if self.is_set(key) {
                    self.problems.push(
                        Problem::error(key, &self.source(key), "the disk queue has no directory")
                            .hint("set queue.persistent.dir, or remove the queue.persistent section for an in-memory queue"),
                    );
                }
            }
        }
        let receivers_enabled = self.boolean("receivers.enabled");
        let memory_limit = self.size("memory_limit").unwrap_or(DEFAULT_MEMORY_LIMIT);
        let grpc = self.addr("receivers.grpc");
        let http = self.addr("receivers.http");
        let grpc_set = self.is_set("receivers.grpc");
        let http_set = self.is_set("receivers.http");
        let receiver_tls = self.receiver_tls();
        let receivers = if receivers_enabled == Some(false) {
            None
        } else if grpc_set || http_set {
            Some(ReceiversConfig {
                grpc,
                http,
                tls: receiver_tls,
            })
        } else if receivers_enabled == Some(true) {
            Some(ReceiversConfig {
                grpc: Some(const_addr(DEFAULT_RECEIVER_GRPC, 4317, true)),
                http: Some(const_addr(DEFAULT_RECEIVER_HTTP, 4318, true)),
                tls: receiver_tls,
            })
        } else {
            None
        };
        let endpoints = match self.settings.get("endpoints") {
            Some(Setting {
                raw: Raw::List(urls),
                source,
            }) => {
                let source = source.clone();
                let mut ok = Vec::new();
                for u in urls {
                    match parse_url(u) {
                        Ok(_) => ok.push(u.trim().to_owned()),
                        Err((msg, hint)) => {
                            let mut p = Problem::error("endpoints", &source, msg);
                            if let Some(h) = hint {
                                p = p.hint(h);
                            }
                            self.problems.push(p);
                        }
                    }
                }
                ok
            }
            _ => Vec::new(),
        };

        let mut resource = match self.settings.get("resource_attributes") {
            Some(Setting {
                raw: Raw::Map(pairs),
                ..
            }) => pairs.clone(),
            _ => Vec::new(),
        };
        if let Some(name) = self.get("service_name", |t| Ok(t.trim().to_owned())) {
            // OTEL_SERVICE_NAME wins over a service.name in OTEL_RESOURCE_ATTRIBUTES.
            resource.retain(|(k, _)| k != "service.name");
            resource.insert(0, ("service.name".to_owned(), name));
        }
        let metrics_temporality = self
            .choice::<Temporality>("metrics.temporality_preference")
            .unwrap_or_default();

        let config = Config {
            preset,
            signals,
            connect_timeout: self
                .duration("connect_timeout")
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            retry: RetryConfig {
                max_retries: self
                    .count("retry.max_retries")
                    .map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
                initial_backoff: self
                    .duration("retry.initial_backoff")
                    .unwrap_or(Duration::from_secs(1)),
                max_backoff: self
                    .duration("retry.max_backoff")
                    .unwrap_or(Duration::from_secs(30)),
                multiplier: self.float("retry.multiplier").unwrap_or(2.0),
                jitter: self.float("retry.jitter").unwrap_or(0.2),
                max_elapsed: match self.duration("retry.max_elapsed") {
                    Some(d) if d.is_zero() => None,
                    Some(d) => Some(d),
                    // Data on disk waits out any outage; memory is bounded by time.
                    None if persistent.is_some() => None,
                    None => Some(DEFAULT_MAX_ELAPSED),
                },
            },
            batch: BatchConfig {
                max_batch_size: self
                    .count("batch.max_batch_size")
                    .map_or(batch_defaults.max_batch_size, to_usize),
                max_batch_bytes: self
                    .size("batch.max_batch_bytes")
                    .unwrap_or(batch_defaults.max_batch_bytes),
                batch_timeout: self
                    .duration("batch.batch_timeout")
                    .unwrap_or(batch_defaults.batch_timeout),
            },
            queue: QueueConfig {
                max_items: self.count("queue.max_items").map_or(max_items, to_usize),
                max_bytes: self.size("queue.max_bytes").unwrap_or(max_bytes),
                overflow: self
                    .choice::<Overflow>("queue.overflow")
                    .unwrap_or(Overflow::DropOldest),
                persistent: persistent.map(|dir| PersistentConfig {
                    dir,
                    max_bytes: persistent_max.unwrap_or(DEFAULT_PERSISTENT_MAX_BYTES),
                    fsync: fsync.unwrap_or(true),
                }),
            },
            tuning: TuningConfig {
                adaptive: self.boolean("tuning.adaptive").unwrap_or(true),
                min_concurrency: self.count("tuning.min_concurrency").map_or(1, to_usize),
                max_concurrency: self
                    .count("tuning.max_concurrency")
                    .map_or(preset.max_concurrency(), to_usize),
            },
            memory_limit,
            compression_level: self
                .count("compression_level")
                .map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
            admin: AdminConfig {
                listen: self.addr("admin.listen").unwrap_or(const_addr(
                    DEFAULT_ADMIN_LISTEN,
                    8080,
                    false,
                )),
            },
            receivers,
            receivers_enabled,
            intake: IntakeConfig {
                budget: self
                    .size("receivers.intake_budget")
                    .unwrap_or(memory_limit / 4),
                max_request_bytes: self
                    .size("receivers.max_request_bytes")
                    .unwrap_or(DEFAULT_RECEIVER_MAX_REQUEST_BYTES),
                max_decompressed_bytes: self
                    .size("receivers.max_decompressed_bytes")
                    .unwrap_or(DEFAULT_RECEIVER_MAX_REQUEST_BYTES),
                body_read_timeout: self
                    .duration("receivers.body_read_timeout")
                    .unwrap_or(DEFAULT_BODY_READ_TIMEOUT),
                idle_timeout: self
                    .duration("receivers.idle_timeout")
                    .unwrap_or(DEFAULT_IDLE_TIMEOUT),
            },
            endpoints,
            resource,
            metrics_temporality,
            loadbalancing: self.loadbalancing(),
        };
        (config, sources)
    }

    /// `receivers.tls`: TLS only when both the certificate and the key are
    /// set; a half-set section is reported by the validator.
    fn receiver_tls(&mut self) -> Option<ReceiverTlsConfig> {
        let cert_file = self.path("receivers.tls.cert_file");
        let key_file = self.path("receivers.tls.key_file");
        let client_ca_file = self.path("receivers.tls.client_ca_file");
        Some(ReceiverTlsConfig {
            cert_file: cert_file?,
            key_file: key_file?,
            client_ca_file,
        })
    }

    fn tls(&mut self, section: &str) -> TlsConfig {
        TlsConfig {
            ca_file: self.path(&format!("{section}.ca_file")),
            cert_file: self.path(&format!("{section}.cert_file")),
            key_file: self.path(&format!("{section}.key_file")),
            insecure: self
                .boolean(&format!("{section}.insecure"))
                .unwrap_or(false),
            // Only the generic section has this key (see the schema).
            insecure_skip_verify: self
                .boolean(&format!("{section}.insecure_skip_verify"))
                .unwrap_or(false),
        }
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

fn parse_count(t: &str) -> Result<u64, ParseErr> {
    let t = t.trim();
    if t.starts_with('-') {
        return Err((
            format!("'{t}' is negative"),
            Some("use a whole number of 0 or more".into()),
        ));
    }
    t.replace('_', "").parse::<u64>().map_err(|_| {
        (
            format!("'{t}' is not a whole number"),
            Some("write digits only, e.g. 512".into()),
        )
    })
}

/// Parses a listen address; `localhost` means 127.0.0.1.
pub(crate) fn parse_addr(t: &str) -> Result<SocketAddr, ParseErr> {
    let t = t.trim();
    if let Ok(a) = t.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Some(port) = t.strip_prefix("localhost:")
        && let Ok(p) = port.parse::<u16>()
    {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p));
    }
    let hint = if t.parse::<u16>().is_ok() {
        format!(
            "add the interface, e.g. 127.0.0.1:{t} (local only) or 0.0.0.0:{t} (all interfaces)"
        )
    } else if t.contains("://") {
        "write host:port without a scheme, e.g. 0.0.0.0:4317".into()
    } else {
        "write ip:port, e.g. 127.0.0.1:8080 or [::1]:8080".into()
    };
    Err((format!("'{t}' is not a listen address"), Some(hint)))
}

/// Whether `text` starts with a scheme (`http://`, `https://` or another one
/// [`parse_url`] refuses).
pub(crate) fn has_scheme(text: &str) -> bool {
    text.contains("://")
}

/// Parses an endpoint as written: a URL ([`parse_url`]), or `host:port`
/// without a scheme, which the OTLP specification lets `insecure` resolve for
/// gRPC. Returns the trimmed text.
pub(crate) fn parse_endpoint_text(text: &str) -> Result<String, ParseErr> {
    let t = text.trim();
    if t.is_empty() || has_scheme(t) || t.contains(char::is_whitespace) {
        return parse_url(t).map(|_| t.to_owned());
    }
    // Checked as the URL it becomes; messages quote the text as written.
    let as_url = format!("http://{t}");
    match parse_url(&as_url) {
        Ok(_) => Ok(t.to_owned()),
        Err((msg, hint)) => Err((msg.replace(&format!("'{as_url}'"), &format!("'{t}'")), hint)),
    }
}

/// Parses and checks an endpoint URL: scheme http or https, a host, an optional valid port.
pub(crate) fn parse_url(text: &str) -> Result<Url<'_>, ParseErr> {
    let t = text.trim();
    if t.is_empty() {
        return Err((
            "endpoint is empty".into(),
            Some(
                "write a URL such as http://localhost:4317, or remove the key to use the default"
                    .into(),
            ),
        ));
    }
    if t.contains(char::is_whitespace) {
        return Err((
            format!("endpoint '{t}' contains whitespace"),
            Some("remove the spaces".into()),
        ));
    }
    let Some((scheme, rest)) = t.split_once("://") else {
        return Err((
            format!("endpoint '{t}': missing scheme"),
            Some(format!("use http://{t} (plaintext) or https://{t} (TLS)")),
        ));
    };
    let lower = scheme.to_ascii_lowercase();
    if lower != "http" && lower != "https" {
        let hint = match lower.as_str() {
            "grpc" | "grpcs" | "tcp" | "dns" | "unix" => format!(
                "use http:// or https://; choose gRPC with `protocol: grpc`, not the scheme, e.g. http://{rest}"
            ),
            _ => "use http:// (plaintext) or https:// (TLS)".into(),
        };
        return Err((
            format!("endpoint '{t}': unsupported scheme '{scheme}'"),
            Some(hint),
        ));
    }
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, rest)) => (h, rest.strip_prefix(':')),
            None => {
                return Err((
                    format!("endpoint '{t}': unclosed '[' in IPv6 address"),
                    Some("write e.g. http://[::1]:4317".into()),
                ));
            }
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err((
            format!("endpoint '{t}': missing host"),
            Some("write e.g. http://localhost:4317".into()),
        ));
    }
    if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '%'))
    {
        return Err((
            format!("endpoint '{t}': invalid host '{host}'"),
            Some("use a host name or IP address".into()),
        ));
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => {
                return Err((
                    format!("endpoint '{t}': invalid port '{p}'"),
                    Some("use a port between 1 and 65535, e.g. 4317 (grpc) or 4318 (http)".into()),
                ));
            }
            Ok(n) => Some(n),
        },
    };
    Ok(Url {
        scheme,
        host,
        port,
        path,
    })
}

/// Applies the spec's path rule: HTTP protocols get `v1/<signal>` appended to a base URL.
pub(crate) fn signal_endpoint(base: &str, protocol: Protocol, signal: Signal) -> String {
    if protocol.is_http() {
        format!("{}{}", base.trim_end_matches('/'), signal.http_path())
    } else {
        base.to_owned()
    }
}

/// The cross-field and semantic checks on a built config.
fn validate(
    config: &Config,
    settings: &BTreeMap<String, Setting>,
    sources: &[SignalSources; 3],
    problems: &mut Vec<Problem>,
) {
    let src = |key: &str| {
        settings
            .get(key)
            .map_or(Source::Default, |s| s.source.clone())
    };

    for sc in &config.signals {
        let s = sc.signal.as_str();
        let ss = &sources[sc.signal.index()];
        if let Some(key) = &ss.endpoint
            && let Ok(url) = parse_url(&sc.endpoint)
        {
            let source = src(key);
            match (sc.protocol, url.port) {
                (p, Some(4317)) if p.is_http() => problems.push(
                    Problem::warning(
                        key.as_str(),
                        &source,
                        format!("port 4317 is the OTLP/gRPC port but {s} use {p}"),
                    )
                    .hint("use port 4318 for OTLP/HTTP, or set protocol: grpc"),
                ),
                (Protocol::Grpc, Some(4318)) => problems.push(
                    Problem::warning(
                        key.as_str(),
                        &source,
                        format!("port 4318 is the OTLP/HTTP port but {s} use grpc"),
                    )
                    .hint("use port 4317 for OTLP/gRPC, or set protocol: http/protobuf"),
                ),
                _ => {}
            }
            if key == "endpoint"
                && sc.protocol.is_http()
                && let Some(base) = settings.get("endpoint").and_then(|s| match &s.raw {
                    Raw::Text(t) => Some(t.trim().trim_end_matches('/')),
                    _ => None,
                })
                && Signal::ALL
                    .iter()
                    .any(|sig| base.ends_with(sig.http_path()))
            {
                problems.push(
                    Problem::warning(key.as_str(), &source, format!("the generic endpoint already ends in a signal path, so {s} are sent to '{}'", sc.endpoint))
                        .hint(format!("give the base URL only (v1/<signal> is appended), or set {s}.endpoint to the full URL")),
                );
            }
            if sc.protocol == Protocol::Grpc && !url.path.is_empty() && url.path != "/" {
                problems.push(
                    Problem::warning(
                        key.as_str(),
                        &source,
                        format!("gRPC ignores the URL path '{}'", url.path),
                    )
                    .hint("remove the path, e.g. http://host:4317, or use protocol: http/protobuf"),
                );
            }
            let plaintext = url.scheme.eq_ignore_ascii_case("http");
            let tls_files = [
                ("ca_file", &sc.tls.ca_file),
                ("cert_file", &sc.tls.cert_file),
                ("key_file", &sc.tls.key_file),
            ];
            for (field, value) in tls_files {
                if plaintext && value.is_some() {
                    let tls_key = [format!("{s}.tls.{field}"), format!("tls.{field}")]
                        .into_iter()
                        .find(|k| settings.contains_key(k))
                        .unwrap_or_else(|| format!("tls.{field}"));
                    problems.push(
                        Problem::error(
                            tls_key.as_str(),
                            &src(&tls_key),
                            format!("a TLS file is set but the endpoint from '{key}' is plaintext http://, so it would be ignored"),
                        )
                        .hint(format!("use https:// in '{key}', or remove {tls_key}")),
                    );
                }
            }
        }
        check_insecure(sc, ss, settings, problems);
        let timeout_key = ss.timeout.clone().unwrap_or_else(|| "timeout".into());
        check_duration(
            problems,
            &timeout_key,
            &src(&timeout_key),
            sc.timeout,
            MAX_TIMEOUT,
        );
        if sc.tls.cert_file.is_some() != sc.tls.key_file.is_some() {
            let (have, missing) = if sc.tls.cert_file.is_some() {
                ("cert_file", "key_file")
            } else {
                ("key_file", "cert_file")
            };
            let key = [format!("{s}.tls.{have}"), format!("tls.{have}")]
                .into_iter()
                .find(|k| settings.contains_key(k))
                .unwrap_or_else(|| format!("tls.{have}"));
            problems.push(
                Problem::error(
                    key.as_str(),
                    &src(&key),
                    format!("tls.{have} is set without tls.{missing}"),
                )
                .hint("mutual TLS needs both the client certificate and its private key"),
            );
        }
    }
    // TLS files: exist and hold PEM of the right kind, checked once per key.
    for (key, setting) in settings {
        let Some(field) = key.rsplit('.').next() else {
            continue;
        };
        let want = match field {
            "ca_file" | "cert_file" | "client_ca_file" => "CERTIFICATE",
            "key_file" => "PRIVATE KEY",
            _ => continue,
        };
        let Raw::Text(path) = &setting.raw else {
            continue;
        };
        if let Some(p) = check_pem(path, want) {
            let (msg, hint) = p;
            problems.push(Problem::error(key.as_str(), &setting.source, msg).hint(hint));
        }
    }

    check_duration(
        problems,
        "connect_timeout",
        &src("connect_timeout"),
        config.connect_timeout,
        MAX_TIMEOUT,
    );
    let r = &config.retry;
    if r.max_retries == Some(0) {
        problems.push(
            Problem::warning(
                "retry.max_retries",
                &src("retry.max_retries"),
                "retries are disabled (0): a single transient failure drops data",
            )
            .hint("use 3 or more unless you really want no retry"),
        );
    } else if let Some(n) = r.max_retries
        && n > 1000
    {
        problems.push(
            Problem::error(
                "retry.max_retries",
                &src("retry.max_retries"),
                format!("{n} retries is absurd"),
            )
            .hint("bound retrying with retry.max_elapsed instead; 3 to 10 retries is typical"),
        );
    }
    check_duration(
        problems,
        "retry.initial_backoff",
        &src("retry.initial_backoff"),
        r.initial_backoff,
        MAX_TIMEOUT,
    );
    check_duration(
        problems,
        "retry.max_backoff",
        &src("retry.max_backoff"),
        r.max_backoff,
        MAX_TIMEOUT,
    );
    if let Some(max_elapsed) = r.max_elapsed {
        check_duration(
            problems,
            "retry.max_elapsed",
            &src("retry.max_elapsed"),
            max_elapsed,
            Duration::from_secs(7 * 86_400),
        );
    }
    if r.initial_backoff > r.max_backoff {
        problems.push(
            Problem::error(
                "retry.initial_backoff",
                &src("retry.initial_backoff"),
                format!(
                    "initial_backoff {} is larger than max_backoff {}",
                    units::format_duration(r.initial_backoff),
                    units::format_duration(r.max_backoff)
                ),
            )
            .hint("make retry.initial_backoff smaller than retry.max_backoff"),
        );
    }
    if !(1.0..=10.0).contains(&r.multiplier) {
        problems.push(
            Problem::error(
                "retry.multiplier",
                &src("retry.multiplier"),
                format!("multiplier {} is outside 1..10", r.multiplier),
            )
            .hint("use 1.5 or 2; below 1 backoff would shrink"),
        );
    }
    if !(0.0..=1.0).contains(&r.jitter) {
        problems.push(
            Problem::error(
                "retry.jitter",
                &src("retry.jitter"),
                format!("jitter {} is outside 0..1", r.jitter),
            )
            .hint("jitter is a fraction of the backoff, e.g. 0.2"),
        );
    }

    let b = &config.batch;
    let q = &config.queue;
    check_duration(
        problems,
        "batch.batch_timeout",
        &src("batch.batch_timeout"),
        b.batch_timeout,
        MAX_BATCH_TIMEOUT,
    );
    for (key, value) in [
        ("batch.max_batch_size", b.max_batch_size as u64),
        ("batch.max_batch_bytes", b.max_batch_bytes),
        ("queue.max_items", q.max_items as u64),
        ("queue.max_bytes", q.max_bytes),
        ("memory_limit", config.memory_limit),
        (
            "tuning.min_concurrency",
            config.tuning.min_concurrency as u64,
        ),
        (
            "tuning.max_concurrency",
            config.tuning.max_concurrency as u64,
        ),
    ] {
        if value == 0 {
            problems.push(
                Problem::error(key, &src(key), format!("{key} is 0"))
                    .hint("it must be at least 1; remove the key to use the preset's value"),
            );
        }
    }
    if b.max_batch_size > q.max_items && q.max_items > 0 {
        problems.push(
            Problem::error(
                "batch.max_batch_size",
                &src("batch.max_batch_size"),
                format!(
                    "a batch of {} items is larger than the queue ({} items)",
                    b.max_batch_size, q.max_items
                ),
            )
            .hint("raise queue.max_items to several batches, or lower batch.max_batch_size"),
        );
    }
    if b.max_batch_bytes > q.max_bytes && q.max_bytes > 0 {
        problems.push(
            Problem::error(
                "queue.max_bytes",
                &src("queue.max_bytes"),
                format!(
                    "the queue ({}) cannot hold one batch of batch.max_batch_bytes {}",
                    units::format_size(q.max_bytes),
                    units::format_size(b.max_batch_bytes)
                ),
            )
            .hint("raise queue.max_bytes to several batches, or lower batch.max_batch_bytes"),
        );
    }
    let i = &config.intake;
    for (key, value) in [
        ("receivers.body_read_timeout", i.body_read_timeout),
        ("receivers.idle_timeout", i.idle_timeout),
    ] {
        if value.is_zero() {
            problems.push(
                Problem::error(key, &src(key), format!("{key} is 0"))
                    .hint("use a positive duration; remove the key for the default"),
            );
        }
    }
    if i.max_request_bytes == 0 {
        problems.push(
            Problem::error(
                "receivers.max_request_bytes",
                &src("receivers.max_request_bytes"),
                "receivers.max_request_bytes is 0",
            )
            .hint("use a positive size; remove the key for the default 64MiB"),
        );
    } else if i.max_decompressed_bytes < i.max_request_bytes {
        problems.push(
            Problem::error(
                "receivers.max_decompressed_bytes",
                &src("receivers.max_decompressed_bytes"),
                format!(
                    "receivers.max_decompressed_bytes {} is below receivers.max_request_bytes {}",
                    units::format_size(i.max_decompressed_bytes),
                    units::format_size(i.max_request_bytes)
                ),
            )
            .hint("a decompressed body is never smaller than its uncompressed wire form: use at least receivers.max_request_bytes"),
        );
    }
    if i.budget < 1 << 20 {
        problems.push(
            Problem::error(
                "receivers.intake_budget",
                &src("receivers.intake_budget"),
                format!(
                    "receivers.intake_budget {} cannot hold an ordinary request",
                    units::format_size(i.budget)
                ),
            )
            .hint("use at least 1MiB (the default is a quarter of memory_limit)"),
        );
    } else if config.memory_limit > 0
        && q.max_bytes <= config.memory_limit
        && q.max_bytes.saturating_add(i.budget) > config.memory_limit
    {
        problems.push(
            Problem::warning(
                "receivers.intake_budget",
                &src("receivers.intake_budget"),
                format!(
                    "the queue ({}) and the receivers' intake budget ({}) together exceed memory_limit {}",
                    units::format_size(q.max_bytes),
                    units::format_size(i.budget),
                    units::format_size(config.memory_limit)
                ),
            )
            .hint("the queue is capped to memory_limit minus the intake budget; lower queue.max_bytes or receivers.intake_budget, or raise memory_limit"),
        );
    }
    if q.max_bytes > config.memory_limit && config.memory_limit > 0 {
        problems.push(
            Problem::error("queue.max_bytes", &src("queue.max_bytes"), format!(
                "the queue ({}) is larger than memory_limit {}",
                units::format_size(q.max_bytes),
                units::format_size(config.memory_limit)
            ))
            .hint("lower queue.max_bytes or raise memory_limit; use queue.persistent for a larger backlog"),
        );
    }
    if let Some(p) = &q.persistent
        && p.max_bytes < b.max_batch_bytes
    {
        problems.push(
            Problem::error(
                "queue.persistent.max_bytes",
                &src("queue.persistent.max_bytes"),
                format!(
                    "the disk queue ({}) cannot hold one batch of {}",
                    units::format_size(p.max_bytes),
                    units::format_size(b.max_batch_bytes)
                ),
            )
            .hint("raise queue.persistent.max_bytes"),
        );
    }
    if b.max_batch_bytes > GRPC_DEFAULT_MAX_MESSAGE
        && config.signals.iter().any(|s| s.protocol == Protocol::Grpc)
    {
        problems.push(
            Problem::warning(
                "batch.max_batch_bytes",
                &src("batch.max_batch_bytes"),
                format!(
                    "batches up to {} exceed the collector's default gRPC limit of 4MiB",
                    units::format_size(b.max_batch_bytes)
                ),
            )
            .hint("use 4MiB or less, or raise max_recv_msg_size_mib on the collector"),
        );
    }
    let t = &config.tuning;
    if t.min_concurrency > t.max_concurrency {
        problems.push(
            Problem::error(
                "tuning.min_concurrency",
                &src("tuning.min_concurrency"),
                format!(
                    "min_concurrency {} is larger than max_concurrency {}",
                    t.min_concurrency, t.max_concurrency
                ),
            )
            .hint("make tuning.min_concurrency at most tuning.max_concurrency"),
        );
    }
    if t.max_concurrency > 1024 {
        problems.push(
            Problem::error(
                "tuning.max_concurrency",
                &src("tuning.max_concurrency"),
                format!("{} concurrent exports is absurd", t.max_concurrency),
            )
            .hint("use at most a few dozen; each export holds a batch in memory"),
        );
    }
    if let Some(r) = &config.receivers {
        for (key, addr) in [("receivers.grpc", r.grpc), ("receivers.http", r.http)] {
            if let Some(a) = addr
                && a.port() != 0
                && a.port() == config.admin.listen.port()
            {
                problems.push(
                    Problem::error(
                        key,
                        &src(key),
                        format!("port {} is also the admin port", a.port()),
                    )
                    .hint("give the receiver and admin.listen different ports"),
                );
            }
        }
        if let (Some(g), Some(h)) = (r.grpc, r.http)
            && g.port() != 0
            && g.port() == h.port()
        {
            problems.push(
                Problem::error(
                    "receivers.http",
                    &src("receivers.http"),
                    format!("port {} is also the gRPC receiver's port", h.port()),
                )
                .hint("use 4317 for gRPC and 4318 for HTTP"),
            );
        }
    }
    check_receiver_tls(problems, settings, config.receivers.is_some(), &src);
    check_compression_level(config, problems, &src);
}

/// `tls.insecure` only matters for a scheme-less gRPC endpoint, and
/// `tls.insecure_skip_verify` only for an `https://` one, where it is loudly
/// dangerous.
fn check_insecure(
    sc: &SignalConfig,
    ss: &SignalSources,
    settings: &BTreeMap<String, Setting>,
    problems: &mut Vec<Problem>,
) {
    let s = sc.signal.as_str();
    let set_key = |keys: [String; 2]| keys.into_iter().find(|k| settings.contains_key(k));
    let src = |key: &str| {
        settings
            .get(key)
            .map_or(Source::Default, |s| s.source.clone())
    };
    if sc.tls.insecure
        && !ss.scheme_from_insecure
        && let Some(key) = set_key([format!("{s}.tls.insecure"), "tls.insecure".to_owned()])
    {
        problems.push(
            Problem::warning(
                key.as_str(),
                &src(&key),
                format!("{key} is true but the endpoint has a scheme, so it has no effect"),
            )
            .hint("insecure (OTEL_EXPORTER_OTLP_INSECURE) only chooses plaintext for a grpc endpoint written without a scheme, e.g. collector:4317; http:// is plaintext and https:// is TLS whatever it says. To skip certificate checks use tls.insecure_skip_verify"),
        );
    }
    const SKIP: &str = "tls.insecure_skip_verify";
    if sc.tls.insecure_skip_verify {
        let tls = sc
            .endpoint
            .trim()
            .to_ascii_lowercase()
            .starts_with("https://");
        let p = if tls {
            Problem::warning(SKIP, &src(SKIP), "the collector's certificate is not verified: anyone on the network path can impersonate it and read the data")
                .hint("use it only to test against a self-signed collector; set tls.ca_file to the CA that signed its certificate instead")
        } else {
            Problem::warning(
                SKIP,
                &src(SKIP),
                format!("{SKIP} is true but the endpoint is plaintext, so it has no effect"),
            )
            .hint("it applies to https:// endpoints only; remove it")
        };
        problems.push(p);
    }
}

/// `compression_level` is one that each signal's compression has.
fn check_compression_level(
    config: &Config,
    problems: &mut Vec<Problem>,
    src: &dyn Fn(&str) -> Source,
) {
    let Some(level) = config.compression_level else {
        return;
    };
    let mut seen = Vec::new();
    for sc in &config.signals {
        let (name, max) = match sc.compression {
            Compression::None => continue,
            Compression::Gzip => ("gzip", 9),
            Compression::Zstd => ("zstd", 19),
        };
        if (1..=max).contains(&level) || seen.contains(&name) {
            continue;
        }
        seen.push(name);
        problems.push(
            Problem::error(
                "compression_level",
                &src("compression_level"),
                format!("compression_level {level} is not a {name} level"),
            )
            .hint(if name == "gzip" {
                "use 1 (fastest, the default) to 9 (smallest); 1 already gets most of the ratio on OTLP data"
            } else {
                "use 1 (fastest, the default) to 19 (smallest)"
            }),
        );
    }
    if seen.is_empty()
        && config
            .signals
            .iter()
            .all(|sc| sc.compression == Compression::None)
    {
        problems.push(
            Problem::warning(
                "compression_level",
                &src("compression_level"),
                "compression_level is set but no signal is compressed".to_owned(),
            )
            .hint("set compression: gzip or zstd, or remove compression_level"),
        );
    }
}

/// `receivers.tls`: the certificate and key come together, a client CA needs
/// both, and TLS settings without a receiver would be ignored. The files
/// themselves are checked with every other TLS file (exist, readable, PEM).
fn check_receiver_tls(
    problems: &mut Vec<Problem>,
    settings: &BTreeMap<String, Setting>,
    receivers_on: bool,
    src: &dyn Fn(&str) -> Source,
) {
    const CERT: &str = "receivers.tls.cert_file";
    const KEY: &str = "receivers.tls.key_file";
    const CLIENT_CA: &str = "receivers.tls.client_ca_file";
    let (cert, key, client_ca) = (
        settings.contains_key(CERT),
        settings.contains_key(KEY),
        settings.contains_key(CLIENT_CA),
    );
    if cert != key {
        let (have, missing) = if cert { (CERT, KEY) } else { (KEY, CERT) };
        problems.push(
            Problem::error(have, &src(have), format!("{have} is set without {missing}"))
                .hint("receiver TLS needs both the server certificate chain and its private key; set both, or remove receivers.tls for plaintext"),
        );
    }
    if client_ca && !(cert && key) {
        problems.push(
            Problem::error(
                CLIENT_CA,
                &src(CLIENT_CA),
                "client_ca_file is set but receiver TLS is off (no cert_file and key_file)",
            )
            .hint("mutual TLS needs the server's own certificate too: set receivers.tls.cert_file and receivers.tls.key_file"),
        );
    }
    if !receivers_on {
        for k in [CERT, KEY, CLIENT_CA] {
            if settings.contains_key(k) {
                problems.push(
                    Problem::warning(k, &src(k), "receiver TLS is set but agent mode is off, so no receiver uses it")
                        .hint("set receivers.grpc / receivers.http (or receivers.enabled: true), or remove receivers.tls"),
                );
            }
        }
    }
}

fn check_duration(
    problems: &mut Vec<Problem>,
    key: &str,
    source: &Source,
    d: Duration,
    max: Duration,
) {
    if d.is_zero() {
        problems.push(
            Problem::error(key, source, "the duration is zero")
                .hint("a zero duration never lets anything finish; use e.g. 10s"),
        );
    } else if d > max {
        problems.push(
            Problem::error(
                key,
                source,
                format!("{} is absurdly long", units::format_duration(d)),
            )
            .hint(format!(
                "use at most {}; did you mean ms instead of s?",
                units::format_duration(max)
            )),
        );
    }
}

/// Checks that `path` is a readable PEM file holding a `want` block.
fn check_pem(path: &str, want: &str) -> Option<(String, String)> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            return Some((
                format!("cannot read '{path}': {e}"),
                "check the path; relative paths in a file are relative to the config file's directory".into(),
            ));
        }
    };
    if meta.len() > 1 << 20 {
        return Some((
            format!("'{path}' is larger than 1MiB, not a PEM file"),
            "point to the PEM file".into(),
        ));
    }
    let text = match std::fs::read(path) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => {
            return Some((
                format!("cannot read '{path}': {e}"),
                "check the file's permissions".into(),
            ));
        }
    };
    let has_block = text.lines().any(|l| {
        l.starts_with("-----BEGIN ") && l.trim_end().ends_with("-----") && l.contains(want)
    });
    if has_block {
        None
    } else {
        Some((
            format!("'{path}' holds no PEM {want} block"),
            format!(
                "expected a line '-----BEGIN {want}-----' (DER files must be converted: openssl x509 -inform der -in f -out f.pem)"
            ),
        ))
    }
}

#[path = "resolve_lb.rs"]
mod lb;
#[cfg(test)]
#[path = "resolve_tests.rs"]
mod tests;
