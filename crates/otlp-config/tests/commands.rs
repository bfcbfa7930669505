#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The CLI commands as functions: shipped sample configs validate clean,
//! `--fix --write` keeps a backup, `explain-config` shows sources, and the
//! exit codes are 0 / 1 / 2.

use std::path::Path;

use otlp_config::{
    ConfigFile, EXIT_INVALID, EXIT_UNREADABLE, EXIT_VALID, Env, Flags, OutputFormat, Overflow,
    Preset, Sources, explain_config, fix_file, validate_file,
};
use otlp_core::Signal;

#[test]
fn shipped_sample_configs_validate_clean() {
    for name in ["minimal", "agent", "full"] {
        let path = format!("configs/{name}.yaml");
        let out = validate_file(&path, OutputFormat::Text);
        assert_eq!(out.exit_code, EXIT_VALID, "{path}:\n{}", out.text);
        assert!(
            out.text.contains("valid (0 error(s), 0 warning(s))"),
            "{path}:\n{}",
            out.text
        );
    }
}

#[test]
fn agent_sample_enables_receivers_and_disk_queue() {
    let file = ConfigFile::read("configs/agent.yaml").unwrap();
    let c = Sources::new().with_file(file).load().unwrap();
    let r = c.receivers.as_ref().expect("agent mode is on");
    assert_eq!(r.grpc.unwrap().port(), 4317);
    assert_eq!(r.http.unwrap().port(), 4318);
    assert_eq!(c.preset, Preset::HighThroughput);
    assert_eq!(c.batch.max_batch_size, 1000);
    assert_eq!(c.queue.overflow, Overflow::DropOldest);
    let p = c.queue.persistent.as_ref().unwrap();
    assert_eq!(p.max_bytes, 2 << 30);
    assert!(p.fsync);
}

#[test]
fn full_sample_equals_the_defaults_except_its_header() {
    let file = ConfigFile::read("configs/full.yaml").unwrap();
    let mut c = Sources::new().with_file(file).load().unwrap();
    for s in &mut c.signals {
        assert_eq!(s.headers, vec![("x-tenant".to_owned(), "demo".to_owned())]);
        s.headers.clear();
    }
    assert_eq!(c, otlp_config::Config::default());
}

#[test]
fn fix_write_replaces_the_file_and_keeps_a_backup() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    let original = "protocol: http/protobuf\nendpoint: collector:4318  # upstream\ntimeout: 0s\n";
    std::fs::write(&path, original).unwrap();
    let out = fix_file(&path, true, OutputFormat::Text);
    assert_eq!(out.exit_code, EXIT_VALID, "{}", out.text);
    assert!(out.text.contains("2 fix(es) written"), "{}", out.text);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("c.yaml.bak")).unwrap(),
        original
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "protocol: http/protobuf\nendpoint: http://collector:4318  # upstream\ntimeout: 10s\n"
    );
    assert_eq!(
        validate_file(&path, OutputFormat::Text).exit_code,
        EXIT_VALID
    );
    // Nothing left to fix: the file and its backup stay as they are.
    let again = fix_file(&path, true, OutputFormat::Json);
    let v: serde_json::Value = serde_json::from_str(&again.text).unwrap();
    assert_eq!(v["written"], false);
    assert_eq!(v["fixes"].as_array().unwrap().len(), 0);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("c.yaml.bak")).unwrap(),
        original
    );
}

#[test]
fn unreadable_and_non_yaml_files_exit_2_with_position() {
    let out = validate_file("tests/fixtures/does-not-exist.yaml", OutputFormat::Text);
    assert_eq!(out.exit_code, EXIT_UNREADABLE);
    assert!(
        out.text.starts_with("error: cannot read config file"),
        "{}",
        out.text
    );
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin.yaml");
    std::fs::write(&bin, b"endpoint: x\n\xff\xfe\n").unwrap();
    let out = validate_file(&bin, OutputFormat::Json);
    assert_eq!(out.exit_code, EXIT_UNREADABLE);
    let v: serde_json::Value = serde_json::from_str(&out.text).unwrap();
    assert_eq!(v["error"]["line"], 2);
    assert_eq!(
        validate_file(dir.path(), OutputFormat::Text).exit_code,
        EXIT_UNREADABLE
    );
    assert_eq!(
        fix_file("tests/fixtures/not_yaml.yaml", false, OutputFormat::Text).exit_code,
        EXIT_UNREADABLE
    );
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    std::fs::write(
        &path,
        "endpoint: ftp://c\nprotocol: thrift\ntimeout: 0s\nretry:\n  jitter: 2\n  multiplier: 0.5\nheaders:\n  \"bad header\": x\nsurprise: 1\nsurprise: 2\n",
    )
    .unwrap();
    let out = validate_file(&path, OutputFormat::Json);
    assert_eq!(out.exit_code, EXIT_INVALID);
    let v: serde_json::Value = serde_json::from_str(&out.text).unwrap();
    let paths: Vec<&str> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    for want in [
        "endpoint",
        "protocol",
        "timeout",
        "retry.jitter",
        "retry.multiplier",
        "headers",
        "surprise",
    ] {
        assert!(paths.contains(&want), "{want} missing from {paths:?}");
    }
    assert!(out.text.contains("appears twice"), "{}", out.text);
}

