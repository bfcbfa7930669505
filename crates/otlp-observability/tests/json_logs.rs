#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `init_logging` with JSON output writes one `jq`-readable object per line
//! to the log file and feeds the ring. It installs the global subscriber, so
//! it has this test binary to itself.

use otlp_observability::{LogFormat, LogOptions, LogRing, ObservabilityError, init_logging};

#[test]
fn json_logs_go_to_the_file_one_object_per_line_and_into_the_ring() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.log");
    let ring = LogRing::new(8, 128);
    init_logging(LogOptions {
        format: LogFormat::Json,
        filter: Some("info".to_owned()),
        file: Some(path.clone()),
        ring: Some(ring.clone()),
    })
    .unwrap();
    tracing::error!(endpoint = "http://collector:4317", "export failed");
    tracing::info!("started");
    tracing::debug!("filtered out");

    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0]["level"], "ERROR");
    assert_eq!(lines[0]["message"], "export failed");
    assert_eq!(lines[0]["endpoint"], "http://collector:4317");
    assert_eq!(lines[1]["message"], "started");
    assert_eq!(ring.analysis().total, 2);

    let again = init_logging(LogOptions::default()).unwrap_err();
    assert!(matches!(
        again,
        ObservabilityError::LoggingAlreadyInitialised
    ));
}
