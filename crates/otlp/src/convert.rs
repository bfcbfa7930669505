//! Maps otlp-config's plain structs onto each component's settings. The
//! components know nothing of each other or of the config format; this is the
//! one place that translates.

use std::time::Duration;

use otlp_config::Config;
use otlp_core::Signal;
use otlp_pipeline::{
    BatchConfig, DiskQueueConfig, FsyncPolicy, Overflow, PipelineConfig, QueueConfig,
};
use otlp_resilience::{ConcurrencyPolicy, RetryBudget, RetryPolicy};
use otlp_transport::{
    Compression, ExporterConfig, IntakeBudget, Protocol, ReceiverLimits, ReceiverTls, TlsConfig,
};

use crate::OtlpError;

/// How long the `block` overflow policy waits for room before dropping.
///
/// The config has no key for it: it is the signal's export timeout, the time
/// a producer would otherwise have waited on the network.
fn block_deadline(config: &Config) -> Duration {
    config.signal(Signal::Traces).timeout
}

/// The server-side TLS of the agent's receivers (`receivers.tls`), or `None`
/// for plaintext (also when agent mode is off).
pub(crate) fn receiver_tls(config: &Config) -> Option<ReceiverTls> {
    let tls = config.receivers.as_ref()?.tls.as_ref()?;
    let server = ReceiverTls::new(&tls.cert_file, &tls.key_file);
    Some(match &tls.client_ca_file {
        Some(ca) => server.with_client_ca_file(ca),
        None => server,
    })
}

/// The limits of the agent's receivers (`receivers.*`), with one intake
/// budget both receivers share (give the same limits to both).
pub(crate) fn receiver_limits(config: &Config) -> ReceiverLimits {
    let i = &config.intake;
    ReceiverLimits::new()
        .with_intake_budget(IntakeBudget::new(
            usize::try_from(i.budget).unwrap_or(usize::MAX),
        ))
        .with_max_request_bytes(usize::try_from(i.max_request_bytes).unwrap_or(usize::MAX))
        .with_max_decompressed_bytes(
            usize::try_from(i.max_decompressed_bytes).unwrap_or(usize::MAX),
        )
        .with_body_read_timeout(i.body_read_timeout)
        .with_idle_timeout(i.idle_timeout)
}

/// The transport settings the pipeline's exporter for `signal` is built
/// from (endpoint, protocol, headers, timeouts, compression, TLS files):
/// what a tool that talks to the same upstream outside the pipeline, such
/// as `otlp-client diagnose`, should use rather than map the config itself.
pub fn exporter_config(config: &Config, signal: Signal) -> ExporterConfig {
    let sc = config.signal(signal);
    let mut ec = ExporterConfig {
        endpoint: sc.endpoint.clone(),
        additional_endpoints: config.endpoints.clone(),
        protocol: match sc.protocol {
            otlp_config::Protocol::Grpc => Protocol::Grpc,
            otlp_config::Protocol::HttpProtobuf => Protocol::HttpProtobuf,
            otlp_config::Protocol::HttpJson => Protocol::HttpJson,
        },
        headers: sc.headers.clone(),
        timeout: sc.timeout,
        connect_timeout: config.connect_timeout,
        compression: match sc.compression {
            otlp_config::Compression::None => Compression::None,
            otlp_config::Compression::Gzip => Compression::Gzip,
            otlp_config::Compression::Zstd => Compression::Zstd,
        },
        compression_level: config.compression_level,
        tls: TlsConfig {
            ca_file: sc.tls.ca_file.clone(),
            cert_file: sc.tls.cert_file.clone(),
            key_file: sc.tls.key_file.clone(),
            insecure: sc.tls.insecure,
            insecure_skip_verify: sc.tls.insecure_skip_verify,
        },
        // otlp-config resolves each signal's full URL (the spec's path rules).
        append_signal_path: false,
        ..ExporterConfig::default()
    };
    // Extra upstreams take the signal's HTTP path as the main endpoint does.
    if ec.protocol != Protocol::Grpc {
        for e in &mut ec.additional_endpoints {
            if !e.trim_end_matches('/').ends_with(signal.http_path()) {
                *e = format!("{}{}", e.trim_end_matches('/'), signal.http_path());
            }
        }
    }
    ec
}

