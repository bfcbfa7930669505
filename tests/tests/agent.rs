//! The `otlp-client run` agent as a process: hostile input to its receivers,
//! an upstream outage under steady load, `kill -9` with the disk queue, and
//! header secrets kept out of logs, `explain-config`, `diagnose` and errors.
//!
//! The agent forwards to the scriptable fault receiver. Fast mode (the
//! default) runs short versions (3 s outage, small load);
//! `OTLP_RELIABILITY_FULL=1` runs the 30 s outage and a larger crash load.
//!
//! Hostile input already covered per receiver in
//! `crates/otlp-transport/tests/receive_http.rs` and `receive_grpc.rs`
//! (malformed and truncated protobuf, wrong path / method / content type,
//! gzip bomb, oversized bodies, slow header trickle, connection limits) is
//! not repeated one by one here: this suite sends the same kinds of input to
//! the running agent, adds invalid UTF-8 (refused with 400), and checks that the process
//! survives all of it with flat memory and still delivers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::HashSet,
    io::Write,
    net::SocketAddr,
    process::Command,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use otlp_e2e::{
    Fault, FaultServer, Figures, Script,
    agent::{Agent, AgentConfig, post, read_status, rss_now, spans_with},
    client_binary, full_mode, peak_rss_bytes, record,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "Bearer s3cr3t-t0ken-e2e";
/// The agent's queue byte bound in these tests.
const QUEUE_BYTES: u64 = 8 << 20;
/// What the agent may use beyond its queue: runtime, code, buffers, receivers.
const FIXED_OVERHEAD: u64 = 96 << 20;

/// The suite's agent config: the defaults plus an authorization header
/// whose value must never show up anywhere.
fn config(upstream: String) -> AgentConfig {
    let mut cfg = AgentConfig::new(upstream);
    cfg.extra = format!("headers:\n  authorization: \"{SECRET}\"\n");
    cfg
}

/// Sums a counter family of the agent's `/metrics` by its `reason` label.
async fn counters(admin: SocketAddr, family: &str) -> Vec<(String, u64)> {
    let mut s = tokio::net::TcpStream::connect(admin).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&out);
    let mut by_reason: Vec<(String, u64)> = Vec::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with(family) && l.contains("traces"))
    {
        let reason = line
            .split("reason=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("-")
            .to_owned();
        let value = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0) as u64;
        match by_reason.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, v)) => *v += value,
            None => by_reason.push((reason, value)),
        }
    }
    by_reason.retain(|(_, v)| *v > 0);
    by_reason
}

