#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]
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
use otlp_test_support::DnsServer;

/// (trace id, span id) of every span in a sink's OTLP/JSON capture.
fn spans_in(path: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(text) = std::fs::read_to_string(path) else {
        return out;
    };
    // Only whole lines: the sink may be writing the last one.
    for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
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
    send_traces(&agent, "3000");
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
    // Per-backend metrics: one series per sink, adding up to what arrived.
    let (status, metrics) = http_get(&agent.admin, "/metrics");
    assert_eq!(status, 200);
    let mut backend_sent = 0;
    for (i, s) in sinks.iter().enumerate() {
        let label = format!("{{signal=\"traces\",endpoint=\"http://{}\"}}", s.grpc);
        let sent = metric(&metrics, &format!("otlp_backend_items_sent_total{label}"));
        assert_eq!(
            sent,
            spans_in(&paths[i]).len() as f64,
            "sink {i}:\n{metrics}"
        );
        backend_sent += sent as usize;
        assert_eq!(metric(&metrics, &format!("otlp_backend_up{label}")), 1.0);
        assert_eq!(
            metric(&metrics, &format!("otlp_backend_in_flight_items{label}")),
            0.0
        );
    }
    assert_eq!(backend_sent, 3000);
    assert_eq!(
        metric(&metrics, "otlp_items_duplicated_total{signal=\"traces\"}"),
        0.0
    );
    drop(agent);
}

/// The value of the series `name_and_labels` in a Prometheus text scrape.
fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name_and_labels} missing from:\n{text}"))
}

/// `explain-config` lists a static backend set per signal; `diagnose` lists
/// it too (and, with DNS, resolves the name once: see the DNS test).
#[test]
fn explain_config_and_diagnose_show_the_static_backend_set() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("lb.yaml");
    std::fs::write(
        &config,
        "protocol: http/protobuf\nloadbalancing:\n  routing_key: service\n  endpoints: [http://gw-1:4318, http://gw-2:4318]\n",
    )
    .unwrap();
    let out = run(
        bin().arg("explain-config").arg("--config").arg(&config),
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let shown = text(&out);
    assert!(
        shown.contains("load balanced by service over 2 backends: http://gw-1:4318/v1/traces, http://gw-2:4318/v1/traces"),
        "{shown}"
    );
    assert!(shown.contains("http://gw-2:4318/v1/logs"), "{shown}");
    let out = run(
        bin()
            .args(["diagnose", "--timeout", "1s", "--config"])
            .arg(&config),
        Duration::from_secs(30),
    );
    let shown = text(&out);
    assert!(
        shown.contains("load balancing (service over static list (http://gw-1:4318, http://gw-2:4318)): 2 backend(s), traces go to:\n  http://gw-1:4318/v1/traces\n  http://gw-2:4318/v1/traces"),
        "{shown}"
    );
}

#[test]
fn a_sink_killed_mid_run_has_its_share_delivered_by_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let (mut sinks, paths) = sinks(dir.path());
    let agent = agent(dir.path(), &sinks);
    let mut send = spawn_send(&agent, 6000, 2000);
    // Kill sink 1 once it has received part of its share.
    let started = Instant::now();
    while spans_in(&paths[1]).len() < 200 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "sink 1 got nothing"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let dead = sinks[1].grpc.clone();
    drop(sinks.remove(1));
    let before_kill = spans_in(&paths[1]).len();
    let status = send.wait_within(Duration::from_secs(60), "send");
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
    // The dead sink shows down; the survivors up.
    let (_, metrics) = http_get(&agent.admin, "/metrics");
    let up = |grpc: &str| {
        metric(
            &metrics,
            &format!("otlp_backend_up{{signal=\"traces\",endpoint=\"http://{grpc}\"}}"),
        )
    };
    assert_eq!(up(&dead), 0.0, "{metrics}");
    assert_eq!(up(&sinks[0].grpc), 1.0);
    assert_eq!(up(&sinks[1].grpc), 1.0);
    drop(agent);
}

/// A sink writing to `output`, listening for OTLP/gRPC on `grpc` (HTTP on
/// a free port of the same IP).
fn sink_at(grpc: &str, output: &Path) -> Sink {
    let ip = grpc.rsplit_once(':').map_or("127.0.0.1", |(ip, _)| ip);
    let sink = Sink::start_on(
        grpc,
        &format!("{ip}:0"),
        &["--output".as_ref(), output.as_os_str()],
    );
    assert_eq!(sink.grpc, grpc);
    sink
}

