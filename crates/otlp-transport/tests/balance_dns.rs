#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The DNS resolver of load balancing against a real DNS server on
//! 127.0.0.1 (Python `dnslib`, tests/python/dns_server.py) whose A records
//! the test changes: the backend set follows the answer, a 4th backend
//! gets its share, and a dead DNS server keeps the last set.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    trace::v1::{ResourceSpans, ScopeSpans, Span},
};
use otlp_core::{Batch, ExportResponse, RouteKey, Signal};
use otlp_test_support::DnsServer;
use otlp_transport::{
    TransportError,
    balance::{Balance, DnsResolver, LoadBalancer, spawn_refresh},
};
use prost::Message;
use tower::{Service, ServiceExt};

/// `gateways.test.` served by the DNS server with a first answer (rewrite
/// `records` to change it), a resolver asking that server, and an empty
/// balancer for the resolver to fill.
struct Gateways {
    records: PathBuf,
    server: DnsServer,
    dns: DnsResolver,
    lb: LoadBalancer<Backend>,
    _dir: tempfile::TempDir,
}

fn gateways(answer: &str) -> Gateways {
    let dir = tempfile::tempdir().unwrap();
    let records = dir.path().join("records");
    std::fs::write(&records, answer).unwrap();
    let server = DnsServer::start(&records, Duration::from_secs(60));
    let dns = DnsResolver::with_server("gateways.test.", server.addr(), Duration::from_millis(500))
        .unwrap();
    let lb = LoadBalancer::new(Balance::Route(RouteKey::TraceId), "dns gateways.test.:4317");
    Gateways {
        records,
        server,
        dns,
        lb,
        _dir: dir,
    }
}

/// A backend that counts the spans it receives, or fails when `down`.
#[derive(Clone, Debug, Default)]
struct Backend(Arc<Mutex<u64>>, bool);

impl Service<Batch> for Backend {
    type Response = ExportResponse;
    type Error = TransportError;
    type Future = BoxFuture<'static, Result<ExportResponse, TransportError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, batch: Batch) -> Self::Future {
        if self.1 {
            return Box::pin(async {
                Err(TransportError::Timeout {
                    endpoint: "down".into(),
                    after: Duration::from_secs(1),
                })
            });
        }
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) += batch.items();
        Box::pin(async { Ok(ExportResponse::default()) })
    }
}

fn traces(n: u32, salt: u32) -> Batch {
    let spans = (0..n)
        .map(|t| {
            let mut trace_id = vec![0u8; 16];
            trace_id[..4].copy_from_slice(&t.to_le_bytes());
            trace_id[4..8].copy_from_slice(&salt.to_le_bytes());
            Span {
                trace_id,
                span_id: vec![1; 8],
                ..Default::default()
            }
        })
        .collect();
    let req = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    Batch::from_encoded(Signal::Traces, Bytes::from(req.encode_to_vec())).unwrap()
}

/// One call of `lb`, once it is ready.
async fn send(
    lb: &mut LoadBalancer<Backend>,
    batch: Batch,
) -> Result<ExportResponse, TransportError> {
    lb.ready().await?.call(batch).await
}