/// How much later than the transport's deadline the retry layer's
/// per-attempt timeout fires.
///
/// The transport bounds each request by the signal's `timeout` and fails it
/// with an error naming the endpoint (which the attempt counters and
/// `last_error` record); the retry layer's timeout is the backstop for an
/// attempt whose inner service ignores its deadline. Equal timers would race
/// and the retry layer's, when it won, would drop the transport's error.
pub(crate) const ATTEMPT_TIMEOUT_GRACE: Duration = Duration::from_millis(100);

/// The retry policy of `signal`'s stack: each attempt is bounded by the
/// signal's configured `timeout` (plus [`ATTEMPT_TIMEOUT_GRACE`] for the
/// backstop); throttle hints are obeyed up to the policy's default cap,
/// [`otlp_core::MAX_THROTTLE`].
///
/// With `loadbalancing:`, one attempt may send a part twice in a row (to
/// its backend, which times out, then to the next owner), so it gets two
/// timeouts: the backstop must not cut off the re-route (which would send
/// the whole batch again, delivered parts included).
pub(crate) fn retry_policy(config: &Config, signal: Signal) -> Result<RetryPolicy, OtlpError> {
    let r = &config.retry;
    let timeout = config.signal(signal).timeout;
    let attempt = if config.loadbalancing.is_some() {
        timeout.saturating_mul(2)
    } else {
        timeout
    };
    RetryPolicy::builder()
        .with_attempt_timeout(Some(attempt.saturating_add(ATTEMPT_TIMEOUT_GRACE)))
        .with_initial_backoff(r.initial_backoff)
        .with_max_backoff(r.max_backoff)
        .with_multiplier(r.multiplier)
        .with_jitter(r.jitter)
        .with_max_retries(r.max_retries)
        // No limit: a batch is retried until it is delivered (or shutdown).
        .with_max_elapsed(r.max_elapsed.unwrap_or(Duration::MAX))
        // The pipeline bounds retries already: at most `workers` batches are
        // in flight, each retrying at most once per backoff. A budget that
        // gives up would turn a long outage into data loss.
        .with_budget(RetryBudget::unlimited())
        .build()
        .map_err(OtlpError::Resilience)
}

pub(crate) fn concurrency_policy(config: &Config) -> Result<ConcurrencyPolicy, OtlpError> {
    let t = &config.tuning;
    let (min, max) = if t.adaptive {
        (t.min_concurrency, t.max_concurrency)
    } else {
        (t.max_concurrency, t.max_concurrency)
    };
    ConcurrencyPolicy::builder()
        .with_min_concurrency(min)
        .with_max_concurrency(max)
        .with_initial_concurrency(min.max(1))
        .build()
        .map_err(OtlpError::Resilience)
}

pub(crate) fn pipeline_config(config: &Config) -> PipelineConfig {
    let q = &config.queue;
    PipelineConfig {
        batch: BatchConfig {
            max_batch_size: config.batch.max_batch_size as u64,
            max_batch_bytes: config.batch.max_batch_bytes,
            batch_timeout: config.batch.batch_timeout,
        },
        queue: QueueConfig {
            max_items: q.max_items as u64,
            // The memory limit, less what the receivers may hold, caps what
            // the queue may hold, whatever the queue says (but it always
            // holds one batch).
            max_bytes: q.max_bytes.min(
                config
                    .memory_limit
                    .saturating_sub(config.intake.budget)
                    .max(config.batch.max_batch_bytes),
            ),
            overflow: match q.overflow {
                otlp_config::Overflow::DropNewest => Overflow::DropNewest,
                otlp_config::Overflow::DropOldest => Overflow::DropOldest,
                otlp_config::Overflow::Block => Overflow::Block {
                    deadline: block_deadline(config),
                },
            },
            persistent: q.persistent.as_ref().map(|p| DiskQueueConfig {
                dir: p.dir.clone(),
                max_bytes: p.max_bytes,
                fsync: if p.fsync {
                    FsyncPolicy::Always
                } else {
                    FsyncPolicy::Interval(Duration::from_secs(1))
                },
            }),
        },
        workers: config.tuning.max_concurrency.max(1),
    }
}

