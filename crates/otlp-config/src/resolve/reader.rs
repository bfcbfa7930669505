//! `Reader`: typed reads of one key from the merged sources, recording each problem with its origin.

use super::*;

// === impl Reader ===

impl Reader<'_> {
    pub(super) fn source(&self, key: &str) -> Source {
        self.settings
            .get(key)
            .map_or(Source::Default, |s| s.source.clone())
    }

    pub(super) fn is_set(&self, key: &str) -> bool {
        self.settings.contains_key(key)
    }

    /// The typed value of `key`, or `None` when unset or wrong (a problem is recorded).
    pub(super) fn get<T>(
        &mut self,
        key: &str,
        parse: impl Fn(&str) -> Result<T, ParseErr>,
    ) -> Option<T> {
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

    pub(super) fn duration(&mut self, key: &str) -> Option<Duration> {
        self.get(key, |t| units::parse_duration(t).map_err(|m| (m, None)))
    }

    pub(super) fn size(&mut self, key: &str) -> Option<u64> {
        self.get(key, |t| units::parse_size(t).map_err(|m| (m, None)))
    }

    pub(super) fn count(&mut self, key: &str) -> Option<u64> {
        self.get(key, parse_count)
    }

    pub(super) fn float(&mut self, key: &str) -> Option<f64> {
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

    pub(super) fn boolean(&mut self, key: &str) -> Option<bool> {
        self.get(key, |t| match t.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err((
                format!("'{t}' is not a boolean"),
                Some("use true or false".into()),
            )),
        })
    }

    pub(super) fn choice<T: FromStr>(&mut self, key: &str) -> Option<T> {
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

    pub(super) fn addr(&mut self, key: &str) -> Option<SocketAddr> {
        self.get(key, parse_addr)
    }

    pub(super) fn path(&mut self, key: &str) -> Option<PathBuf> {
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
    pub(super) fn url(&mut self, key: &str) -> Option<String> {
        self.get(key, parse_endpoint_text)
    }

    /// Gives a scheme-less endpoint (`collector:4317`) its scheme as the OTLP
    /// specification says: for gRPC, `insecure` chooses plaintext (`http://`)
    /// and its default, false, TLS (`https://`). OTLP/HTTP endpoints must
    /// carry their scheme; one without is an error (`None`). The flag says
    /// whether `insecure` chose the scheme.
    pub(super) fn with_scheme(
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

    pub(super) fn headers(&mut self, key: &str) -> Option<Vec<(String, String)>> {
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

    pub(super) fn build(&mut self) -> (Config, [SignalSources; Signal::COUNT]) {
        let preset = self.choice::<Preset>("preset").unwrap_or_default();
        let generic_protocol = self.choice::<Protocol>("protocol");
        let generic_endpoint = self.url("endpoint");
        let generic_headers = self.headers("headers");
        let generic_timeout = self.duration("timeout");
        let generic_compression = self.choice::<Compression>("compression");
        let generic_tls = self.tls("tls");

        let mut sources: [SignalSources; Signal::COUNT] = Default::default();
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
                    .unwrap_or(retry_defaults::INITIAL_BACKOFF),
                max_backoff: self
                    .duration("retry.max_backoff")
                    .unwrap_or(retry_defaults::MAX_BACKOFF),
                multiplier: self
                    .float("retry.multiplier")
                    .unwrap_or(retry_defaults::MULTIPLIER),
                jitter: self.float("retry.jitter").unwrap_or(retry_defaults::JITTER),
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
    pub(super) fn receiver_tls(&mut self) -> Option<ReceiverTlsConfig> {
        let cert_file = self.path("receivers.tls.cert_file");
        let key_file = self.path("receivers.tls.key_file");
        let client_ca_file = self.path("receivers.tls.client_ca_file");
        Some(ReceiverTlsConfig {
            cert_file: cert_file?,
            key_file: key_file?,
            client_ca_file,
        })
    }

    pub(super) fn tls(&mut self, section: &str) -> TlsConfig {
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
