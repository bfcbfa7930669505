#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The environment variables of the OpenTelemetry spec (and the binary's own
//! `OTLP_LOG`) that the config reader must know: none is reported unknown or
//! silently ignored.

use otlp_config::{Env, Flags, OutputFormat, Severity, Sources, Temporality, explain_config};

fn resolve(vars: &[(&str, &str)]) -> otlp_config::Resolved {
    Sources::new()
        .with_env(Env::from_map(vars.iter().copied()))
        .resolve()
}

#[test]
fn otlp_log_is_the_binarys_variable_and_not_reported_unknown() {
    let r = resolve(&[("OTLP_LOG", "debug")]);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    // A real typo still is.
    let r = resolve(&[("OTLP_LOGG", "debug")]);
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert!(r.problems[0].message.contains("unknown variable OTLP_LOGG"));
}

#[test]
fn metrics_temporality_preference_is_accepted_case_insensitively_and_validated() {
    const VAR: &str = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE";
    for (value, want) in [
        ("cumulative", Temporality::Cumulative),
        ("Delta", Temporality::Delta),
        ("LOWMEMORY", Temporality::LowMemory),
    ] {
        let r = resolve(&[(VAR, value)]);
        assert!(r.problems.is_empty(), "{value}: {:?}", r.problems);
        assert_eq!(r.config.metrics_temporality, want, "{value}");
    }
    assert_eq!(
        resolve(&[]).config.metrics_temporality,
        Temporality::Cumulative
    );
    let r = resolve(&[(VAR, "deltas")]);
    let e = r.errors().next().unwrap();
    assert_eq!(e.path, "metrics.temporality_preference");
    assert!(
        e.hint.as_deref().unwrap().contains("did you mean 'delta'"),
        "{e}"
    );
    // Shown with where it applies.
    let env = Env::from_map([(VAR, "delta")]);
    let text = explain_config(None, env, Flags::new(), OutputFormat::Text).text;
    let line = text
        .lines()
        .find(|l| l.starts_with("metrics.temporality_preference"))
        .unwrap();
    assert!(line.contains("= delta"), "{line}");
    assert!(line.contains("no effect on an agent"), "{line}");
    assert!(line.contains(&format!("(env {VAR})")), "{line}");
}

#[test]
fn service_name_wins_and_resource_attributes_are_percent_decoded_with_bad_entries_warned() {
    let r = resolve(&[
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "service.name=from-attrs,deployment.environment=prod%20eu,broken,team=a%2Cb",
        ),
        ("OTEL_SERVICE_NAME", "checkout"),
    ]);
    assert!(r.is_valid(), "{:?}", r.problems);
    assert_eq!(
        r.config.resource,
        [
            ("service.name", "checkout"),
            ("deployment.environment", "prod eu"),
            ("team", "a,b"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    let p = &r.problems[0];
    assert_eq!(p.severity, Severity::Warning);
    assert!(
        p.message.contains("'broken'") && p.message.contains("ignored"),
        "{p}"
    );
    // service.name from the attributes alone applies too.
    let r = resolve(&[("OTEL_RESOURCE_ATTRIBUTES", "service.name=billing")]);
    assert_eq!(
        r.config.resource,
        [("service.name".to_owned(), "billing".to_owned())]
    );
    assert!(resolve(&[]).config.resource.is_empty());
}
