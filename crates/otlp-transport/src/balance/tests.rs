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
#[derive(Clone, Debug, Default)]
struct Backend {
    got: Arc<Mutex<Vec<Batch>>>,
    down: Arc<AtomicBool>,
    /// While down, take 100 ms to fail (a timeout slower than the cooldown).
    slow: Arc<AtomicBool>,
    calls: Arc<AtomicUsize>,
}

impl Service<Batch> for Backend {
    type Response = ExportResponse;
    type Error = TransportError;
    type Future = BoxFuture<'static, Result<ExportResponse, TransportError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, batch: Batch) -> Self::Future {
        let this = self.clone();
        this.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            if this.down.load(Ordering::SeqCst) {
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

impl Backend {
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

fn balancer(backends: &[Backend]) -> LoadBalancer<Backend> {
    let lb = LoadBalancer::new(Balance::Route(RouteKey::TraceId), "static list");
    let by_name: HashMap<String, Backend> = backends
        .iter()
        .enumerate()
        .map(|(i, b)| (format!("b{i}"), b.clone()))
        .collect();
    lb.set_backends(by_name.keys().cloned(), |n| {
        by_name.get(n).cloned().ok_or("unknown")
    })
    .unwrap();
    lb
}

#[tokio::test]
async fn every_trace_lands_on_exactly_one_backend_with_every_span() {
    let backends = vec![Backend::default(), Backend::default(), Backend::default()];
    let mut lb = balancer(&backends);
    for salt in 0..5 {
        lb.ready()
            .await
            .unwrap()
            .call(request(40, 5, salt))
            .await
            .unwrap();
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
    let backends = vec![Backend::default(), Backend::default(), Backend::default()];
    let mut lb = balancer(&backends).with_cooldown(Duration::ZERO);
    backends[1].down.store(true, Ordering::SeqCst);
    let resp = lb
        .ready()
        .await
        .unwrap()
        .call(request(60, 3, 0))
        .await
        .unwrap();
    assert_eq!(resp.rejected, 0);
    let spans = |b: &Backend| b.traces().values().sum::<usize>();
    assert_eq!(spans(&backends[1]), 0);
    assert_eq!(spans(&backends[0]) + spans(&backends[2]), 180);
    // Back up: it gets its share again (cooldown zero).
    backends[1].down.store(false, Ordering::SeqCst);
    lb.ready()
        .await
        .unwrap()
        .call(request(60, 3, 1))
        .await
        .unwrap();
    assert!(spans(&backends[1]) > 0);
    assert_eq!(backends.iter().map(spans).sum::<usize>(), 360);
}

/// The cooldown runs from the failure: a backend that takes 100 ms to fail
/// with a 50 ms cooldown is still skipped by the next call (it was not, when
/// the cooldown ran from the start of the call that found it down).
#[tokio::test]
async fn a_backend_slower_to_fail_than_the_cooldown_is_skipped_by_the_next_call() {
    let backends = vec![Backend::default(), Backend::default(), Backend::default()];
    let mut lb = balancer(&backends).with_cooldown(Duration::from_millis(50));
    backends[1].down.store(true, Ordering::SeqCst);
    backends[1].slow.store(true, Ordering::SeqCst);
    for salt in 0..2 {
        lb.ready()
            .await
            .unwrap()
            .call(request(60, 3, salt))
            .await
            .unwrap();
    }
    assert_eq!(backends[1].calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn all_backends_down_is_a_retryable_error_and_none_is_no_backend() {
    let backends = vec![Backend::default(), Backend::default()];
    let mut lb = balancer(&backends);
    for b in &backends {
        b.down.store(true, Ordering::SeqCst);
    }
    let err = lb
        .ready()
        .await
        .unwrap()
        .call(request(10, 2, 0))
        .await
        .unwrap_err();
    assert!(err.classify().is_retryable(), "{err}");
    let mut empty: LoadBalancer<Backend> = LoadBalancer::new(Balance::RoundRobin, "dns gw:4317");
    let err = empty
        .ready()
        .await
        .unwrap()
        .call(request(1, 1, 0))
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::NoBackend { .. }), "{err}");
    assert!(err.classify().is_retryable());
    assert!(err.to_string().contains("dns gw:4317"));
}

#[tokio::test]
async fn set_backends_keeps_known_services_and_counts_changes() {
    let lb: LoadBalancer<Backend> = LoadBalancer::new(Balance::RoundRobin, "static list");
    let made = AtomicUsize::new(0);
    let make = |_: &str| {
        made.fetch_add(1, Ordering::SeqCst);
        Ok::<_, ()>(Backend::default())
    };
    assert_eq!(lb.set_backends(["a".into(), "b".into()], make), Ok(2));
    assert_eq!(
        lb.set_backends(["b".into(), "c".into(), "c".into()], make),
        Ok(2)
    );
    assert_eq!(made.load(Ordering::SeqCst), 3);
    assert_eq!(lb.backend_names(), vec!["b".to_owned(), "c".to_owned()]);
    // A failing make leaves the set as it was.
    assert_eq!(
        lb.set_backends(["d".into()], |_| Err::<Backend, _>(())),
        Err(())
    );
    assert_eq!(lb.backend_names(), vec!["b".to_owned(), "c".to_owned()]);
}

#[tokio::test]
async fn round_robin_spreads_whole_batches_and_fails_over() {
    let backends = vec![Backend::default(), Backend::default()];
    let lb = balancer(&backends);
    let mut lb = LoadBalancer {
        balance: Balance::RoundRobin,
        ..lb
    };
    for i in 0..4 {
        lb.ready()
            .await
            .unwrap()
            .call(request(2, 1, i))
            .await
            .unwrap();
    }
    let batches = |b: &Backend| b.got.lock().unwrap_or_else(|e| e.into_inner()).len();
    assert_eq!((batches(&backends[0]), batches(&backends[1])), (2, 2));
    backends[0].down.store(true, Ordering::SeqCst);
    for i in 0..2 {
        lb.ready()
            .await
            .unwrap()
            .call(request(2, 1, i))
            .await
            .unwrap();
    }
    assert_eq!((batches(&backends[0]), batches(&backends[1])), (2, 4));
}
