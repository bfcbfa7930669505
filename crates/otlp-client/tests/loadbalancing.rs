#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `loadbalancing:` end to end: `otlp-client send` -> the agent -> three
//! sinks on distinct 127.0.0.1 ports. Every trace's spans land on exactly one
//! sink with exact counts; a sink killed mid-run has its share delivered by
//! the others. Real processes, bounded waits.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

mod common;

use common::*;

/// (trace id, span id) of every span in a sink's OTLP/JSON capture.
fn spans_in(path: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(text) = std::fs::read_to_string(path) else {
        return out;
    };
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for r in v["resourceSpans"].as_array().into_iter().flatten() {
            for s in r["scopeSpans"].as_array().into_iter().flatten() {
                for sp in s["spans"].as_array().into_iter().flatten() {
                    out.push((
                        sp["traceId"].as_str().unwrap_or_default().to_owned(),
                        sp["spanId"].as_str().unwrap_or_default().to_owned(),
                    ));
                }
            }
        }
    }
    out
}

fn sinks(dir: &Path) -> (Vec<Sink>, Vec<PathBuf>) {
    let paths: Vec<PathBuf> = (0..3).map(|i| dir.join(format!("sink{i}.jsonl"))).collect();
    let sinks = paths
        .iter()
        .map(|p| Sink::start_with(&["--output".as_ref(), p.as_os_str()]))
        .collect();
    (sinks, paths)
}

/// The agent balancing by trace id over `sinks` (static list).
fn agent(dir: &Path, sinks: &[Sink]) -> AgentProc {
    let list: Vec<String> = sinks.iter().map(|s| format!("http://{}", s.grpc)).collect();
    start_agent(
        &sinks[0].grpc,
        dir,
        &format!(
            "loadbalancing:\n  routing_key: trace_id\n  resolver: static\n  endpoints: [{}]\n",
            list.join(", ")
        ),
    )
}

/// Waits (up to 30 s) until the captures hold `want` distinct spans.
fn wait_distinct(paths: &[PathBuf], want: usize) -> BTreeSet<(String, String)> {
    let started = Instant::now();
    loop {
        let all: BTreeSet<_> = paths.iter().flat_map(|p| spans_in(p)).collect();
        if all.len() >= want || started.elapsed() > Duration::from_secs(30) {
            return all;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn every_trace_lands_on_exactly_one_sink_with_exact_counts() {
    let dir = tempfile::tempdir().unwrap();
    let (sinks, paths) = sinks(dir.path());
    let agent = agent(dir.path(), &sinks);
    // `send` makes traces of 10 spans each.
    let out = run(
        bin().args([
            "send",
            "--endpoint",
            &format!("http://{}", agent.grpc),
            "--count",
            "3000",
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for s in &sinks {
        // Exact: nothing lost, nothing twice, over the three sinks.
        let _ = s.stats();
    }
    let all = wait_distinct(&paths, 3000);
    assert_eq!(all.len(), 3000);
    let mut owner: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_trace: BTreeMap<String, usize> = BTreeMap::new();
    let mut total = 0;
    for (i, p) in paths.iter().enumerate() {
        let spans = spans_in(p);
        assert!(spans.len() > 300, "sink {i} got {} spans", spans.len());
        total += spans.len();
        for (trace, _) in spans {
            let first = *owner.entry(trace.clone()).or_insert(i);
            assert_eq!(first, i, "trace {trace} on sinks {first} and {i}");
            *per_trace.entry(trace).or_default() += 1;
        }
    }
    assert_eq!(total, 3000, "a span arrived twice");
    assert_eq!(per_trace.len(), 300);
    assert!(per_trace.values().all(|&n| n == 10), "{per_trace:?}");
    let spans: u64 = sinks
        .iter()
        .map(|s| s.stats()["spans"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(spans, 3000);
    drop(agent);
}

#[test]
fn a_sink_killed_mid_run_has_its_share_delivered_by_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let (mut sinks, paths) = sinks(dir.path());
    let agent = agent(dir.path(), &sinks);
    let mut send = Proc(
        bin()
            .args([
                "send",
                "--endpoint",
                &format!("http://{}", agent.grpc),
                "--count",
                "6000",
                "--rate",
                "2000",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Kill sink 1 once it has received part of its share.
    let started = Instant::now();
    while spans_in(&paths[1]).len() < 200 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "sink 1 got nothing"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(sinks.remove(1));
    let before_kill = spans_in(&paths[1]).len();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = send.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "send did not finish"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "send: {status:?}");
    // Nothing lost: every span arrived, at least once, on some sink.
    let all = wait_distinct(&paths, 6000);
    assert_eq!(all.len(), 6000, "spans lost after a sink died");
    // The survivors took the dead sink's share after it died.
    let survivors: usize = [&paths[0], &paths[2]]
        .iter()
        .map(|p| spans_in(p).len())
        .sum();
    assert!(
        survivors + before_kill >= 6000,
        "survivors {survivors} + dead sink {before_kill} < 6000"
    );
    assert!(
        before_kill < 3000,
        "sink 1 got {before_kill} before it was killed"
    );
    drop(agent);
}
