#![cfg(feature = "admin")]
#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Issue 16 case 5: idle connections that fill the admin server's connection
//! limit, re-opened as soon as they close, must not starve liveness probes
//! that open a fresh connection each (as the kubelet does).
//!
//! Alone in its own test binary: it measures latencies and would be disturbed
//! by (and disturb) other tests running beside it.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use otlp_observability::{AdminServer, AdminState, HealthChecker, SelfMetrics};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::oneshot,
};

/// The kubelet's probe timeout in the report.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
const PROBES: usize = 20;
/// Upper bound on the whole attack, whatever happens.
const ATTACK_LIMIT: Duration = Duration::from_secs(60);

/// Holds one idle connection (sends nothing) until the server closes it,
/// then opens the next one at once, until `stop` or the attack limit.
async fn idle_attacker(addr: SocketAddr, stop: Arc<AtomicBool>, open: Arc<AtomicUsize>) {
    let end = Instant::now() + ATTACK_LIMIT;
    let mut first = true;
    while !stop.load(Ordering::Relaxed) && Instant::now() < end {
        let Ok(Ok(mut stream)) =
            tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(addr)).await
        else {
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        };
        if first {
            open.fetch_add(1, Ordering::Relaxed);
            first = false;
        }
        let mut buf = [0u8; 64];
        // Returns when the server closes the connection (EOF or reset); the
        // timeout only lets the loop notice `stop`.
        loop {
            match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await {
                Err(_) if stop.load(Ordering::Relaxed) || Instant::now() >= end => return,
                Err(_) => {}
                Ok(Ok(0) | Err(_)) => break,
                Ok(Ok(_)) => {}
            }
        }
    }
}

/// One probe on a fresh connection: the status and how long it took.
async fn probe(addr: SocketAddr) -> Result<(u16, Duration), String> {
    let start = Instant::now();
    let answer = tokio::time::timeout(PROBE_TIMEOUT, async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        stream
            .write_all(b"GET /health/live HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .await
            .map_err(|e| format!("read: {e}"))?;
        let raw = String::from_utf8_lossy(&raw);
        raw.split(' ')
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| format!("no HTTP status in {raw:?}"))
    })
    .await
    .map_err(|_| format!("timed out after {PROBE_TIMEOUT:?}"))??;
    Ok((answer, start.elapsed()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn liveness_probes_answer_while_idle_connections_fill_the_limit() {
    let state = AdminState::new(Arc::new(SelfMetrics::new()), HealthChecker::new());
    let bound = AdminServer::bind("127.0.0.1:0".parse().unwrap(), state)
        .await
        .unwrap();
    let addr = bound.local_addr();
    let (stop_server, server_stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        bound
            .serve(async {
                let _ = server_stopped.await;
            })
            .await
            .unwrap();
    });

    // The server is up and answers while nobody attacks.
    let (status, _) = probe(addr).await.unwrap();
    assert_eq!(status, 200, "/health/live without an attack");

    let n = AdminServer::DEFAULT_MAX_CONNECTIONS;
    let stop = Arc::new(AtomicBool::new(false));
    let open = Arc::new(AtomicUsize::new(0));
    let attackers: Vec<_> = (0..n)
        .map(|_| tokio::spawn(idle_attacker(addr, stop.clone(), open.clone())))
        .collect();
    let filled = Instant::now() + Duration::from_secs(10);
    while open.load(Ordering::Relaxed) < n {
        assert!(Instant::now() < filled, "attackers could not connect");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Let the server take them all in, so that every slot is held.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut latencies = Vec::with_capacity(PROBES);
    let mut failures = Vec::new();
    for i in 0..PROBES {
        match probe(addr).await {
            Ok((200, took)) => latencies.push(took),
            Ok((status, took)) => failures.push(format!("probe {i}: {status} after {took:?}")),
            Err(e) => failures.push(format!("probe {i}: {e}")),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    stop.store(true, Ordering::Relaxed);
    for a in attackers {
        tokio::time::timeout(Duration::from_secs(5), a)
            .await
            .expect("attackers stop")
            .unwrap();
    }
    let _ = stop_server.send(());
    tokio::time::timeout(Duration::from_secs(15), server)
        .await
        .expect("server stops within its grace")
        .unwrap();

    assert!(
        failures.is_empty(),
        "{} of {PROBES} probes failed under {n} idle connections: {failures:?}",
        failures.len()
    );
    latencies.sort();
    let p99 = latencies[(latencies.len() * 99).div_ceil(100) - 1];
    assert!(
        p99 < Duration::from_millis(100),
        "probe p99 {p99:?} >= 100 ms under {n} idle connections; all: {latencies:?}"
    );
}
