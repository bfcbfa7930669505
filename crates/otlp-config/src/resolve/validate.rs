//! `validate`: every cross-field check of a resolved config, each problem with its path, origin and hint.

use super::*;

/// The cross-field and semantic checks on a built config.
pub(super) fn validate(
    config: &Config,
    settings: &BTreeMap<String, Setting>,
    sources: &[SignalSources; Signal::COUNT],
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
pub(super) fn check_insecure(
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
    pub(super) const SKIP: &str = "tls.insecure_skip_verify";
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
pub(super) fn check_compression_level(
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
pub(super) fn check_receiver_tls(
    problems: &mut Vec<Problem>,
    settings: &BTreeMap<String, Setting>,
    receivers_on: bool,
    src: &dyn Fn(&str) -> Source,
) {
    pub(super) const CERT: &str = "receivers.tls.cert_file";
    pub(super) const KEY: &str = "receivers.tls.key_file";
    pub(super) const CLIENT_CA: &str = "receivers.tls.client_ca_file";
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

pub(super) fn check_duration(
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
pub(super) fn check_pem(path: &str, want: &str) -> Option<(String, String)> {
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