async fn wait_for_set(lb: &LoadBalancer<Backend>, want: &[&str]) {
    let started = Instant::now();
    loop {
        let names = lb.backend_names();
        if names == want {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "backends {names:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backend_set_follows_the_dns_answer() {
    let Gateways {
        records,
        server,
        dns,
        mut lb,
        _dir,
    } = gateways("127.0.0.1\n127.0.0.2\n127.0.0.3\n");
    let backends: Arc<Mutex<Vec<(String, Backend)>>> = Arc::default();
    let made = backends.clone();
    let _task = spawn_refresh(
        lb.clone(),
        dns,
        Duration::from_millis(100),
        |ip| format!("http://{ip}:4317"),
        move |name| {
            let b = Backend::default();
            made.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((name.to_owned(), b.clone()));
            Ok(b)
        },
    );
    let three = [
        "http://127.0.0.1:4317",
        "http://127.0.0.2:4317",
        "http://127.0.0.3:4317",
    ];
    wait_for_set(&lb, &three).await;
    send(&mut lb, traces(3000, 0)).await.unwrap();

    // A 4th gateway: it gets about a quarter of the next traces.
    std::fs::write(&records, "127.0.0.1\n127.0.0.2\n127.0.0.3\n127.0.0.4\n").unwrap();
    let four = [three[0], three[1], three[2], "http://127.0.0.4:4317"];
    wait_for_set(&lb, &four).await;
    send(&mut lb, traces(4000, 1)).await.unwrap();
    let count = |name: &str| -> u64 {
        backends
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, b)| *b.0.lock().unwrap_or_else(|e| e.into_inner()))
            .sum()
    };
    let fourth = count(four[3]);
    assert!(
        (700..=1300).contains(&fourth),
        "the new backend got {fourth} of 4000"
    );
    let total: u64 = four.iter().map(|n| count(n)).sum();
    assert_eq!(total, 7000, "every span went to one backend");
    // Each backend was built once: known names keep their service.
    assert_eq!(backends.lock().unwrap_or_else(|e| e.into_inner()).len(), 4);

    // One removed.
    std::fs::write(&records, "127.0.0.1\n127.0.0.3\n127.0.0.4\n").unwrap();
    let three_left = [four[0], four[2], four[3]];
    wait_for_set(&lb, &three_left).await;

    // The DNS server dies: the last set stays.
    drop(server);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(lb.backend_names(), three_left);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_backend_makes_the_resolver_look_again_at_once() {
    let Gateways {
        records,
        server: _server,
        dns,
        mut lb,
        _dir,
    } = gateways("127.0.0.1\n127.0.0.2\n");
    let alive = Backend::default();
    let kept = alive.clone();
    // An interval far longer than the test: only the failure can trigger the look-up.
    let _task = spawn_refresh(
        lb.clone(),
        dns,
        Duration::from_secs(300),
        |ip| format!("http://{ip}:4317"),
        move |name| {
            Ok(if name.contains(".2:") {
                Backend(Arc::default(), true)
            } else {
                kept.clone()
            })
        },
    );
    wait_for_set(&lb, &["http://127.0.0.1:4317", "http://127.0.0.2:4317"]).await;
    // The second gateway dies and leaves DNS; its share goes to the first at once.
    std::fs::write(&records, "127.0.0.1\n").unwrap();
    send(&mut lb, traces(1000, 0)).await.unwrap();
    assert_eq!(*alive.0.lock().unwrap_or_else(|e| e.into_inner()), 1000);
    wait_for_set(&lb, &["http://127.0.0.1:4317"]).await;
}

/// One address whose backend cannot be built does not freeze the set: it is
/// left out and the rest of the answer applies (before, the whole answer
/// was refused and the set stayed as it was, here empty).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_address_in_the_answer_is_left_out_and_the_rest_applied() {
    let Gateways {
        records,
        server: _server,
        dns,
        lb,
        _dir,
    } = gateways("127.0.0.1\n127.0.0.9\n127.0.0.2\n");
    let _task = spawn_refresh(
        lb.clone(),
        dns,
        Duration::from_millis(100),
        |ip| format!("http://{ip}:4317"),
        |name| {
            if name.contains(".9:") {
                Err(TransportError::InvalidEndpoint {
                    endpoint: name.to_owned(),
                    reason: "refused by the test".into(),
                })
            } else {
                Ok(Backend::default())
            }
        },
    );
    wait_for_set(&lb, &["http://127.0.0.1:4317", "http://127.0.0.2:4317"]).await;
    // And a later change still applies.
    std::fs::write(&records, "127.0.0.9\n127.0.0.3\n").unwrap();
    wait_for_set(&lb, &["http://127.0.0.3:4317"]).await;
}