#[cfg(test)]
mod receiver_tls_tests {
    use std::path::Path;

    use otlp_config::{ReceiverTlsConfig, ReceiversConfig};

    use super::*;

    #[test]
    fn receiver_tls_maps_every_file_and_none_means_plaintext() {
        let mut config = Config::default();
        assert_eq!(receiver_tls(&config), None);
        config.receivers = Some(ReceiversConfig {
            grpc: None,
            http: None,
            tls: None,
        });
        assert_eq!(receiver_tls(&config), None);
        let tls = ReceiverTlsConfig {
            cert_file: "/tls/server.pem".into(),
            key_file: "/tls/server.key".into(),
            client_ca_file: None,
        };
        if let Some(r) = config.receivers.as_mut() {
            r.tls = Some(tls.clone());
        }
        let got = receiver_tls(&config).unwrap();
        assert_eq!(got.cert_file(), Path::new("/tls/server.pem"));
        assert_eq!(got.key_file(), Path::new("/tls/server.key"));
        assert_eq!(got.client_ca_file(), None);
        if let Some(r) = config.receivers.as_mut() {
            r.tls = Some(ReceiverTlsConfig {
                client_ca_file: Some("/tls/ca.pem".into()),
                ..tls
            });
        }
        assert_eq!(
            receiver_tls(&config).unwrap().client_ca_file(),
            Some(Path::new("/tls/ca.pem"))
        );
    }
}

#[cfg(test)]
mod receiver_limits_tests {
    use otlp_config::{Flags, Sources};

    use super::*;

    #[test]
    fn receiver_size_limits_default_to_64_mib_and_follow_the_config() {
        let config = Config::default();
        let limits = receiver_limits(&config);
        assert_eq!(limits.max_request_bytes(), 64 << 20);
        assert_eq!(limits.max_decompressed_bytes(), 64 << 20);
        let config = Sources {
            flags: Flags::new()
                .set("receivers.max_request_bytes", "4MiB")
                .set("receivers.max_decompressed_bytes", "32MiB"),
            ..Sources::default()
        }
        .load()
        .unwrap();
        let limits = receiver_limits(&config);
        assert_eq!(limits.max_request_bytes(), 4 << 20);
        assert_eq!(limits.max_decompressed_bytes(), 32 << 20);
    }
}

#[cfg(test)]
mod retry_policy_tests {
    use otlp_config::{Env, Sources};

    use super::*;

    #[test]
    fn each_attempt_is_bounded_by_the_signals_configured_timeout() {
        let config = Sources::new()
            .with_env(Env::from_map([
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "300"),
                ("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "30000"),
            ]))
            .load()
            .unwrap();
        let traces = retry_policy(&config, Signal::Traces).unwrap();
        assert_eq!(
            traces.attempt_timeout(),
            Some(Duration::from_millis(300) + ATTEMPT_TIMEOUT_GRACE)
        );
        // Longer than the retry layer's own 10 s default: it must not cut it.
        let logs = retry_policy(&config, Signal::Logs).unwrap();
        assert_eq!(
            logs.attempt_timeout(),
            Some(Duration::from_secs(30) + ATTEMPT_TIMEOUT_GRACE)
        );
        let default = retry_policy(&Config::default(), Signal::Metrics).unwrap();
        assert_eq!(
            default.attempt_timeout(),
            Some(otlp_core::DEFAULT_EXPORT_TIMEOUT + ATTEMPT_TIMEOUT_GRACE)
        );
    }

