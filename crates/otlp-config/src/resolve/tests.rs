//! Unit tests of the resolver: URL and address rules, defaults, presets, receivers.

use super::*;

fn resolve_yaml(text: &str) -> Resolved {
    Sources::new()
        .with_file(ConfigFile::parse("c.yaml", text).unwrap())
        .resolve()
}

#[test]
fn url_rules_accept_http_and_https_and_explain_the_rest() {
    let ok = [
        ("http://localhost:4317", "localhost", Some(4317), ""),
        (
            "https://collector.example.com",
            "collector.example.com",
            None,
            "",
        ),
        ("http://[::1]:4318/otlp", "::1", Some(4318), "/otlp"),
        ("http://user:pw@host:1/x?y", "host", Some(1), "/x?y"),
    ];
    for (text, host, port, path) in ok {
        let u = parse_url(text).unwrap();
        assert_eq!((u.host, u.port, u.path), (host, port, path), "{text}");
    }
    let bad = [
        ("", "empty"),
        ("localhost:4317", "missing scheme"),
        ("grpc://c:4317", "unsupported scheme"),
        ("http://:4317", "missing host"),
        ("http://c:99999", "invalid port"),
        ("http://c:0", "invalid port"),
        ("http://c d:1", "whitespace"),
        ("http://[::1:4317", "unclosed"),
        ("http://c$:1", "invalid host"),
    ];
    for (text, want) in bad {
        let (msg, hint) = parse_url(text).unwrap_err();
        assert!(msg.contains(want), "{text}: {msg}");
        assert!(hint.is_some(), "{text}");
    }
}

#[test]
fn listen_addresses_accept_localhost_and_hint_at_bare_ports() {
    assert_eq!(parse_addr("localhost:8080").unwrap().port(), 8080);
    assert_eq!(parse_addr("[::]:4317").unwrap().port(), 4317);
    let (_, hint) = parse_addr("8080").unwrap_err();
    assert!(hint.unwrap().contains("127.0.0.1:8080"));
}

#[test]
fn defaults_are_valid_without_warnings_and_follow_the_balanced_preset() {
    let r = Sources::new().resolve();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let c = r.config;
    assert_eq!(c.preset, Preset::Balanced);
    assert_eq!(c.batch, Preset::Balanced.batch());
    assert_eq!(c.signal(Signal::Traces).endpoint, "http://localhost:4317");
    assert_eq!(c.admin.listen.to_string(), DEFAULT_ADMIN_LISTEN);
    assert_eq!(c.receivers, None);
    assert_eq!(c.queue.persistent, None);
    assert_eq!(c.memory_limit, DEFAULT_MEMORY_LIMIT);
}

#[test]
fn every_preset_is_valid_and_explicit_keys_override_it() {
    for p in Preset::VALUES {
        let r = resolve_yaml(&format!("preset: {p}\n"));
        assert!(r.problems.is_empty(), "{p}: {:?}", r.problems);
        assert_eq!(r.config.preset.as_str(), p);
    }
    let r = resolve_yaml("preset: high_throughput\nbatch:\n  max_batch_size: 300\n");
    assert_eq!(r.config.batch.max_batch_size, 300);
    assert_eq!(r.config.batch.batch_timeout, Duration::from_secs(1));
    assert_eq!(r.config.queue.max_items, 262_144);
}

#[test]
fn receivers_turn_on_agent_mode() {
    let cases = [
        (
            "receivers:\n  enabled: true\n",
            Some((Some(4317), Some(4318))),
        ),
        (
            "receivers:\n  grpc: 0.0.0.0:5317\n",
            Some((Some(5317), None)),
        ),
        ("receivers:\n  enabled: false\n  grpc: 0.0.0.0:5317\n", None),
        ("receivers:\n", None),
        ("admin:\n  listen: 127.0.0.1:9090\n", None),
    ];
    for (text, want) in cases {
        let r = resolve_yaml(text);
        assert!(r.is_valid(), "{text}: {:?}", r.problems);
        let got = r
            .config
            .receivers
            .map(|r| (r.grpc.map(|a| a.port()), r.http.map(|a| a.port())));
        assert_eq!(got, want, "{text}");
    }
    let r = resolve_yaml("receivers:\n  grpc: 0.0.0.0:8080\n");
    assert_eq!(r.errors().next().unwrap().path, "receivers.grpc");
}

