#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Golden tests: the exact output of `validate-config` (text and JSON) and
//! `validate-config --fix` on broken configs a new user would write, pinned in
//! `tests/golden/`. Run with `OTLP_CONFIG_BLESS=1` to rewrite the files after
//! an intended change of wording, then review the diff.

use std::path::Path;

use otlp_config::{OutputFormat, fix_file, validate_file};

const FIXTURES: &[(&str, i32)] = &[
    ("typos", 1),
    ("missing_scheme_and_units", 1),
    ("tls_on_plaintext", 1),
    ("limits", 1),
    ("wrong_shapes", 1),
    ("not_yaml", 2),
    ("tabs", 2),
    ("seed_wrapper", 1),
    ("collector_config", 1),
];

fn check_golden(name: &str, actual: &str) {
    let path = Path::new("tests/golden").join(name);
    if std::env::var_os("OTLP_CONFIG_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with OTLP_CONFIG_BLESS=1 to create it",
            path.display()
        )
    });
    assert_eq!(actual, expected, "output differs from {}", path.display());
}

#[test]
fn validate_output_matches_golden_files_for_broken_configs() {
    for (name, code) in FIXTURES {
        let file = format!("tests/fixtures/{name}.yaml");
        let text = validate_file(&file, OutputFormat::Text);
        assert_eq!(text.exit_code, *code, "{name}:\n{}", text.text);
        check_golden(&format!("{name}.txt"), &text.text);
        let json = validate_file(&file, OutputFormat::Json);
        assert_eq!(json.exit_code, *code, "{name}");
        let parsed: serde_json::Value = serde_json::from_str(&json.text).unwrap();
        assert_eq!(parsed["exit_code"], *code);
        check_golden(&format!("{name}.json"), &json.text);
    }
}

#[test]
fn fix_output_matches_golden_files_and_does_not_write_without_write() {
    for name in ["typos", "missing_scheme_and_units", "seed_wrapper"] {
        let file = format!("tests/fixtures/{name}.yaml");
        let before = std::fs::read_to_string(&file).unwrap();
        let out = fix_file(&file, false, OutputFormat::Text);
        check_golden(&format!("{name}.fix.txt"), &out.text);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
    }
}

#[test]
fn env_and_flag_problems_render_with_their_variable_or_flag() {
    use otlp_config::{Env, Flags, Sources};
    let env = Env::from_map([
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "10s"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "api-key"),
    ]);
    let flags = Flags::new().with_flag("--endpoint", "endpoint", "grpc://collector:4317");
    let text: Vec<String> = Sources::new()
        .with_env(env)
        .with_flags(flags)
        .resolve()
        .problems
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        text.join("\n"),
        "\
env OTEL_EXPORTER_OTLP_HEADERS: error: headers: header entry 'api-key' has no '='; write key=value, entries separated by ','
env OTEL_EXPORTER_OTLP_PROTOCOL: error: protocol: unknown value 'http'
    hint: did you mean 'http/protobuf'? accepted: grpc, http/protobuf, http/json
env OTEL_EXPORTER_OTLP_TIMEOUT: warning: timeout: OTEL_EXPORTER_OTLP_TIMEOUT='10s' is not a timeout; it is ignored and the default applies
    hint: give a whole number of milliseconds, e.g. 10000 for 10s, or 0 for no timeout
flag --endpoint: error: endpoint: endpoint 'grpc://collector:4317': unsupported scheme 'grpc'
    hint: use http:// or https://; choose gRPC with `protocol: grpc`, not the scheme, e.g. http://collector:4317"
    );
}

#[test]
fn config_error_message_names_the_count_and_first_error() {
    let file =
        otlp_config::ConfigFile::parse("c.yaml", "timeout: 0s\nbatch:\n  max_batch_size: 0\n")
            .unwrap();
    let err = otlp_config::Sources::new()
        .with_file(file)
        .load()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "config is invalid with 2 error(s), first: c.yaml:1:10: timeout: the duration is zero; run validate-config for the full list"
    );
    let err = otlp_config::ConfigFile::parse("c.yaml", "a: [").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("config file 'c.yaml' is not valid YAML at line "),
        "{err}"
    );
}