    #[test]
    fn a_load_balanced_attempt_has_room_for_one_re_route() {
        let config = Sources::new()
            .with_env(Env::from_map([("OTEL_EXPORTER_OTLP_TIMEOUT", "300")]))
            .with_file(
                otlp_config::ConfigFile::parse(
                    "lb.yaml",
                    "loadbalancing:\n  endpoints: [http://a:4317, http://b:4317]\n",
                )
                .unwrap(),
            )
            .load()
            .unwrap();
        assert!(config.loadbalancing.is_some());
        assert_eq!(
            retry_policy(&config, Signal::Traces)
                .unwrap()
                .attempt_timeout(),
            Some(Duration::from_millis(600) + ATTEMPT_TIMEOUT_GRACE)
        );
    }

    #[test]
    fn throttle_hints_are_obeyed_up_to_five_minutes() {
        let policy = retry_policy(&Config::default(), Signal::Traces).unwrap();
        assert_eq!(policy.max_throttle(), Duration::from_secs(300));
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(240))),
            Duration::from_secs(240)
        );
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(3600))),
            Duration::from_secs(300)
        );
    }
}

#[cfg(test)]
mod retry_default_tests {
    use otlp_config::Sources;
    use otlp_core::retry_defaults;

    use super::*;

    #[test]
    fn default_config_retries_on_the_one_default_schedule_the_layer_has_too() {
        let config = Sources::default().load().unwrap();
        let p = retry_policy(&config, Signal::Traces).unwrap();
        let alone = RetryPolicy::default();
        assert_eq!(p.initial_backoff(), retry_defaults::INITIAL_BACKOFF);
        assert_eq!(p.multiplier(), retry_defaults::MULTIPLIER);
        assert_eq!(p.max_backoff(), retry_defaults::MAX_BACKOFF);
        assert_eq!(p.jitter(), retry_defaults::JITTER);
        assert_eq!(p.max_elapsed(), retry_defaults::MAX_ELAPSED);
        assert_eq!(
            (
                alone.initial_backoff(),
                alone.multiplier(),
                alone.max_backoff(),
                alone.jitter(),
                alone.max_elapsed()
            ),
            (
                p.initial_backoff(),
                p.multiplier(),
                p.max_backoff(),
                p.jitter(),
                p.max_elapsed()
            )
        );
    }

    #[test]
    fn every_retry_value_of_the_config_reaches_the_policy() {
        let mut config = Config::default();
        config.retry.initial_backoff = Duration::from_millis(250);
        config.retry.max_backoff = Duration::from_secs(7);
        config.retry.multiplier = 3.0;
        config.retry.jitter = 0.1;
        config.retry.max_retries = Some(4);
        config.retry.max_elapsed = Some(Duration::from_secs(42));
        let p = retry_policy(&config, Signal::Logs).unwrap();
        assert_eq!(p.initial_backoff(), Duration::from_millis(250));
        assert_eq!(p.max_backoff(), Duration::from_secs(7));
        assert_eq!(p.multiplier(), 3.0);
        assert_eq!(p.jitter(), 0.1);
        assert_eq!(p.max_retries(), Some(4));
        assert_eq!(p.max_elapsed(), Duration::from_secs(42));
        config.retry.max_elapsed = None;
        let forever = retry_policy(&config, Signal::Logs).unwrap();
        assert_eq!(forever.max_elapsed(), Duration::MAX);
    }
}

/// Every config value reaches the component setting the mapping table of
/// ARCHITECTURE.md (`### crates/otlp`) names: each key is set to a
/// non-default value and read back from the component's settings.
#[cfg(test)]
mod mapping_tests {
    use otlp_config::{Flags, Sources};