#[test]
fn disk_queue_needs_a_directory_and_room_for_a_batch() {
    let r = resolve_yaml("queue:\n  persistent:\n    max_bytes: 1GiB\n");
    assert_eq!(
        r.errors().next().unwrap().message,
        "the disk queue has no directory"
    );
    let r = resolve_yaml("queue:\n  persistent:\n    dir: /tmp/q\n    max_bytes: 1KiB\n");
    assert_eq!(
        r.errors().next().unwrap().path,
        "queue.persistent.max_bytes"
    );
    let r = resolve_yaml("queue:\n  persistent:\n    dir: /tmp/q\n");
    assert!(r.is_valid());
    let p = r.config.queue.persistent.unwrap();
    assert_eq!((p.max_bytes, p.fsync), (DEFAULT_PERSISTENT_MAX_BYTES, true));
}

#[test]
fn common_endpoint_mistakes_warn() {
    let r = resolve_yaml("protocol: http/protobuf\nendpoint: http://c:4318/v1/traces\n");
    assert!(r.is_valid());
    assert!(
        r.problems
            .iter()
            .any(|p| p.message.contains("already ends in a signal path")),
        "{:?}",
        r.problems
    );
    let r = resolve_yaml("protocol: http/protobuf\nendpoint: http://c:4317\n");
    assert!(
        r.problems
            .iter()
            .any(|p| p.message.contains("4317 is the OTLP/gRPC port"))
    );
    let r = resolve_yaml("traces:\n  endpoint: http://c:4317/v1/traces\n");
    assert!(
        r.problems
            .iter()
            .any(|p| p.message.contains("gRPC ignores the URL path"))
    );
    let r = resolve_yaml("exporters:\n  otlp:\n    endpoint: c:4317\n");
    assert!(
        r.problems[0]
            .hint
            .as_deref()
            .unwrap()
            .contains("OpenTelemetry Collector config")
    );
}

#[test]
fn empty_values_and_wrong_types_are_errors_with_hints() {
    let r = resolve_yaml(
        "endpoint:\ntimeout:\nretry:\n  max_retries: -1\n  multiplier: fast\ntuning:\n  adaptive: yes\n",
    );
    let got: Vec<(&str, &str)> = r
        .problems
        .iter()
        .map(|p| (p.path.as_str(), p.message.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("endpoint", "endpoint is empty"),
            ("timeout", "'timeout' has no value"),
            ("retry.max_retries", "'-1' is negative"),
            ("retry.multiplier", "'fast' is not a number"),
            ("tuning.adaptive", "'yes' is not a boolean"),
        ]
    );
    assert!(r.problems.iter().all(|p| p.hint.is_some()));
}

/// A directory holding `cert.pem`, `key.pem` and `ca.pem` with PEM blocks of
/// the right kind (the validator reads the block headers only).
fn receiver_tls_files() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    std::fs::write(dir.path().join("cert.pem"), cert).unwrap();
    std::fs::write(dir.path().join("ca.pem"), cert).unwrap();
    std::fs::write(
        dir.path().join("key.pem"),
        "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    dir
}

#[test]
fn receiver_tls_resolves_with_cert_key_and_optional_client_ca() {
    let dir = receiver_tls_files();
    let d = dir.path().display();
    let r = resolve_yaml(&format!(
        "receivers:\n  grpc: 127.0.0.1:4317\n  tls:\n    cert_file: {d}/cert.pem\n    key_file: {d}/key.pem\n"
    ));
    assert!(r.is_valid(), "{:?}", r.problems);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let tls = r.config.receivers.unwrap().tls.unwrap();
    assert_eq!(tls.cert_file, dir.path().join("cert.pem"));
    assert_eq!(tls.key_file, dir.path().join("key.pem"));
    assert_eq!(tls.client_ca_file, None);

    let r = resolve_yaml(&format!(
        "receivers:\n  enabled: true\n  tls:\n    cert_file: {d}/cert.pem\n    key_file: {d}/key.pem\n    client_ca_file: {d}/ca.pem\n"
    ));
    assert!(r.is_valid(), "{:?}", r.problems);
    let tls = r.config.receivers.unwrap().tls.unwrap();
    assert_eq!(tls.client_ca_file, Some(dir.path().join("ca.pem")));

    let r = resolve_yaml("receivers:\n  grpc: 127.0.0.1:4317\n");
    assert_eq!(r.config.receivers.unwrap().tls, None);
}