/// The agent balancing by trace id over what `gateways.test.` resolves to
/// at `dns` (gateways listening on `port`), refreshed every 200 ms;
/// `extra` is YAML before the `loadbalancing:` section.
fn dns_agent(upstream: &Sink, dir: &Path, dns: &DnsServer, port: &str, extra: &str) -> AgentProc {
    start_agent(
        &upstream.grpc,
        dir,
        &format!(
            "{extra}loadbalancing:\n  routing_key: trace_id\n  resolver: dns\n  dns:\n    hostname: gateways.test.\n    port: {port}\n    interval: 200ms\n    server: {}\n",
            dns.addr()
        ),
    )
}

/// `otlp-client send` of `count` items at `rate` a second, in the background.
fn spawn_send(agent: &AgentProc, count: usize, rate: u32) -> Proc {
    Proc(
        bin()
            .args(["send", "--endpoint", &format!("http://{}", agent.grpc)])
            .args(["--count", &count.to_string(), "--rate", &rate.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn send_traces(agent: &AgentProc, count: &str) {
    let out = run(
        bin().args([
            "send",
            "--endpoint",
            &format!("http://{}", agent.grpc),
            "--count",
            count,
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// Sinks on 127.0.0.1, .2 and .3 (one port) behind a DNS server on
/// 127.0.0.1 (Python dnslib): the agent balances over what the name
/// resolves to, and follows a changed answer.
#[test]
fn dns_resolver_balances_over_the_answer_and_follows_its_change() {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<PathBuf> = (0..3)
        .map(|i| dir.path().join(format!("sink{i}.jsonl")))
        .collect();
    let first = Sink::start_with(&["--output".as_ref(), paths[0].as_os_str()]);
    let port = first.grpc.rsplit_once(':').unwrap().1.to_owned();
    let _others: Vec<Sink> = (1..3)
        .map(|i| sink_at(&format!("127.0.0.{}:{port}", i + 1), &paths[i]))
        .collect();
    let records = dir.path().join("records");
    std::fs::write(&records, "127.0.0.1\n127.0.0.2\n127.0.0.3\n").unwrap();
    let dns = DnsServer::start(&records, Duration::from_secs(90));
    let agent = dns_agent(&first, dir.path(), &dns, &port, "");
    // `diagnose` resolves the name once and lists the backends.
    let out = run(
        bin()
            .args(["diagnose", "--timeout", "1s", "--config"])
            .arg(dir.path().join("agent.yaml")),
        Duration::from_secs(30),
    );
    let shown = text(&out);
    assert!(
        shown.contains(&format!("3 backend(s), traces go to:\n  http://127.0.0.1:{port}\n  http://127.0.0.2:{port}\n  http://127.0.0.3:{port}")),
        "{shown}"
    );
    send_traces(&agent, "3000");
    let all = wait_distinct(&paths, 3000);
    assert_eq!(all.len(), 3000);
    let counts = |p: &PathBuf| spans_in(p).len();
    let phase1: Vec<usize> = paths.iter().map(counts).collect();
    assert!(phase1.iter().all(|&n| n > 300), "{phase1:?}");
    assert_eq!(phase1.iter().sum::<usize>(), 3000, "{phase1:?}");

    // The third gateway leaves the answer: the next traces go to the other two.
    std::fs::write(&records, "127.0.0.1\n127.0.0.2\n").unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    send_traces(&agent, "3000");
    let all = wait_distinct(&paths, 6000);
    assert_eq!(all.len(), 6000);
    let phase2: Vec<usize> = paths.iter().map(counts).collect();
    assert_eq!(phase2[2], phase1[2], "the removed gateway still got spans");
    assert_eq!(phase2.iter().sum::<usize>(), 6000, "{phase2:?}");
    let mut owner: BTreeMap<String, usize> = BTreeMap::new();
    for (i, p) in paths.iter().enumerate() {
        for (trace, _) in spans_in(p) {
            let first = *owner.entry(trace.clone()).or_insert(i);
            assert_eq!(first, i, "trace {trace} on sinks {first} and {i}");
        }
    }
    // The removed gateway's series are gone from /metrics.
    let (_, metrics) = http_get(&agent.admin, "/metrics");
    assert!(
        metrics.contains(&format!("endpoint=\"http://127.0.0.1:{port}\"")),
        "{metrics}"
    );
    assert!(
        !metrics.contains(&format!("endpoint=\"http://127.0.0.3:{port}\"")),
        "{metrics}"
    );
    // With the DNS server gone, diagnose says the set cannot be resolved.
    drop(agent);
    drop(dns);
    let out = run(
        bin()
            .args(["diagnose", "--timeout", "1s", "--config"])
            .arg(dir.path().join("agent.yaml")),
        Duration::from_secs(30),
    );
    assert_ne!(out.status.code(), Some(0));
    let shown = text(&out);
    assert!(
        shown.contains("FAIL the backend set cannot be resolved")
            && shown.contains("gateways.test."),
        "{shown}"
    );
}

/// The official OpenTelemetry Python SDK sends traces of 1-20 spans through
/// the agent to three sinks: every trace lands whole on exactly one sink.
#[test]
fn python_sdk_traces_of_1_to_20_spans_each_land_whole_on_one_sink() {
    let dir = tempfile::tempdir().unwrap();
    let (sinks, paths) = sinks(dir.path());
    let agent = agent(dir.path(), &sinks);
    let out = run(
        std::process::Command::new(python())
            .arg(root().join("tests/python/lb_traces.py"))
            .args([&format!("http://{}", agent.grpc), "1000", "7"]),
        Duration::from_secs(120),
    );
    assert!(out.status.success(), "{}", text(&out));
    let made: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    let want = made["spans"].as_u64().unwrap() as usize;
    assert!(want > 1000, "{made}");
    let all = wait_distinct(&paths, want);
    assert_eq!(all.len(), want, "spans lost");
    let mut owner: BTreeMap<String, usize> = BTreeMap::new();
    let mut total = 0;
    for (i, p) in paths.iter().enumerate() {
        let spans = spans_in(p);
        assert!(
            spans.len() > want / 10,
            "sink {i} got {} of {want}",
            spans.len()
        );
        total += spans.len();
        for (trace, _) in spans {
            let first = *owner.entry(trace.clone()).or_insert(i);
            assert_eq!(first, i, "trace {trace} on sinks {first} and {i}");
        }
    }
    assert_eq!(total, want, "a span arrived twice");
    assert_eq!(owner.len(), 1000);
    drop(agent);
}

/// A gateway that accepts connections and never answers (bounded: the
/// thread holds what it accepts for at most `secs`).
fn stalled_gateway(secs: u64) -> (String, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    listener.set_nonblocking(true).unwrap();
    let handle = std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(secs);
        let mut held = Vec::new();
        while Instant::now() < end {
            match listener.accept() {
                Ok((s, _)) => held.push(s),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    (addr, handle)
}

/// A stalled gateway (it accepts and never answers) costs the others at most
/// its request timeout when it is found, then it is probed by one batch at
/// a time: the spans for the two live sinks never stop arriving for long
/// after that, and every span arrives once. (Before, every batch waited on
/// it again at the end of each cooldown.)
#[test]
fn a_stalled_gateway_does_not_hold_the_others_beyond_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<PathBuf> = (0..2)
        .map(|i| dir.path().join(format!("sink{i}.jsonl")))
        .collect();
    let sinks: Vec<Sink> = paths
        .iter()
        .map(|p| Sink::start_with(&["--output".as_ref(), p.as_os_str()]))
        .collect();
    let (stalled, _held) = stalled_gateway(60);
    let agent = start_agent(
        &sinks[0].grpc,
        dir.path(),
        &format!(
            "timeout: 2s\nloadbalancing:\n  routing_key: trace_id\n  endpoints: [http://{}, http://{}, http://{stalled}]\n",
            sinks[0].grpc, sinks[1].grpc
        ),
    );
    let total = 9000;
    let mut send = spawn_send(&agent, total, 1000);
    // Watch the live sinks' captures grow; note each pause of delivery.
    let size = |p: &PathBuf| std::fs::metadata(p).map_or(0, |m| m.len());
    let started = Instant::now();
    let mut last = (0, Instant::now());
    let mut pauses = Vec::new();
    let mut sent_done = false;
    loop {
        let now_size: u64 = paths.iter().map(size).sum();
        if now_size != last.0 {
            let gap = last.1.elapsed();
            if last.0 > 0 && gap >= Duration::from_millis(700) {
                pauses.push(gap);
            }
            last = (now_size, Instant::now());
        }
        if !sent_done && send.0.try_wait().unwrap().is_some() {
            sent_done = true;
        }
        if sent_done && wait_distinct_now(&paths) >= total {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "not delivered in 40 s: {} of {total}, pauses {pauses:?}",
            wait_distinct_now(&paths)
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    eprintln!(
        "delivery pauses of 700 ms or more: {pauses:?} in {:?}",
        started.elapsed()
    );
    // The first batches wait one timeout on it; after that, none.
    assert!(pauses.len() <= 1, "delivery paused {pauses:?}");
    assert!(
        pauses.iter().all(|p| *p < Duration::from_secs(4)),
        "delivery paused {pauses:?}"
    );
    let all: usize = paths.iter().map(|p| spans_in(p).len()).sum();
    assert_eq!(all, total, "a span lost or sent twice");
    drop(agent);
}

fn wait_distinct_now(paths: &[PathBuf]) -> usize {
    paths
        .iter()
        .flat_map(|p| spans_in(p))
        .collect::<BTreeSet<_>>()
        .len()
}

/// Deterministic pseudo-random numbers (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Writes `traces` traces of 1-20 spans as OTLP/JSON lines (50 traces a
/// request) for `send --replay`; returns every (trace id, span id).
fn replay_file(path: &Path, traces: usize, rng: &mut Rng) -> Vec<(String, String)> {
    let mut ids = Vec::new();
    let mut lines = String::new();
    for chunk in 0..traces.div_ceil(50) {
        let mut spans = Vec::new();
        for _ in 0..50.min(traces - chunk * 50) {
            let trace = format!("{:016x}{:016x}", rng.next(), rng.next());
            for _ in 0..=(rng.next() % 20) {
                let span = format!("{:016x}", rng.next());
                spans.push(serde_json::json!({
                    "traceId": trace, "spanId": span, "name": "op", "kind": 2,
                    "startTimeUnixNano": "1", "endTimeUnixNano": "2",
                }));
                ids.push((trace.clone(), span));
            }
        }
        let req = serde_json::json!({"resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "lb-replay"}}]},
            "scopeSpans": [{"scope": {"name": "lb"}, "spans": spans}],
        }]});
        lines.push_str(&req.to_string());
        lines.push('\n');
    }
    std::fs::write(path, lines).unwrap();
    ids
}

/// Waits (up to 10 s) until the agent's `/metrics` lists exactly `want`
/// as its traces backends: the resolved set changed.
fn wait_backends(agent: &AgentProc, want: &[String]) {
    let started = Instant::now();
    loop {
        let (_, metrics) = http_get(&agent.admin, "/metrics");
        let have: BTreeSet<String> = metrics
            .lines()
            .filter_map(|l| l.strip_prefix("otlp_backend_up{signal=\"traces\",endpoint=\""))
            .filter_map(|l| l.split_once('"').map(|(e, _)| e.to_owned()))
            .collect();
        if have == want.iter().cloned().collect() {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "backends {have:?}, want {want:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The scale test: 10,000 traces of 1-20 spans (5,000 from the
/// Python SDK, 5,000 replayed by `otlp-client send`) through the agent to
/// sinks behind a DNS name whose answer changes under load (a 4th gateway
/// joins, one leaves), and one sink killed mid-run. Nothing is lost; traces
/// sent after a change follow it (none reach the gateway that left, some
/// reach the new one, the dead sink's share reaches the others); a trace on
/// two sinks is one moved during a change, and their share is reported.
#[test]
fn ten_thousand_traces_survive_dns_changes_and_a_killed_sink() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<PathBuf> = (0..4)
        .map(|i| dir.path().join(format!("sink{i}.jsonl")))
        .collect();
    let first = Sink::start_with(&["--output".as_ref(), paths[0].as_os_str()]);
    let port = first.grpc.rsplit_once(':').unwrap().1.to_owned();
    let mut others: Vec<Option<Sink>> = (1..4)
        .map(|i| Some(sink_at(&format!("127.0.0.{}:{port}", i + 1), &paths[i])))
        .collect();
    let url = |i: usize| format!("http://127.0.0.{}:{port}", i + 1);
    let records = dir.path().join("records");
    std::fs::write(&records, "127.0.0.1\n127.0.0.2\n127.0.0.3\n").unwrap();
    let dns = DnsServer::start(&records, Duration::from_secs(120));
    let agent = dns_agent(&first, dir.path(), &dns, &port, "timeout: 2s\n");
    wait_backends(&agent, &[url(0), url(1), url(2)]);
    let mut rng = Rng(22);
    let chunks: Vec<(PathBuf, Vec<(String, String)>)> = (0..4)
        .map(|c| {
            let p = dir.path().join(format!("replay{c}.jsonl"));
            let ids = replay_file(&p, 1250, &mut rng);
            (p, ids)
        })
        .collect();
    let replay = |c: usize| {
        let out = run(
            bin()
                .args([
                    "send",
                    "--endpoint",
                    &format!("http://{}", agent.grpc),
                    "--replay",
                ])
                .arg(&chunks[c].0),
            Duration::from_secs(60),
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    };
    // The Python SDK's 5,000 traces run under all of what follows.
    let mut python_sdk = Proc(
        std::process::Command::new(python())
            .arg(root().join("tests/python/lb_traces.py"))
            .args([&format!("http://{}", agent.grpc), "5000", "22"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    replay(0);
    // A 4th gateway joins.
    std::fs::write(&records, "127.0.0.1\n127.0.0.2\n127.0.0.3\n127.0.0.4\n").unwrap();
    wait_backends(&agent, &[url(0), url(1), url(2), url(3)]);
    replay(1);
    // The 2nd leaves the answer (it stays up: what it holds still lands).
    std::fs::write(&records, "127.0.0.1\n127.0.0.3\n127.0.0.4\n").unwrap();
    wait_backends(&agent, &[url(0), url(2), url(3)]);
    replay(2);
    // The 3rd dies while DNS still lists it.
    drop(others[1].take());
    replay(3);
    let python_status = python_sdk.wait_within(
        Duration::from_secs(90).saturating_sub(started.elapsed()),
        "the Python SDK",
    );
    assert!(python_status.success(), "python: {python_status:?}");
    let mut out = String::new();
    std::io::Read::read_to_string(python_sdk.0.stdout.as_mut().unwrap(), &mut out).unwrap();
    let made: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let python_spans = made["spans"].as_u64().unwrap() as usize;
    let replay_spans: usize = chunks.iter().map(|(_, ids)| ids.len()).sum();
    let want = python_spans + replay_spans;

    // Nothing lost.
    let all = wait_distinct(&paths, want);
    assert_eq!(all.len(), want, "spans lost");
    for (c, (_, ids)) in chunks.iter().enumerate() {
        let missing = ids.iter().filter(|id| !all.contains(*id)).count();
        assert_eq!(missing, 0, "replay chunk {c}: {missing} spans lost");
    }
    // Where each trace landed.
    let mut sinks_of: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
    let mut received = 0;
    let per_sink: Vec<Vec<(String, String)>> = paths.iter().map(|p| spans_in(p)).collect();
    for (i, spans) in per_sink.iter().enumerate() {
        received += spans.len();
        for (trace, _) in spans {
            sinks_of.entry(trace.clone()).or_default().insert(i);
        }
    }
    assert_eq!(sinks_of.len(), 10_000);
    let traces_of =
        |c: usize| -> BTreeSet<&String> { chunks[c].1.iter().map(|(t, _)| t).collect() };
    let on = |i: usize, c: usize| {
        traces_of(c)
            .iter()
            .filter(|t| sinks_of[**t].contains(&i))
            .count()
    };
    // Sent after the change was in force: none to the gateway that left,
    // a share to the one that joined, none to the dead one after its death.
    assert_eq!(
        on(1, 2) + on(1, 3),
        0,
        "traces reached the gateway that left"
    );
    assert!(
        on(3, 1) > 100,
        "the new gateway got {} of 1250 traces",
        on(3, 1)
    );
    assert_eq!(on(2, 3), 0, "the dead sink got traces after its death");
    // A trace is on two sinks only when it moved during a change (its
    // spans were in batches on both sides of it, or a part was re-routed
    // from the sink that died).
    let moved = sinks_of.values().filter(|s| s.len() > 1).count();
    let share = moved as f64 / sinks_of.len() as f64;
    let counts: Vec<usize> = per_sink.iter().map(Vec::len).collect();
    eprintln!(
        "10,000 traces, {want} spans in {:?}: per sink {counts:?}; {moved} traces ({:.2}%) on two sinks (moved during a change); {} spans arrived twice",
        started.elapsed(),
        share * 100.0,
        received - want
    );
    assert!(share < 0.10, "{moved} traces on two sinks");
    drop(agent);
    drop(dns);
}

/// `diagnose` probes each backend of the set (DNS, TCP, TLS, OTLP probe, as
/// for one endpoint): with a live sink and a closed port it names the closed
/// one as failing, in text and JSON, and exits 1; with the live one alone, 0.
#[test]
fn diagnose_probes_each_backend_and_fails_naming_the_one_that_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let live = Sink::start();
    let closed = format!("http://{}", closed_port());
    let live_url = format!("http://{}", live.grpc);
    let config = dir.path().join("lb.yaml");
    let write = |endpoints: &str| {
        std::fs::write(
            &config,
            format!("protocol: grpc\nloadbalancing:\n  routing_key: trace_id\n  endpoints: [{endpoints}]\n"),
        )
        .unwrap();
    };
    let diagnose = |format: &str| {
        run(
            bin()
                .args([
                    "diagnose",
                    "--timeout",
                    "2s",
                    "--format",
                    format,
                    "--config",
                ])
                .arg(&config),
            Duration::from_secs(30),
        )
    };
    write(&format!("{live_url}, {closed}"));
    let out = diagnose("json");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let lb = &v["loadbalancing"];
    assert_eq!(lb["backends"], serde_json::json!([live_url, closed]), "{v}");
    assert_eq!(lb["failing"], serde_json::json!([closed]), "{v}");
    assert_eq!(lb["healthy"], false, "{v}");
    assert_eq!(lb["not_probed"], 0, "{v}");
    let probes = lb["probes"].as_array().unwrap();
    assert_eq!(probes.len(), 2, "{v}");
    let verdict = |p: &serde_json::Value, kind: &str| -> Vec<String> {
        p["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["kind"] == kind)
            .map(|s| s["verdict"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(probes[0]["endpoint"], live_url.as_str());
    assert_eq!(probes[0]["healthy"], true, "{v}");
    assert_eq!(verdict(&probes[0], "otlp_probe"), ["pass"], "{v}");
    assert_eq!(probes[1]["endpoint"], closed.as_str());
    assert_eq!(probes[1]["healthy"], false, "{v}");
    assert_eq!(verdict(&probes[1], "tcp"), ["fail"], "{v}");
    assert_eq!(verdict(&probes[1], "otlp_probe"), ["skipped"], "{v}");
    // The text names both, in the main diagnosis's step style, and the verdict.
    let out = diagnose("text");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let shown = text(&out);
    for want in [
        format!("backend 1 of 2: diagnosis of {live_url} (grpc)"),
        format!("backend 2 of 2: diagnosis of {closed} (grpc)"),
        "[PASS] otlp".to_owned(),
        "[FAIL] tcp".to_owned(),
        format!("load balancing result: FAIL 1 of 2 probed backend(s) failing: {closed}"),
    ] {
        assert!(shown.contains(&want), "{want:?} missing from:\n{shown}");
    }
    // A set larger than the 16 probed: the rest are counted, not probed.
    let mut closed_ports = BTreeSet::new();
    while closed_ports.len() < 16 {
        closed_ports.insert(closed_port().port());
    }
    let many: Vec<String> = std::iter::once(live_url.clone())
        .chain(closed_ports.iter().map(|p| format!("http://127.0.0.1:{p}")))
        .collect();
    write(&many.join(", "));
    let out = diagnose("json");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let lb = &v["loadbalancing"];
    assert_eq!(lb["probes"].as_array().unwrap().len(), 16, "{v}");
    assert_eq!(lb["not_probed"], 1, "{v}");
    assert_eq!(lb["failing"].as_array().unwrap().len(), 15, "{v}");
    // The live backend alone: healthy, exit 0.
    write(&live_url);
    let out = diagnose("text");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("load balancing result: every probed backend is healthy"),
        "{}",
        text(&out)
    );
}
