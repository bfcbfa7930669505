//! Load balancer tests over in-memory backends.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize},
    },
};

use bytes::Bytes;
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    resource::v1::Resource,
    trace::v1::{ResourceSpans, ScopeSpans, Span},
};
use otlp_core::Signal;
use prost::Message;

use super::*;

/// A backend that keeps what it receives, or fails retryably while `down`.
#[derive(Clone, Debug)]
struct Mem {
    got: Arc<Mutex<Vec<Batch>>>,
    down: Arc<AtomicBool>,
    /// While down, take 100 ms to fail (a timeout slower than the cooldown).
    slow: Arc<AtomicBool>,
    calls: Arc<AtomicUsize>,
    /// Accept this many calls, then fail as if down (`usize::MAX`: no limit).
    accept: Arc<AtomicUsize>,
    /// Never answer (a gateway that accepts the connection and stalls).
    stall: Arc<AtomicBool>,
}

impl Default for Mem {
    fn default() -> Self {
        Self {
            got: Arc::default(),
            down: Arc::default(),
            slow: Arc::default(),
            calls: Arc::default(),
            accept: Arc::new(AtomicUsize::new(usize::MAX)),
            stall: Arc::default(),
        }
    }
}

impl Service<Batch> for Mem {
    type Response = ExportResponse;
    type Error = TransportError;
    type Future = BoxFuture<'static, Result<ExportResponse, TransportError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, batch: Batch) -> Self::Future {
        let this = self.clone();
        let call = this.calls.fetch_add(1, Ordering::SeqCst);
        let over = call >= this.accept.load(Ordering::SeqCst);
        Box::pin(async move {
            if this.stall.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            if over || this.down.load(Ordering::SeqCst) {
                if this.slow.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                return Err(TransportError::Timeout {
                    endpoint: "test".into(),
                    after: Duration::from_secs(1),
                });
            }
            this.got
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(batch);
            Ok(ExportResponse::default())
        })
    }
}

impl Mem {
    /// Span counts by trace id.
    fn traces(&self) -> HashMap<Vec<u8>, usize> {
        let mut out = HashMap::new();
        for b in self.got.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let req = ExportTraceServiceRequest::decode(b.bytes().clone()).unwrap();
            for rs in req.resource_spans {
                for ss in rs.scope_spans {
                    for sp in ss.spans {
                        *out.entry(sp.trace_id).or_default() += 1;
                    }
                }
            }
        }
        out
    }
}

/// `traces` traces of `spans` spans each, interleaved over two resources.
fn request(traces: u32, spans: u32, salt: u32) -> Batch {
    let mut resource_spans = Vec::new();
    for r in 0..2u32 {
        let spans: Vec<Span> = (0..traces)
            .flat_map(|t| (0..spans).map(move |s| (t, s)))
            .filter(|(t, s)| (t + s) % 2 == r)
            .map(|(t, s)| {
                let mut trace_id = vec![0u8; 16];
                trace_id[..4].copy_from_slice(&t.to_le_bytes());
                trace_id[4..8].copy_from_slice(&salt.to_le_bytes());
                Span {
                    trace_id,
                    span_id: vec![s as u8 + 1; 8],
                    name: format!("span {s}"),
                    ..Default::default()
                }
            })
            .collect();
        resource_spans.push(ResourceSpans {
            resource: Some(Resource::default()),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            schema_url: format!("r{r}"),
        });
    }
    let req = ExportTraceServiceRequest { resource_spans };
    Batch::from_encoded(Signal::Traces, Bytes::from(req.encode_to_vec())).unwrap()
}

/// One call of `lb`, once it is ready.
async fn send(lb: &mut LoadBalancer<Mem>, batch: Batch) -> Result<ExportResponse, TransportError> {
    lb.ready().await?.call(batch).await
}

fn balancer(backends: &[Mem]) -> LoadBalancer<Mem> {
    let lb = LoadBalancer::new(Balance::Route(RouteKey::TraceId), "static list");
    let by_name: HashMap<String, Mem> = backends
        .iter()
        .enumerate()
        .map(|(i, b)| (format!("b{i}"), b.clone()))
        .collect();
    let change = lb.set_backends(by_name.keys().cloned(), |n| {
        by_name.get(n).cloned().ok_or("unknown")
    });
    assert!(change.skipped.is_empty());
    lb
}

#[tokio::test]
async fn every_trace_lands_on_exactly_one_backend_with_every_span() {
    let backends = vec![Mem::default(), Mem::default(), Mem::default()];
    let mut lb = balancer(&backends);
    for salt in 0..5 {
        send(&mut lb, request(40, 5, salt)).await.unwrap();
    }
    let mut owner: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut total = 0;
    for (i, b) in backends.iter().enumerate() {
        let traces = b.traces();
        // Each backend gets a share (200 traces over 3).
        assert!(traces.len() > 30, "backend {i}: {} traces", traces.len());
        for (t, n) in traces {
            assert_eq!(n, 5, "a trace split across backends");
            assert!(owner.insert(t, i).is_none(), "a trace on two backends");
            total += n;
        }
    }
    assert_eq!(total, 5 * 40 * 5);
}