#[test]
fn receiver_tls_validation_lists_every_problem_with_a_fix() {
    let dir = receiver_tls_files();
    let d = dir.path().display();
    // Key missing, a client CA that does not exist, and a cert that is a key.
    let r = resolve_yaml(&format!(
        "receivers:\n  grpc: 127.0.0.1:4317\n  tls:\n    cert_file: {d}/key.pem\n    client_ca_file: {d}/missing.pem\n"
    ));
    assert!(!r.is_valid());
    let errors: Vec<_> = r.errors().collect();
    let find = |path: &str, needle: &str| {
        errors
            .iter()
            .find(|p| p.path == path && p.message.contains(needle))
            .unwrap_or_else(|| panic!("no '{needle}' at {path} in {errors:?}"))
    };
    let p = find(
        "receivers.tls.cert_file",
        "set without receivers.tls.key_file",
    );
    assert!(p.hint.as_deref().unwrap().contains("set both"));
    assert!(matches!(p.source, Source::File { line: 4, .. }), "{p:?}");
    find("receivers.tls.cert_file", "holds no PEM CERTIFICATE block");
    find("receivers.tls.client_ca_file", "cannot read");
    find("receivers.tls.client_ca_file", "receiver TLS is off");

    // Only the key: the message names the missing certificate.
    let r = resolve_yaml(&format!(
        "receivers:\n  grpc: 127.0.0.1:4317\n  tls:\n    key_file: {d}/key.pem\n"
    ));
    let p = r.errors().next().unwrap();
    assert_eq!(p.path, "receivers.tls.key_file");
    assert!(
        p.message.contains("without receivers.tls.cert_file"),
        "{p:?}"
    );
    assert_eq!(r.config.receivers.unwrap().tls, None);
}

#[test]
fn receiver_tls_without_a_receiver_warns_that_it_is_ignored() {
    let dir = receiver_tls_files();
    let d = dir.path().display();
    let r = resolve_yaml(&format!(
        "receivers:\n  enabled: false\n  tls:\n    cert_file: {d}/cert.pem\n    key_file: {d}/key.pem\n"
    ));
    assert!(r.is_valid(), "{:?}", r.problems);
    assert_eq!(r.config.receivers, None);
    let warned: Vec<_> = r.problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        warned,
        ["receivers.tls.cert_file", "receivers.tls.key_file"],
        "{:?}",
        r.problems
    );
}

#[test]
fn default_retries_ride_out_a_five_minute_outage_and_never_give_up_on_disk() {
    // Memory queue: no count limit (5 retries used to end the loop after ~31 s),
    // the Collector's five minutes of elapsed time.
    let r = resolve_yaml("endpoint: http://c:4317\n");
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.config.retry.max_retries, None);
    assert_eq!(r.config.retry.max_elapsed, Some(Duration::from_secs(300)));
    // Disk queue: retried until delivered unless a limit is set.
    let r = resolve_yaml("endpoint: http://c:4317\nqueue:\n  persistent:\n    dir: /tmp/q\n");
    assert_eq!(r.config.retry.max_elapsed, None);
    let r = resolve_yaml(
        "endpoint: http://c:4317\nretry:\n  max_elapsed: 10m\nqueue:\n  persistent:\n    dir: /tmp/q\n",
    );
    assert_eq!(r.config.retry.max_elapsed, Some(Duration::from_secs(600)));
    // 0 means forever, on either queue.
    let r = resolve_yaml("endpoint: http://c:4317\nretry:\n  max_elapsed: 0s\n");
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.config.retry.max_elapsed, None);
    // An explicit count still applies, and 0 still warns.
    let r = resolve_yaml("endpoint: http://c:4317\nretry:\n  max_retries: 0\n");
    assert_eq!(r.config.retry.max_retries, Some(0));
    assert!(
        r.problems.iter().any(|p| p.path == "retry.max_retries"),
        "{:?}",
        r.problems
    );
}

#[test]
fn default_queue_takes_the_collectors_8192_item_batch() {
    for p in Preset::VALUES {
        let r = resolve_yaml(&format!("preset: {p}\n"));
        assert!(
            r.config.queue.max_items >= 2 * 8192,
            "{p}: queue.max_items {}",
            r.config.queue.max_items
        );
    }
}
