//! Receiver hardening on real sockets at 127.0.0.1 (issue 16): busy
//! connections are never cut and idle HTTP/2 ones get GOAWAY, stalled bodies
//! time out without holding request slots, and every byte a sender makes the
//! receiver hold is reserved from the intake budget, which back-pressure
//! protects.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(all(feature = "http", feature = "grpc", feature = "gzip"))]

mod receive_support;

use receive_support as support;

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::{BufMut, Bytes, BytesMut};
use http::{Request, Response};
use http_body_util::{BodyExt, Channel};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use otlp_transport::{GrpcReceiver, HttpReceiver, IntakeBudget, ReceiverLimits};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use support::{Mode, Recorder, Running, gzip, trace_bytes};

const BOUND: Duration = Duration::from_secs(20);
const TRACE_GRPC: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

async fn http(inner: &Recorder, limits: ReceiverLimits) -> Running {
    let bound = HttpReceiver::new(inner.clone())
        .with_limits(limits)
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    Running::start(bound)
}

async fn grpc(inner: &Recorder, limits: ReceiverLimits) -> Running {
    let bound = GrpcReceiver::new(inner.clone())
        .with_limits(limits)
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    Running::start(bound)
}

type H2 = hyper::client::conn::http2::SendRequest<Channel<Bytes>>;

/// An HTTP/2 (prior knowledge) client connection; the task ends when the
/// server closes it.
async fn h2(addr: SocketAddr) -> (H2, tokio::task::JoinHandle<()>) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    (sender, task)
}

fn post(
    addr: SocketAddr,
    path: &str,
    content_type: &str,
) -> (
    http_body_util::channel::Sender<Bytes>,
    Request<Channel<Bytes>>,
) {
    let (tx, body) = Channel::<Bytes>::new(4);
    let req = Request::post(format!("http://{addr}{path}"))
        .header("content-type", content_type)
        .header("te", "trailers")
        .body(body)
        .unwrap();
    (tx, req)
}

fn grpc_frame(message: &[u8], declared: usize) -> Bytes {
    let mut b = BytesMut::with_capacity(5 + message.len());
    b.put_u8(0);
    b.put_u32(u32::try_from(declared).unwrap());
    b.extend_from_slice(message);
    b.freeze()
}