fn gzip(data_len: usize) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..data_len >> 20 {
        enc.write_all(&chunk).unwrap();
    }
    enc.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_answers_hostile_input_with_the_right_status_and_survives() {
    let server = FaultServer::start(Script::accept()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(server.grpc_endpoint());
    let mut agent = Agent::start(&cfg, dir.path(), "hostile").unwrap();
    let a = agent.http;
    let pb = "application/x-protobuf";

    // Slow clients trickling headers hold connections, not the agent.
    let mut tricklers = Vec::new();
    for _ in 0..32 {
        let mut s = tokio::net::TcpStream::connect(a).await.unwrap();
        s.write_all(b"POST /v1/tr").await.unwrap();
        tricklers.push(s);
    }

    let mut checks: Vec<(&str, u16, Vec<u16>)> = Vec::new();
    let mut check = |name, got, want: &[u16]| checks.push((name, got, want.to_vec()));
    check(
        "malformed protobuf",
        post(a, "", pb, &[0x0a, 0xff, 0xff, 0xff]).await,
        &[400],
    );
    check(
        "wrong content type",
        post(a, "", "text/plain", b"hello").await,
        &[415],
    );
    // Truncated: the header promises 1000 bytes, 10 arrive, then the client hangs up.
    let truncated = {
        let mut s = tokio::net::TcpStream::connect(a).await.unwrap();
        s.write_all(
            b"POST /v1/traces HTTP/1.1\r\nhost: a\r\ncontent-type: application/x-protobuf\r\ncontent-length: 1000\r\n\r\n0123456789",
        )
        .await
        .unwrap();
        s.shutdown().await.unwrap();
        read_status(&mut s).await
    };
    check("truncated body", truncated, &[0, 400]);
    // 80 MiB of zeros in ~80 KiB: above the 64 MiB decompressed limit.
    let bomb = gzip(80 << 20);
    check(
        "gzip bomb",
        post(a, "content-encoding: gzip\r\n", pb, &bomb).await,
        &[413],
    );
    // Oversized, declared: 1 GiB announced.
    let oversized = {
        let mut s = tokio::net::TcpStream::connect(a).await.unwrap();
        s.write_all(
            b"POST /v1/traces HTTP/1.1\r\nhost: a\r\ncontent-type: application/x-protobuf\r\ncontent-length: 1073741824\r\n\r\n",
        )
        .await
        .unwrap();
        let _ = s.write_all(&vec![0u8; 64 << 10]).await;
        read_status(&mut s).await
    };
    check("oversized (declared 1 GiB)", oversized, &[413]);
    // Invalid UTF-8 in a protobuf string: validated before it is
    // acknowledged, so it never reaches a batch joined with others' data.
    let mut bad_utf8 = spans_with(1_000_000, 1, "NAME", 16);
    let at = bad_utf8.windows(4).position(|w| w == b"NAME").unwrap();
    bad_utf8[at..at + 4].copy_from_slice(&[0xff, 0xfe, 0xc0, 0x80]);
    check(
        "invalid UTF-8 in protobuf string",
        post(a, "", pb, &bad_utf8).await,
        &[400],
    );
    // Invalid UTF-8 in OTLP/JSON is a decode error.
    let mut json = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"X"}]}]}]}"#.to_vec();
    let x = json.iter().position(|&b| b == b'X').unwrap();
    json[x] = 0xff;
    check(
        "invalid UTF-8 in JSON",
        post(a, "", "application/json", &json).await,
        &[400],
    );
    check("empty protobuf", post(a, "", pb, &[]).await, &[200]);

    // Still serving: a valid request is accepted and delivered upstream.
    let ok = post(a, "", pb, &spans_with(1, 10, "ok", 16)).await;
    check("valid after all of it", ok, &[200]);
    assert!(
        server.wait_for_items(10, Duration::from_secs(10)).await,
        "{:?}",
        server.stats()
    );
    drop(tricklers);

    let rss = rss_now(agent.pid()).unwrap_or(0);
    let peak = peak_rss_bytes(agent.pid());
    assert!(agent.alive(), "agent died:\n{}", agent.logs());
    let wrong: Vec<_> = checks
        .iter()
        .filter(|(_, got, want)| !want.contains(got))
        .collect();
    record(&Figures {
        suite: "hostile",
        scenario: "agent_hostile_input".to_owned(),
        protocol: "http",
        expected: "400/413/415 as due, process survives, valid input delivered".to_owned(),
        sent: 10,
        delivered: server.stats().items_accepted,
        peak_rss_bytes: peak,
        cases: Some(checks.len() as u64),
        ..Figures::default()
    });
    assert!(wrong.is_empty(), "wrong statuses: {wrong:?}");
    // Memory stays flat: the bomb and the 1 GiB declaration were refused before buffering.
    assert!(
        rss < QUEUE_BYTES + FIXED_OVERHEAD,
        "rss {rss} after hostile input"
    );
    assert!(!agent.logs().contains("s3cr3t"), "secret in agent logs");
}

