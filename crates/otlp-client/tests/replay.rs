#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `send --replay FILE`: a capture written by `sink --output` goes back
//! through the exporter, queue and retries to another sink, item for item.
//! Real processes on 127.0.0.1, bounded waits.

use std::{collections::BTreeMap, path::Path, time::Duration};

mod common;

use common::*;

/// The items of each signal in an OTLP/JSON lines file, counted from its JSON.
fn items_in(path: &Path) -> BTreeMap<&'static str, u64> {
    let mut out = BTreeMap::new();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for (key, scopes, items, signal) in [
            ("resourceSpans", "scopeSpans", "spans", "traces"),
            ("resourceMetrics", "scopeMetrics", "metrics", "metrics"),
            ("resourceLogs", "scopeLogs", "logRecords", "logs"),
        ] {
            for r in v[key].as_array().into_iter().flatten() {
                for s in r[scopes].as_array().into_iter().flatten() {
                    let n = s[items].as_array().map_or(0, Vec::len) as u64;
                    *out.entry(signal).or_default() += n;
                }
            }
        }
    }
    out
}

/// `send` all signals into a sink with `--output`; returns the capture.
fn capture(dir: &Path, count: &str) -> std::path::PathBuf {
    let path = dir.join("capture.jsonl");
    let mut sink = Sink::start_with(&[
        "--expect".as_ref(),
        "90".as_ref(),
        "--output".as_ref(),
        path.as_os_str(),
    ]);
    let out = run(
        bin().args([
            "send",
            "--endpoint",
            &format!("http://{}", sink.grpc),
            "--signal",
            "all",
            "--count",
            count,
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    sink.wait_exit();
    path
}

#[test]
fn a_sink_capture_replays_item_for_item_into_another_sink() {
    let dir = tempfile::tempdir().unwrap();
    let first = capture(dir.path(), "30");
    let recorded = items_in(&first);
    assert_eq!(recorded.values().sum::<u64>(), 90, "{recorded:?}");

    let second = dir.path().join("replayed.jsonl");
    let sink = Sink::start_with(&["--output".as_ref(), second.as_os_str()]);
    let endpoint = format!("http://{}", sink.http);
    let out = run(
        bin().args([
            "send",
            "--endpoint",
            &endpoint,
            "--protocol",
            "http/protobuf",
            "--replay",
            first.to_str().unwrap(),
            "--format",
            "json",
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["generated"], 90, "{report}");
    assert_eq!(report["sent"], 90, "{report}");
    assert_eq!(
        report["signals"],
        serde_json::json!(["traces", "metrics", "logs"])
    );
    assert_eq!(
        report["per_signal"]["logs"]["sent"], recorded["logs"],
        "{report}"
    );
    let stats = sink.wait_for((30, 30, 30));
    assert_eq!(
        (
            &stats["spans"],
            &stats["data_points"],
            &stats["log_records"]
        ),
        (&30.into(), &30.into(), &30.into()),
        "{stats}"
    );
    // The data is sent as recorded: the same spans, metrics and records, and
    // the same resource (not the load generator's own).
    let replayed_items = items_in(&second);
    assert_eq!(replayed_items, recorded);
    let resource = |path: &Path| {
        let line = std::fs::read_to_string(path).unwrap();
        let v: serde_json::Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
        v.as_object().unwrap().values().next().unwrap()[0]["resource"].clone()
    };
    assert_eq!(resource(&first), resource(&second));
}

#[test]
fn a_malformed_line_stops_the_replay_with_its_line_number_after_sending_what_came_before() {
    let dir = tempfile::tempdir().unwrap();
    let first = capture(dir.path(), "30");
    let lines: Vec<String> = std::fs::read_to_string(&first)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        format!("{}\n{{\"resourceSpans\": [{{]}}\n{}\n", lines[0], lines[1]),
    )
    .unwrap();
    let sink = Sink::start();
    let out = run(
        bin().args([
            "send",
            "--endpoint",
            &format!("http://{}", sink.grpc),
            "--replay",
            bad.to_str().unwrap(),
            "--format",
            "json",
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.jsonl:2: "), "{stderr}");
    assert!(stderr.contains("after 1 requests"), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["sent"], report["generated"], "{report}");
    assert!(report["sent"].as_u64().unwrap() > 0, "{report}");

    // Unreadable file and an empty one: usage errors, nothing sent.
    for (path, msg) in [
        (dir.path().join("missing.jsonl"), "cannot read"),
        (dir.path().join("empty.jsonl"), "holds no export request"),
    ] {
        if msg.contains("holds") {
            std::fs::write(&path, "\n").unwrap();
        }
        let out = run(
            bin().args([
                "send",
                "--endpoint",
                &format!("http://{}", sink.grpc),
                "--replay",
                path.to_str().unwrap(),
            ]),
            Duration::from_secs(60),
        );
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(text(&out).contains(msg), "{}", text(&out));
    }
    // --replay and generated load do not mix.
    let out = run(
        bin().args(["send", "--replay", bad.to_str().unwrap(), "--count", "3"]),
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}