#[test]
fn explain_config_shows_sources_resolved_endpoints_and_no_secrets() {
    let env = Env::from_map([
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "authorization=Bearer%20hunter2",
        ),
    ]);
    let flags = Flags::new().set("retry.max_retries", "7");
    let out = explain_config(
        Some(Path::new("configs/minimal.yaml")),
        env,
        flags,
        OutputFormat::Text,
    );
    assert_eq!(out.exit_code, EXIT_VALID, "{}", out.text);
    assert!(!out.text.contains("hunter2"), "{}", out.text);
    assert!(
        out.text.contains("http://localhost:4317/v1/traces"),
        "{}",
        out.text
    );
    assert!(
        out.text.contains("(file configs/minimal.yaml:3:11)"),
        "{}",
        out.text
    );
    assert!(
        out.text.contains("(env OTEL_EXPORTER_OTLP_PROTOCOL)"),
        "{}",
        out.text
    );
    assert!(
        out.text.lines().any(|l| l.starts_with("retry.max_retries ")
            && l.ends_with("= 7  (flag --set retry.max_retries)")),
        "{}",
        out.text
    );
    let out = explain_config(
        None,
        Env::new(),
        Flags::new().set("protocl", "grpc"),
        OutputFormat::Json,
    );
    assert_eq!(out.exit_code, EXIT_INVALID);
    let v: serde_json::Value = serde_json::from_str(&out.text).unwrap();
    assert_eq!(v["problems"][0]["hint"], "did you mean 'protocol'?");
    // A broken config shows its problems, not stand-in values.
    assert_eq!(v["valid"], false);
    assert_eq!(v["signals"], serde_json::json!([]));
    assert_eq!(
        explain_config(
            Some(Path::new("nope.yaml")),
            Env::new(),
            Flags::new(),
            OutputFormat::Text
        )
        .exit_code,
        EXIT_UNREADABLE
    );
}

#[test]
fn relative_tls_paths_resolve_against_the_config_file_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("certs")).unwrap();
    std::fs::write(
        dir.path().join("certs/ca.pem"),
        "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let path = dir.path().join("c.yaml");
    std::fs::write(
        &path,
        "endpoint: https://c:4317\ntls:\n  ca_file: certs/ca.pem\n",
    )
    .unwrap();
    let c = Sources::new()
        .with_file(ConfigFile::read(&path).unwrap())
        .load()
        .unwrap();
    assert_eq!(
        c.signal(Signal::Traces).tls.ca_file.as_deref(),
        Some(dir.path().join("certs/ca.pem").as_path())
    );
}

#[test]
fn compression_level_is_checked_against_each_signals_compression_and_explained() {
    let dir = tempfile::tempdir().unwrap();
    let check = |yaml: &str| {
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, yaml).unwrap();
        validate_file(&path, OutputFormat::Text)
    };
    // 12 is no gzip level, but a zstd one.
    let out = check("endpoint: http://c:4317\ncompression: gzip\ncompression_level: 12\n");
    assert_eq!(out.exit_code, EXIT_INVALID, "{}", out.text);
    assert!(
        out.text
            .contains("compression_level 12 is not a gzip level"),
        "{}",
        out.text
    );
    assert!(
        out.text.contains("1 (fastest, the default) to 9"),
        "{}",
        out.text
    );
    let out = check("endpoint: http://c:4317\ncompression: zstd\ncompression_level: 12\n");
    assert_eq!(out.exit_code, EXIT_VALID, "{}", out.text);
    let out = check("endpoint: http://c:4317\ncompression: zstd\ncompression_level: 0\n");
    assert_eq!(out.exit_code, EXIT_INVALID, "{}", out.text);
    // A per-signal compression counts: traces gzip, level 9 fits.
    let out =
        check("endpoint: http://c:4317\ncompression_level: 9\ntraces:\n  compression: gzip\n");
    assert_eq!(out.exit_code, EXIT_VALID, "{}", out.text);
    // Set with nothing compressed: valid, with a warning saying so.
    let out = check("endpoint: http://c:4317\ncompression_level: 3\n");
    assert_eq!(out.exit_code, EXIT_VALID, "{}", out.text);
    assert!(out.text.contains("no signal is compressed"), "{}", out.text);
    // explain-config shows the default, and a set level with its source.
    let text = explain_config(None, Env::new(), Flags::new(), OutputFormat::Text).text;
    assert!(text.contains("1 (the fastest gzip / zstd level)"), "{text}");
    let flags = Flags::new()
        .set("compression", "zstd")
        .set("compression_level", "7");
    let text = explain_config(None, Env::new(), flags, OutputFormat::Text).text;
    let line = text
        .lines()
        .find(|l| l.starts_with("compression_level"))
        .unwrap();
    assert!(line.contains("= 7"), "{line}");
}

#[test]
fn receiver_size_limits_are_64_mib_by_default_and_checked() {
    let text = explain_config(None, Env::new(), Flags::new(), OutputFormat::Text).text;
    // The default protocol's deviation from the spec is stated where it shows.
    let line = text.lines().find(|l| l.starts_with("protocol ")).unwrap();
    assert!(
        line.contains("the OTLP spec's default is http/protobuf"),
        "{line}"
    );
    for key in [
        "receivers.max_request_bytes",
        "receivers.max_decompressed_bytes",
    ] {
        let line = text.lines().find(|l| l.starts_with(key)).unwrap();
        assert!(line.contains("64MiB"), "{line}");
    }
    let flags = Flags::new()
        .set("receivers.max_request_bytes", "8MiB")
        .set("receivers.max_decompressed_bytes", "4MiB");
    let out = explain_config(None, Env::new(), flags, OutputFormat::Text);
    assert_eq!(out.exit_code, EXIT_INVALID, "{}", out.text);
    assert!(
        out.text.contains(
            "receivers.max_decompressed_bytes 4MiB is below receivers.max_request_bytes 8MiB"
        ),
        "{}",
        out.text
    );
}