/// Posts `per_request` spans every `every` until `stop`; counts acknowledged
/// items and keeps their span ids.
fn load(
    addr: SocketAddr,
    per_request: u64,
    every: Duration,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<HashSet<u64>>>,
    attempted: Arc<AtomicU64>,
    limit: u64,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut next = 1u64;
        // Bounded in count (`limit` requests) and by the caller's stop flag.
        for _ in 0..limit {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let body = spans_with(next, per_request, "load", 16);
            attempted.fetch_add(per_request, Ordering::Relaxed);
            if post(addr, "", "application/x-protobuf", &body).await == 200 {
                let mut a = acked.lock().unwrap();
                a.extend(next..next + per_request);
            }
            next += per_request;
            tokio::time::sleep(every).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_outage_stays_within_queue_bound_and_delivers_after_recovery() {
    let outage = if full_mode() {
        Duration::from_secs(30)
    } else {
        Duration::from_secs(3)
    };
    let server = FaultServer::start(Script::accept()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(server.grpc_endpoint());
    let mut agent = Agent::start(&cfg, dir.path(), "outage").unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(HashSet::new()));
    let attempted = Arc::new(AtomicU64::new(0));
    let up_at = Instant::now() + outage;
    server.go_down(outage);
    let loader = load(
        agent.http,
        50,
        Duration::from_millis(20),
        stop.clone(),
        acked.clone(),
        attempted.clone(),
        100_000,
    );
    tokio::time::sleep(outage).await;
    stop.store(true, Ordering::Relaxed);
    loader.await.unwrap();
    let acked: HashSet<u64> = acked.lock().unwrap().clone();
    let n = acked.len() as u64;
    assert!(n > 0, "nothing acknowledged");
    // Wait (bounded) until every acknowledged item is delivered or counted failed / dropped.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut delivered_all = false;
    while Instant::now() < deadline {
        if server.stats().items_accepted >= n {
            delivered_all = true;
            break;
        }
        let settled: u64 = counters(agent.admin, "otlp_items_failed_total")
            .await
            .iter()
            .chain(&counters(agent.admin, "otlp_items_dropped_total").await)
            .map(|(_, v)| v)
            .sum();
        if server.stats().items_accepted + settled >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let recover = up_at.elapsed();
    // Items may have arrived between the two reads above.
    delivered_all |= server.stats().items_accepted >= n;
    let peak = peak_rss_bytes(agent.pid());
    let ids = server.span_ids();
    let missing = acked.iter().filter(|id| !ids.contains(id)).count() as u64;
    let fs = server.stats();
    let failed = counters(agent.admin, "otlp_items_failed_total").await;
    let dropped = counters(agent.admin, "otlp_items_dropped_total").await;
    let failed_n: u64 = failed.iter().map(|(_, v)| v).sum();
    let dropped_n: u64 = dropped.iter().map(|(_, v)| v).sum();
    // Lost = acknowledged, not delivered, and not accounted as failed or
    // dropped by the agent: what the design promises never happens.
    let lost = missing.saturating_sub(failed_n + dropped_n);
    record(&Figures {
        suite: "outage",
        scenario: format!("upstream_down_{}s", outage.as_secs()),
        protocol: "grpc",
        expected: format!(
            "queued items delivered after recovery; RSS within queue + overhead; refused at intake (503) {}; failed {failed:?}; dropped {dropped:?}",
            attempted.load(Ordering::Relaxed) - n
        ),
        sent: n,
        delivered: fs.items_accepted,
        lost,
        duplicated: fs.duplicate_spans,
        dropped_or_failed: failed_n + dropped_n,
        peak_rss_bytes: peak,
        recover_ms: Some(recover.as_millis() as u64),
        cases: None,
    });
    assert!(agent.alive(), "agent died:\n{}", agent.logs());
    // Exact accounting: every acknowledged item is delivered, or failed /
    // dropped and counted so.
    assert_eq!(
        fs.items_accepted + failed_n + dropped_n,
        n,
        "{fs:?}; agent failed {failed:?}, dropped {dropped:?}"
    );
    assert_eq!(lost, 0, "lost {lost} of {n}: {fs:?}");
    assert_eq!(fs.duplicate_spans, 0, "{fs:?}");
    assert!(dropped.is_empty(), "dropped {dropped:?}");
    // With backoff capped at 1 s, 100 retries outlast the 30 s outage: the
    // retry budget covers it, so nothing may fail.
    assert!(
        delivered_all && failed.is_empty(),
        "failed {failed:?}: {fs:?}"
    );
    let peak = peak.unwrap();
    assert!(
        peak < QUEUE_BYTES + FIXED_OVERHEAD,
        "peak rss {peak} beyond queue {QUEUE_BYTES} + overhead {FIXED_OVERHEAD}"
    );
    assert!(!agent.logs().contains("s3cr3t"), "secret in agent logs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_killed_with_sigkill_delivers_every_acknowledged_item_after_restart() {
    let target: u64 = if full_mode() { 20_000 } else { 1_000 };
    // Upstream refuses while the agent is loaded, so everything stays queued on disk.
    let server = FaultServer::start(Script::accept().then_always(Fault::Unavailable))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let queue_dir = dir.path().join("queue");
    let mut cfg = config(server.grpc_endpoint());
    cfg.persistent = Some(queue_dir);
    let mut agent = Agent::start(&cfg, dir.path(), "crash1").unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(HashSet::new()));
    let attempted = Arc::new(AtomicU64::new(0));
    let loader = load(
        agent.http,
        25,
        Duration::from_millis(2),
        stop.clone(),
        acked.clone(),
        attempted.clone(),
        1_000_000,
    );
    // Kill under load, once enough was acknowledged (bounded wait).
    let deadline = Instant::now() + Duration::from_secs(60);
    while (acked.lock().unwrap().len() as u64) < target && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    agent.kill9();
    let killed_at = Instant::now();
    stop.store(true, Ordering::Relaxed);
    loader.await.unwrap();
    let acked: HashSet<u64> = acked.lock().unwrap().clone();
    let n = acked.len() as u64;
    assert!(n >= target, "only {n} acknowledged before the deadline");

    server.set_script(Script::accept());
    let mut agent = Agent::start(&cfg, dir.path(), "crash2").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut lost = n;
    while Instant::now() < deadline {
        let ids = server.span_ids();
        lost = acked.iter().filter(|id| !ids.contains(id)).count() as u64;
        if lost == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let fs = server.stats();
    record(&Figures {
        suite: "crash",
        scenario: format!("sigkill_disk_queue_{target}"),
        protocol: "grpc",
        expected: "every acknowledged item delivered after restart (at-least-once)".to_owned(),
        sent: n,
        delivered: fs.unique_spans,
        lost,
        duplicated: fs.duplicate_spans,
        dropped_or_failed: 0,
        peak_rss_bytes: peak_rss_bytes(agent.pid()),
        recover_ms: Some(killed_at.elapsed().as_millis() as u64),
        cases: None,
    });
    assert!(agent.alive(), "restarted agent died:\n{}", agent.logs());
    assert_eq!(lost, 0, "{lost} of {n} acknowledged items lost: {fs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_secrets_never_appear_in_explain_config_diagnose_or_errors() {
    let bin = client_binary().unwrap();
    // A server that refuses: the error path prints what failed.
    let server = FaultServer::start(Script::accept().then_always(Fault::BadRequest))
        .await
        .unwrap();
    let headers = format!("authorization={}", SECRET.replace(' ', "%20"));
    let mut outputs = Vec::new();
    for args in [
        vec!["explain-config".to_owned()],
        vec![
            "explain-config".to_owned(),
            "--format".to_owned(),
            "json".to_owned(),
        ],
        vec![
            "diagnose".to_owned(),
            "--timeout".to_owned(),
            "2s".to_owned(),
        ],
        vec!["send".to_owned(), "--count".to_owned(), "5".to_owned()],
    ] {
        let out = tokio::task::spawn_blocking({
            let bin = bin.clone();
            let endpoint = server.grpc_endpoint();
            let headers = headers.clone();
            move || {
                Command::new(bin)
                    .args(&args)
                    .args(["--endpoint", &endpoint])
                    .env("OTEL_EXPORTER_OTLP_HEADERS", headers)
                    .env("OTLP_LOG", "debug")
                    .output()
                    .unwrap()
            }
        })
        .await
        .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        outputs.push(text);
    }
    for (i, t) in outputs.iter().enumerate() {
        assert!(!t.contains("s3cr3t"), "secret in output {i}:\n{t}");
    }
    // The commands really ran against the server (the send was refused with 400).
    assert!(server.stats().requests > 0);
    // The exporter's own error text for a refused export.
    let exporter = otlp_transport::Exporter::builder()
        .with_endpoint(server.grpc_endpoint())
        .with_protocol(otlp_transport::Protocol::Grpc)
        .with_header("authorization", SECRET)
        .build()
        .unwrap();
    let batch = otlp_core::Batch::from_encoded(
        otlp_core::Signal::Traces,
        bytes::Bytes::from(spans_with(1, 1, "x", 16)),
    )
    .unwrap();
    let err = tower::ServiceExt::oneshot(exporter, batch)
        .await
        .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(!text.contains("s3cr3t"), "secret in error: {text}");
    assert!(text.contains("400") || text.contains("invalid"), "{text}");
}