#[tokio::test]
async fn a_failing_backend_share_goes_to_the_others_and_comes_back() {
    let backends = vec![Mem::default(), Mem::default(), Mem::default()];
    let mut lb = balancer(&backends).with_cooldown(Duration::ZERO);
    backends[1].down.store(true, Ordering::SeqCst);
    let resp = send(&mut lb, request(60, 3, 0)).await.unwrap();
    assert_eq!(resp.rejected, 0);
    assert_eq!(spans_of(&backends[1]), 0);
    assert_eq!(spans_of(&backends[0]) + spans_of(&backends[2]), 180);
    // Back up: it gets its share again (cooldown zero).
    backends[1].down.store(false, Ordering::SeqCst);
    send(&mut lb, request(60, 3, 1)).await.unwrap();
    assert!(spans_of(&backends[1]) > 0);
    assert_eq!(backends.iter().map(spans_of).sum::<usize>(), 360);
}

/// The cooldown runs from the failure: a backend that takes 100 ms to fail
/// with a 50 ms cooldown is still skipped by the next call (it was not, when
/// the cooldown ran from the start of the call that found it down).
#[tokio::test]
async fn a_backend_slower_to_fail_than_the_cooldown_is_skipped_by_the_next_call() {
    let backends = vec![Mem::default(), Mem::default(), Mem::default()];
    let mut lb = balancer(&backends).with_cooldown(Duration::from_millis(50));
    backends[1].down.store(true, Ordering::SeqCst);
    backends[1].slow.store(true, Ordering::SeqCst);
    for salt in 0..2 {
        send(&mut lb, request(60, 3, salt)).await.unwrap();
    }
    assert_eq!(backends[1].calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn all_backends_down_is_a_retryable_error_and_none_is_no_backend() {
    let backends = vec![Mem::default(), Mem::default()];
    let mut lb = balancer(&backends);
    for b in &backends {
        b.down.store(true, Ordering::SeqCst);
    }
    let err = send(&mut lb, request(10, 2, 0)).await.unwrap_err();
    assert!(err.classify().is_retryable(), "{err}");
    let mut empty: LoadBalancer<Mem> = LoadBalancer::new(Balance::RoundRobin, "dns gw:4317");
    let err = send(&mut empty, request(1, 1, 0)).await.unwrap_err();
    assert!(matches!(err, TransportError::NoBackend { .. }), "{err}");
    assert!(err.classify().is_retryable());
    assert!(err.to_string().contains("dns gw:4317"));
}

#[tokio::test]
async fn set_backends_keeps_known_services_and_counts_changes() {
    let lb: LoadBalancer<Mem> = LoadBalancer::new(Balance::RoundRobin, "static list");
    let made = AtomicUsize::new(0);
    let make = |_: &str| {
        made.fetch_add(1, Ordering::SeqCst);
        Ok::<_, ()>(Mem::default())
    };
    assert_eq!(lb.set_backends(["a".into(), "b".into()], make).changed(), 2);
    assert_eq!(
        lb.set_backends(["b".into(), "c".into(), "c".into()], make)
            .changed(),
        2
    );
    assert_eq!(made.load(Ordering::SeqCst), 3);
    assert_eq!(lb.backend_names(), vec!["b".to_owned(), "c".to_owned()]);
    // A name whose service cannot be built is left out; the rest applies.
    let change = lb.set_backends(["b".into(), "bad".into(), "d".into()], |n| {
        if n == "bad" {
            Err(())
        } else {
            Ok(Mem::default())
        }
    });
    assert_eq!((change.added, change.removed), (1, 1));
    assert_eq!(change.skipped, vec![("bad".to_owned(), ())]);
    assert_eq!(lb.backend_names(), vec!["b".to_owned(), "d".to_owned()]);
    // Only bad names: the set is kept as it was (never emptied by them).
    let change = lb.set_backends(["x".into()], |_| Err::<Mem, _>(()));
    assert_eq!(change.changed(), 0);
    assert_eq!(lb.backend_names(), vec!["b".to_owned(), "d".to_owned()]);
}

#[test]
fn balance_values_are_the_route_keys_and_round_robin() {
    assert_eq!(
        Balance::VALUES,
        ["trace_id", "service", "resource", "round_robin"]
    );
    assert_eq!(Balance::VALUES[..3], RouteKey::VALUES);
}

#[tokio::test]
async fn round_robin_spreads_whole_batches_and_fails_over() {
    let backends = vec![Mem::default(), Mem::default()];
    let lb = balancer(&backends);
    let mut lb = LoadBalancer {
        balance: Balance::RoundRobin,
        ..lb
    };
    for i in 0..4 {
        send(&mut lb, request(2, 1, i)).await.unwrap();
    }
    let batches = |b: &Mem| b.got.lock().unwrap_or_else(|e| e.into_inner()).len();
    assert_eq!((batches(&backends[0]), batches(&backends[1])), (2, 2));
    backends[0].down.store(true, Ordering::SeqCst);
    for i in 0..2 {
        send(&mut lb, request(2, 1, i)).await.unwrap();
    }
    assert_eq!((batches(&backends[0]), batches(&backends[1])), (2, 4));
}

fn spans_of(b: &Mem) -> usize {
    b.traces().values().sum()
}

/// Parts delivered before the call fails (so the whole batch is sent again)
/// are counted as duplicates; a call that succeeds counts none.
#[tokio::test]
async fn parts_delivered_before_a_retried_failure_are_counted_as_duplicates() {
    let backends = vec![Mem::default(), Mem::default()];
    let mut lb = balancer(&backends);
    send(&mut lb, request(20, 2, 0)).await.unwrap();
    assert_eq!(lb.duplicates(), 0);
    let before = spans_of(&backends[0]);
    // Backend 1 is down; backend 0 takes its first part, then fails the
    // re-routed one: no backend is left and the batch fails retryably.
    backends[1].down.store(true, Ordering::SeqCst);
    backends[0].accept.store(
        backends[0].calls.load(Ordering::SeqCst) + 1,
        Ordering::SeqCst,
    );
    let err = send(&mut lb, request(20, 2, 1)).await.unwrap_err();
    assert!(err.classify().is_retryable(), "{err}");
    let delivered = spans_of(&backends[0]) - before;
    assert!(delivered > 0);
    assert_eq!(lb.duplicates(), delivered as u64);
}

/// A call cut off (the retry layer's attempt timeout) after some parts were
/// delivered counts them as duplicates too, and releases its probes. Paused
/// time: the stalled part never answers, so the 50 ms pass at once.
#[tokio::test(start_paused = true)]
async fn a_cancelled_call_counts_what_it_delivered_as_duplicates() {
    let backends = vec![Mem::default(), Mem::default()];
    let mut lb = balancer(&backends);
    backends[1].stall.store(true, Ordering::SeqCst);
    let call = lb.ready().await.unwrap().call(request(20, 2, 0));
    assert!(
        tokio::time::timeout(Duration::from_millis(50), call)
            .await
            .is_err()
    );
    let delivered = spans_of(&backends[0]);
    assert!(delivered > 0);
    assert_eq!(lb.duplicates(), delivered as u64);
    let stats = lb.backend_stats();
    assert!(stats.iter().all(|s| s.in_flight == 0), "{stats:?}");
}

#[tokio::test]
async fn backend_stats_count_sent_failed_and_up_per_backend() {
    let backends = vec![Mem::default(), Mem::default(), Mem::default()];
    let mut lb = balancer(&backends).with_cooldown(Duration::from_secs(60));
    backends[2].down.store(true, Ordering::SeqCst);
    send(&mut lb, request(60, 3, 0)).await.unwrap();
    let stats = lb.backend_stats();
    let names: Vec<&str> = stats.iter().map(|s| s.endpoint.as_str()).collect();
    assert_eq!(names, ["b0", "b1", "b2"]);
    for (s, b) in stats.iter().zip(&backends) {
        assert_eq!(s.sent, spans_of(b) as u64, "{s:?}");
        assert_eq!(s.in_flight, 0);
    }
    assert!(stats[0].up && stats[1].up);
    assert!(!stats[2].up);
    assert!(stats[2].failed > 0);
    assert_eq!(stats[0].sent + stats[1].sent, 180);
    // A backend that leaves the set leaves the stats.
    let keep = backends[0].clone();
    let _ = lb.set_backends(["b0".to_owned()], |_| Ok::<_, ()>(keep.clone()));
    let stats = lb.backend_stats();
    assert_eq!(stats.len(), 1);
    assert_eq!(
        stats[0].sent,
        spans_of(&backends[0]) as u64,
        "kept its counters"
    );
}

/// After its cooldown a failed backend is probed by one call at a time: a
/// stalled gateway (its requests time out) holds one batch, not all of them.
#[tokio::test]
async fn a_stalled_backend_past_its_cooldown_holds_only_the_probing_call() {
    let backends = vec![Mem::default(), Mem::default(), Mem::default()];
    let lb = balancer(&backends).with_cooldown(Duration::ZERO);
    // Fails after 100 ms, as an exporter's timeout does.
    backends[1].down.store(true, Ordering::SeqCst);
    backends[1].slow.store(true, Ordering::SeqCst);
    lb.clone().call(request(60, 3, 0)).await.unwrap();
    let calls = backends[1].calls.load(Ordering::SeqCst);
    let started = Instant::now();
    let handles: Vec<_> = (0..8)
        .map(|salt| {
            let mut lb = lb.clone();
            tokio::spawn(async move {
                lb.call(request(60, 3, salt + 1)).await.unwrap();
                started.elapsed()
            })
        })
        .collect();
    let mut fast = 0;
    for h in handles {
        if h.await.unwrap() < Duration::from_millis(80) {
            fast += 1;
        }
    }
    assert_eq!(
        backends[1].calls.load(Ordering::SeqCst) - calls,
        1,
        "more than one call probed the stalled backend"
    );
    assert!(fast >= 7, "only {fast} of 8 calls were not held");
    assert_eq!(spans_of(&backends[0]) + spans_of(&backends[2]), 9 * 180);
}
