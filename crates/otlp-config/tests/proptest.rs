#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Property tests: arbitrary YAML-ish text, environment values and flags
//! never make loading, validation, autofix or explain panic.

use otlp_config::{ConfigFile, Env, Flags, Sources, autofix};
use proptest::prelude::*;

/// Text built from YAML's structural pieces and config words, so the parser
/// gets past the first line often enough to reach the validator.
fn yamlish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("endpoint: ".to_owned()),
        Just("protocol: ".to_owned()),
        Just("timeout: ".to_owned()),
        Just("retry:\n  max_retries: ".to_owned()),
        Just("batch:\n  max_batch_size: ".to_owned()),
        Just("headers:\n  a: ".to_owned()),
        Just("tls:\n  ca_file: ".to_owned()),
        Just("endpoints:\n  - ".to_owned()),
        Just("queue:\n  persistent:\n    dir: ".to_owned()),
        Just("\n".to_owned()),
        Just("  ".to_owned()),
        Just("- ".to_owned()),
        Just(": ".to_owned()),
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just("\"".to_owned()),
        Just("'".to_owned()),
        Just("&a ".to_owned()),
        Just("*a".to_owned()),
        Just("---\n".to_owned()),
        Just("# c\n".to_owned()),
        Just("\t".to_owned()),
        Just("0s".to_owned()),
        Just("10ms".to_owned()),
        Just("4MiB".to_owned()),
        Just("http://x:4317".to_owned()),
        Just("grpc".to_owned()),
        "[a-z_.%/:0-9é]{0,12}",
    ];
    prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_yaml_never_panics(text in yamlish()) {
        if let Ok(file) = ConfigFile::parse("p.yaml", text) {
            let resolved = Sources::new().with_file(file.clone()).resolve();
            let _ = resolved.explain().render_text();
            // Autofix edits whole scalars and keys, so its output always parses again.
            let fixed = autofix(&file).unwrap();
            prop_assert!(ConfigFile::parse("p.yaml", fixed.text).is_ok());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(text in "\\PC{0,200}") {
        if let Ok(file) = ConfigFile::parse("p.yaml", text) {
            let _ = Sources::new().with_file(file.clone()).resolve().explain().render_json();
            let _ = autofix(&file);
        }
    }

    #[test]
    fn arbitrary_env_and_flags_never_panic(
        values in prop::collection::vec("\\PC{0,40}", 12),
        key in "[a-z_.]{0,20}",
    ) {
        let names = [
            "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL",
            "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_LOGS_HEADERS", "OTEL_EXPORTER_OTLP_TIMEOUT",
            "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "OTEL_EXPORTER_OTLP_COMPRESSION", "OTEL_EXPORTER_OTLP_INSECURE",
            "OTEL_EXPORTER_OTLP_CERTIFICATE", "OTLP_TIMEOUT", "OTLP_PRESET",
        ];
        let env = Env::from_map(names.iter().zip(&values).map(|(n, v)| (*n, v.as_str())));
        let flags = Flags::new().set(key, values[0].clone()).set("headers", values[1].clone());
        let r = Sources::new().with_env(env).with_flags(flags).resolve();
        let _ = r.explain().render_text();
        let _ = r.into_result();
    }
}
