#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `explain-config` shows what is in force: header values except the secret
//! ones, and for a broken config the problems instead of stand-in values.

use otlp_config::{EXIT_INVALID, Env, Flags, OutputFormat, REDACTED, explain_config};

#[test]
fn explain_shows_plain_header_values_and_redacts_only_secret_ones() {
    let env = Env::from_map([(
        "OTEL_EXPORTER_OTLP_HEADERS",
        "x-tenant=acme,authorization=Bearer%20s3cret,x-auth-token=t0k3n,dd-api-key=k3y,cookie=c00kie,x-client-secret=sh,x-scope-orgid=team-a",
    )]);
    let out = explain_config(None, env.clone(), Flags::new(), OutputFormat::Text);
    let text = out.text;
    for secret in ["s3cret", "t0k3n", "k3y", "c00kie", "=sh"] {
        assert!(!text.contains(secret), "{secret} leaked:\n{text}");
    }
    let headers = text.lines().find(|l| l.starts_with("headers ")).unwrap();
    assert!(headers.contains("x-tenant=acme"), "{headers}");
    assert!(headers.contains("x-scope-orgid=team-a"), "{headers}");
    assert!(
        headers.contains(&format!("authorization={REDACTED}")),
        "{headers}"
    );
    let traces = text
        .lines()
        .find(|l| l.trim_start().starts_with("traces "))
        .unwrap();
    assert!(traces.contains("x-tenant=acme"), "{traces}");
    assert!(
        traces.contains(&format!("dd-api-key={REDACTED}")),
        "{traces}"
    );
    let json = explain_config(None, env, Flags::new(), OutputFormat::Json).text;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let headers = v["signals"][0]["headers"].as_array().unwrap();
    assert!(
        headers.contains(&serde_json::json!({"name": "x-tenant", "value": "acme"})),
        "{json}"
    );
    assert!(!json.contains("s3cret"), "{json}");
}

#[test]
fn secret_header_names_are_recognised_by_word_not_by_accident() {
    for name in [
        "Authorization",
        "proxy-authorization",
        "set-cookie",
        "x-api-key",
        "api-key",
        "signoz_ingestion_key",
        "lightstep-access-token",
        "x-password",
        "x-honeycomb-team",
    ] {
        assert!(otlp_config::is_secret_header(name), "{name}");
    }
    for name in [
        "x-tenant",
        "x-scope-orgid",
        "x-monkey-business",
        "content-type",
    ] {
        assert!(!otlp_config::is_secret_header(name), "{name}");
    }
}

#[test]
fn explain_with_errors_prints_the_problems_instead_of_per_signal_lines() {
    let env = Env::from_map([("OTEL_EXPORTER_OTLP_PROTOCOL", "grcp")]);
    let flags = Flags::new().set("batch.max_batch_size", "0");
    let out = explain_config(None, env.clone(), flags.clone(), OutputFormat::Text);
    assert_eq!(out.exit_code, EXIT_INVALID, "{}", out.text);
    assert!(
        out.text
            .contains("env OTEL_EXPORTER_OTLP_PROTOCOL: error: protocol: unknown value 'grcp'"),
        "{}",
        out.text
    );
    assert!(
        out.text.contains("batch.max_batch_size is 0"),
        "{}",
        out.text
    );
    assert!(
        out.text
            .contains("the configuration is invalid (2 error(s)"),
        "{}",
        out.text
    );
    assert!(
        !out.text.contains("via grpc (from default)"),
        "{}",
        out.text
    );
    assert!(!out.text.contains("resolved per signal"), "{}", out.text);
    assert!(!out.text.contains("localhost:4317"), "{}", out.text);
    let out = explain_config(None, env, flags, OutputFormat::Json);
    assert_eq!(out.exit_code, EXIT_INVALID);
    let v: serde_json::Value = serde_json::from_str(&out.text).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["signals"], serde_json::json!([]));
    assert_eq!(v["problems"].as_array().unwrap().len(), 2, "{}", out.text);
}

#[test]
fn explain_shows_the_per_attempt_timeout_and_the_throttle_cap() {
    let env = Env::from_map([("OTEL_EXPORTER_OTLP_TIMEOUT", "300")]);
    let text = explain_config(None, env, Flags::new(), OutputFormat::Text).text;
    assert!(
        text.contains(
            "server throttle hints (gRPC RetryInfo, HTTP Retry-After) are obeyed up to 5m"
        ),
        "{text}"
    );
    let traces = text
        .lines()
        .find(|l| l.trim_start().starts_with("traces "))
        .unwrap();
    assert!(traces.contains("timeout 300ms per attempt"), "{traces}");
    let json = explain_config(None, Env::new(), Flags::new(), OutputFormat::Json).text;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["limits"]["max_throttle"], "5m");
}