/// The `grpc-status` of an answer (trailers, or headers for trailers-only).
async fn grpc_status(resp: Response<Incoming>) -> Option<String> {
    if let Some(s) = resp.headers().get("grpc-status") {
        return Some(s.to_str().unwrap().to_owned());
    }
    let collected = resp.into_body().collect().await.ok()?;
    collected
        .trailers()
        .and_then(|t| t.get("grpc-status"))
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_busy_h2_connection_lives_on_and_an_idle_one_gets_goaway() {
    let inner = Recorder::new(Mode::Accept);
    let limits = ReceiverLimits::new()
        .with_header_read_timeout(Duration::from_millis(300))
        .with_idle_timeout(Duration::from_millis(1500));
    let server = http(&inner, limits).await;
    let (mut sender, conn) = h2(server.addr).await;
    let body = trace_bytes(1);
    // 30 requests over 3 s: ten header timeouts, two idle timeouts.
    for i in 0..30 {
        let (mut tx, req) = post(server.addr, "/v1/traces", "application/x-protobuf");
        let send = sender.send_request(req);
        tx.send_data(body.clone()).await.unwrap();
        drop(tx);
        let resp = tokio::time::timeout(BOUND, send)
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("request {i} failed on the busy connection: {e}"));
        assert_eq!(resp.status(), 200, "request {i}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!conn.is_finished(), "the busy connection was cut");
    assert_eq!(inner.batches().len(), 30);
    // Idle now: closed by the server after the idle timeout, not before.
    let idle = Instant::now();
    tokio::time::timeout(BOUND, conn).await.unwrap().unwrap();
    let after = idle.elapsed();
    assert!(
        after >= Duration::from_millis(1200) && after < Duration::from_secs(10),
        "idle connection closed after {after:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn stalled_http_bodies_time_out_without_holding_request_slots() {
    let inner = Recorder::new(Mode::Accept);
    let limits = ReceiverLimits::new()
        .with_max_concurrent_requests(4)
        .with_body_read_timeout(Duration::from_millis(800));
    let server = http(&inner, limits).await;
    // Eight connections send their headers and 10 of 1000 body bytes, then stall.
    let mut stalled = Vec::new();
    for _ in 0..8 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(b"POST /v1/traces HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-protobuf\r\nContent-Length: 1000\r\n\r\n0123456789")
            .await
            .unwrap();
        stalled.push(s);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A valid request is answered at once: the stalled bodies hold no slot.
    let body = trace_bytes(3);
    let started = Instant::now();
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&body).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(BOUND, s.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    assert!(
        raw.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    assert!(
        started.elapsed() < Duration::from_millis(700),
        "the valid request waited {:?} behind stalled bodies",
        started.elapsed()
    );
    // Each stalled request is answered 408 and its connection closed.
    for mut s in stalled {
        let mut raw = Vec::new();
        tokio::time::timeout(BOUND, s.read_to_end(&mut raw))
            .await
            .unwrap()
            .unwrap();
        let text = String::from_utf8_lossy(&raw).to_ascii_lowercase();
        assert!(text.starts_with("http/1.1 408"), "{text}");
        assert!(text.contains("connection: close"), "{text}");
        assert!(text.contains("body read timeout"), "{text}");
    }
    assert_eq!(inner.batches().len(), 1);
    assert_eq!(inner.batches()[0].items(), 3);
    server.shutdown().await;
}

#[tokio::test]
async fn unfinished_grpc_streams_are_limited_per_connection_and_time_out() {
    let inner = Recorder::new(Mode::Accept);
    let limits = ReceiverLimits::new()
        .with_max_streams_per_connection(8)
        .with_body_read_timeout(Duration::from_millis(800));
    let server = grpc(&inner, limits).await;
    let (sender, _conn) = h2(server.addr).await;
    // 20 streams each send the prefix of a 1000-byte message and 10 bytes.
    let mut attacks = Vec::new();
    for _ in 0..20 {
        let mut sender = sender.clone();
        let (mut tx, req) = post(server.addr, TRACE_GRPC, "application/grpc");
        attacks.push(tokio::spawn(async move {
            sender.ready().await.unwrap();
            let resp = sender.send_request(req);
            let _ = tx.send_data(grpc_frame(&[0u8; 10], 1000)).await;
            let resp = resp.await;
            // Keep the body open until the answer came.
            drop(tx);
            match resp {
                Ok(r) => grpc_status(r).await,
                Err(e) => Some(format!("error: {e:?}")),
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A valid request on another connection is served at once.
    let (mut other, _c) = h2(server.addr).await;
    let (mut tx, req) = post(server.addr, TRACE_GRPC, "application/grpc");
    let started = Instant::now();
    let resp = other.send_request(req);
    let msg = trace_bytes(2);
    tx.send_data(grpc_frame(&msg, msg.len())).await.unwrap();
    drop(tx);
    let resp = tokio::time::timeout(BOUND, resp).await.unwrap().unwrap();
    assert_eq!(grpc_status(resp).await.as_deref(), Some("0"));
    assert!(
        started.elapsed() < Duration::from_millis(700),
        "valid request waited {:?}",
        started.elapsed()
    );
    // Streams over the per-connection limit are refused by HTTP/2 itself
    // (REFUSED_STREAM: not processed, safe to retry); the others end
    // DEADLINE_EXCEEDED (4) at the body read timeout. None is accepted.
    let mut timed_out = 0;
    for a in attacks {
        let status = tokio::time::timeout(BOUND, a).await.unwrap().unwrap();
        match status.as_deref() {
            Some("4") => timed_out += 1,
            Some(e) if e.contains("REFUSED_STREAM") => {}
            other => panic!("unfinished stream ended {other:?}"),
        }
    }
    assert!(
        (1..=8).contains(&timed_out),
        "{timed_out} streams were open at once"
    );
    assert_eq!(inner.batches().len(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn big_declared_grpc_messages_reserve_only_what_arrives_within_the_budget() {
    let inner = Recorder::new(Mode::Accept);
    let budget = IntakeBudget::new(4 << 20);
    let limits = ReceiverLimits::new()
        .with_intake_budget(budget.clone())
        .with_body_read_timeout(Duration::from_millis(1500));
    let server = grpc(&inner, limits).await;
    // Eight streams on four connections declare 60 MiB (under the message
    // limit) and send 1 MiB each: 8 MiB of data for a 4 MiB budget.
    let peak = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (budget, peak, done) = (budget.clone(), peak.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::SeqCst) {
                peak.fetch_max(budget.used(), Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let mut attacks = Vec::new();
    for c in 0..4 {
        let (sender, conn) = h2(server.addr).await;
        for _ in 0..2 {
            let mut sender = sender.clone();
            let (mut tx, req) = post(server.addr, TRACE_GRPC, "application/grpc");
            attacks.push(tokio::spawn(async move {
                sender.ready().await.unwrap();
                let resp = sender.send_request(req);
                let _ = tx.send_data(grpc_frame(&[], 60 << 20)).await;
                for _ in 0..16 {
                    if tx
                        .send_data(Bytes::from(vec![0u8; 64 << 10]))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
                let resp = resp.await;
                drop(tx);
                match resp {
                    Ok(r) => grpc_status(r).await,
                    Err(_) => None,
                }
            }));
        }
        let _ = (c, conn);
    }
    let mut statuses = Vec::new();
    for a in attacks {
        statuses.push(tokio::time::timeout(BOUND, a).await.unwrap().unwrap());
    }
    done.store(true, Ordering::SeqCst);
    sampler.await.unwrap();
    let peak = peak.load(Ordering::SeqCst);
    assert!(peak <= 4 << 20, "budget peaked at {peak}");
    assert!(peak >= 1 << 20, "the attack reserved only {peak} bytes");
    // Those the budget could not hold were told to retry (UNAVAILABLE, 14);
    // the rest timed out (DEADLINE_EXCEEDED, 4).
    assert!(
        statuses.iter().any(|s| s.as_deref() == Some("14")),
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| matches!(s.as_deref(), Some("14" | "4"))),
        "{statuses:?}"
    );
    assert_eq!(budget.used(), 0, "every reservation was given back");
    // Afterwards valid traffic is accepted again.
    let (mut sender, _conn) = h2(server.addr).await;
    let (mut tx, req) = post(server.addr, TRACE_GRPC, "application/grpc");
    let resp = sender.send_request(req);
    let msg = trace_bytes(2);
    tx.send_data(grpc_frame(&msg, msg.len())).await.unwrap();
    drop(tx);
    let resp = tokio::time::timeout(BOUND, resp).await.unwrap().unwrap();
    assert_eq!(grpc_status(resp).await.as_deref(), Some("0"));
    assert_eq!(inner.batches().len(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn parallel_gzip_bombs_stay_within_the_intake_budget() {
    let inner = Recorder::new(Mode::Accept);
    let budget = IntakeBudget::new(8 << 20);
    let limits = ReceiverLimits::new().with_intake_budget(budget.clone());
    let server = http(&inner, limits).await;
    // 64 MiB of zeros each (the decompressed limit), 16 in parallel.
    let bomb = Bytes::from(gzip(&vec![0u8; 64 << 20]));
    let peak = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (budget, peak, done) = (budget.clone(), peak.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::SeqCst) {
                peak.fetch_max(budget.used(), Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    let mut bombs = Vec::new();
    for _ in 0..16 {
        let (addr, bomb) = (server.addr, bomb.clone());
        bombs.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            let head = format!(
                "POST /v1/traces HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/x-protobuf\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
                bomb.len()
            );
            s.write_all(head.as_bytes()).await.unwrap();
            s.write_all(&bomb).await.unwrap();
            let mut raw = Vec::new();
            s.read_to_end(&mut raw).await.unwrap();
            let text = String::from_utf8_lossy(&raw).into_owned();
            text.split(' ').nth(1).unwrap_or("").to_owned()
        }));
    }
    let mut codes = Vec::new();
    for b in bombs {
        codes.push(tokio::time::timeout(BOUND, b).await.unwrap().unwrap());
    }
    done.store(true, Ordering::SeqCst);
    sampler.await.unwrap();
    // Each bomb is refused: too large for the budget alone (413) or while
    // other bombs hold it (503).
    assert!(codes.iter().all(|c| c == "413" || c == "503"), "{codes:?}");
    let peak = peak.load(Ordering::SeqCst);
    assert!(peak <= 8 << 20, "budget peaked at {peak}");
    assert_eq!(budget.used(), 0);
    assert!(inner.batches().is_empty());
    server.shutdown().await;
}