    use super::*;

    #[test]
    fn every_exporter_and_pipeline_value_reaches_its_component() {
        // An existing, writable directory: the validator checks it.
        let dir = std::env::temp_dir();
        let dir_s = dir.to_string_lossy().into_owned();
        // The validator reads the TLS files; their contents do not matter here.
        let file = |name: &str, block: &str| {
            let p = dir.join(format!("otlp-mapping-test-{}-{name}", std::process::id()));
            let pem = format!("-----BEGIN {block}-----\nMA==\n-----END {block}-----\n");
            std::fs::write(&p, pem).unwrap();
            p
        };
        let (ca, cert, key) = (
            file("ca.pem", "CERTIFICATE"),
            file("client.pem", "CERTIFICATE"),
            file("client.key", "PRIVATE KEY"),
        );
        let config = Sources {
            flags: Flags::new()
                .set("endpoint", "https://collector.example:4318")
                .set("endpoints", "https://backup.example:4318")
                .set("protocol", "http/protobuf")
                .set("timeout", "3s")
                .set("connect_timeout", "2s")
                .set("headers", "x-team=core")
                .set("compression", "zstd")
                .set("compression_level", "5")
                .set("tls.ca_file", ca.to_string_lossy().into_owned())
                .set("tls.cert_file", cert.to_string_lossy().into_owned())
                .set("tls.key_file", key.to_string_lossy().into_owned())
                .set("batch.max_batch_size", "123")
                .set("batch.max_batch_bytes", "2MiB")
                .set("batch.batch_timeout", "7s")
                .set("queue.max_items", "4567")
                .set("queue.max_bytes", "16MiB")
                .set("queue.overflow", "drop_oldest")
                .set("queue.persistent.dir", &dir_s)
                .set("queue.persistent.max_bytes", "64MiB")
                .set("queue.persistent.fsync", "true")
                .set("tuning.max_concurrency", "6"),
            ..Sources::default()
        }
        .load()
        .unwrap();

        let e = exporter_config(&config, Signal::Logs);
        assert_eq!(e.endpoint, "https://collector.example:4318/v1/logs");
        assert_eq!(
            e.additional_endpoints,
            vec!["https://backup.example:4318/v1/logs".to_owned()]
        );
        assert_eq!(e.protocol, Protocol::HttpProtobuf);
        assert_eq!(e.timeout, Duration::from_secs(3));
        assert_eq!(e.connect_timeout, Duration::from_secs(2));
        assert!(
            e.headers.iter().any(|(k, v)| k == "x-team" && v == "core"),
            "{:?}",
            e.headers
        );
        assert_eq!(e.compression, Compression::Zstd);
        assert_eq!(e.compression_level, Some(5));
        assert_eq!(e.tls.ca_file.as_deref(), Some(ca.as_path()));
        assert_eq!(e.tls.cert_file.as_deref(), Some(cert.as_path()));
        assert_eq!(e.tls.key_file.as_deref(), Some(key.as_path()));
        for f in [&ca, &cert, &key] {
            let _ = std::fs::remove_file(f);
        }

        let p = pipeline_config(&config);
        assert_eq!(p.batch.max_batch_size, 123);
        assert_eq!(p.batch.max_batch_bytes, 2 << 20);
        assert_eq!(p.batch.batch_timeout, Duration::from_secs(7));
        assert_eq!(p.queue.max_items, 4567);
        assert_eq!(p.queue.max_bytes, 16 << 20);
        assert!(matches!(p.queue.overflow, Overflow::DropOldest));
        let disk = p.queue.persistent.unwrap();
        assert_eq!(disk.dir, dir);
        assert_eq!(disk.max_bytes, 64 << 20);
        assert!(matches!(disk.fsync, FsyncPolicy::Always));
        assert_eq!(p.workers, 6);
    }
}
