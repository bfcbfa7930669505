//! Whole-request admission (`Sender::admit_request`, the agent's intake) and
//! bisection of a joined batch the collector refuses as invalid.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    trace::v1::{ResourceSpans, ScopeSpans, Span},
};
use otlp_core::{Batch, DropReason, ExportResponse, FailReason, Retryability, Signal};
use otlp_pipeline::{BatchConfig, Overflow, Pipeline, PipelineConfig, QueueConfig, Refusal};
use prost::Message;

mod common;

use common::{TestError, assert_adds_up};

/// One request of `n` spans whose ids start at `first`; `poison` names the
/// request so the test collector refuses any batch that contains it.
fn request(first: u64, n: u64, name: &str) -> Batch {
    let body = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: (first..first + n)
                    .map(|i| Span {
                        trace_id: vec![1; 16],
                        span_id: i.to_be_bytes().to_vec(),
                        name: name.to_owned(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec();
    Batch::from_encoded(Signal::Traces, Bytes::from(body)).unwrap()
}

fn config(batch: u64, max_items: u64, max_bytes: u64, overflow: Overflow) -> PipelineConfig {
    PipelineConfig {
        batch: BatchConfig {
            max_batch_size: batch,
            max_batch_bytes: 1024 * 1024,
            batch_timeout: Duration::from_millis(20),
        },
        queue: QueueConfig {
            max_items,
            max_bytes,
            overflow,
            persistent: None,
        },
        workers: 1,
    }
}

/// A collector that records every span id it accepted, refuses with
/// `INVALID_ARGUMENT`-like errors any batch holding a span named "poison",
/// and stalls while `hold` is set.
#[derive(Clone, Default)]
struct Collector {
    delivered: Arc<Mutex<Vec<u64>>>,
    calls: Arc<Mutex<u64>>,
    hold: Arc<tokio::sync::RwLock<()>>,
}

impl Collector {
    fn service(
        &self,
    ) -> impl tower::Service<
        Batch,
        Response = ExportResponse,
        Error = TestError,
        Future = impl Future<Output = Result<ExportResponse, TestError>> + Send,
    > + Clone
    + Send
    + 'static {
        let me = self.clone();
        tower::service_fn(move |b: Batch| {
            let me = me.clone();
            async move {
                let _open = me.hold.read().await;
                *me.calls.lock().unwrap() += 1;
                let req = ExportTraceServiceRequest::decode(b.bytes().clone()).unwrap();
                let spans: Vec<&Span> = req
                    .resource_spans
                    .iter()
                    .flat_map(|r| &r.scope_spans)
                    .flat_map(|s| &s.spans)
                    .collect();
                assert_eq!(spans.len() as u64, b.items(), "batch item count is exact");
                if spans.iter().any(|s| s.name == "poison") {
                    return Err(TestError {
                        class: Retryability::Permanent,
                        invalid: true,
                    });
                }
                let mut d = me.delivered.lock().unwrap();
                for s in spans {
                    d.push(u64::from_be_bytes(s.span_id[..8].try_into().unwrap()));
                }
                Ok(ExportResponse::success())
            }
        })
    }

    fn delivered(&self) -> Vec<u64> {
        self.delivered.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn a_request_that_does_not_fit_whole_is_refused_and_nothing_of_it_is_queued() {
    let collector = Collector::default();
    let hold = collector.hold.clone().write_owned().await;
    // Room for 1000 items; 600 already waiting (collector stalled).
    let p = Pipeline::builder(config(100, 1000, 64 << 20, Overflow::DropNewest))
        .build(collector.service())
        .unwrap();
    let tx = p.sender();
    tx.admit_request(request(0, 600, "first")).await.unwrap();
    // 500 items split into 5 parts of 100: the first 4 would fit, so a
    // piecewise admission would take them and the sender's retry would
    // duplicate them. Whole admission takes none.
    let err = tx
        .admit_request(request(10_000, 500, "second"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Refusal::Full {
                reason: DropReason::QueueFull,
                items: 500,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("retry later"), "{err}");
    let s = p.stats();
    assert_eq!(s.signal(Signal::Traces).accepted, 600);
    assert_eq!(s.signal(Signal::Traces).refused, 500);
    assert_eq!(s.signal(Signal::Traces).dropped_total(), 0);
    drop(hold);
    p.flush().await;
    let mut got = collector.delivered();
    got.sort_unstable();
    assert_eq!(got, (0..600).collect::<Vec<_>>());
    assert_adds_up(&p.stats());
}

#[tokio::test]
async fn a_request_above_the_batch_size_is_split_and_one_above_the_queue_names_the_setting() {
    let collector = Collector::default();
    let p = Pipeline::builder(config(512, 65_536, 64 << 20, Overflow::DropOldest))
        .build(collector.service())
        .unwrap();
    let tx = p.sender();
    // The Collector's default batch: 8192 spans in one request.
    tx.admit_request(request(0, 8192, "big")).await.unwrap();
    p.flush().await;
    assert_eq!(collector.delivered().len(), 8192);
    assert!(
        *collector.calls.lock().unwrap() >= 16,
        "split into batches of at most 512"
    );
    // A request larger than the whole queue's item limit can never fit: the
    // hint names queue.max_items, not queue.max_bytes.
    let small = Pipeline::builder(config(512, 4096, 64 << 20, Overflow::DropOldest))
        .build(collector.service())
        .unwrap();
    let err = small
        .sender()
        .admit_request(request(0, 4097, "too-big"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Refusal::TooLarge {
                setting: "queue.max_items",
                limit: 4096,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("raise queue.max_items"), "{err}");
    assert_eq!(small.stats().signal(Signal::Traces).accepted, 0);
    assert_adds_up(&p.stats());
}

#[tokio::test]
async fn an_empty_request_is_acknowledged_and_never_sent() {
    let collector = Collector::default();
    let p = Pipeline::builder(config(100, 1000, 64 << 20, Overflow::DropNewest))
        .build(collector.service())
        .unwrap();
    let empty = Batch::from_encoded(Signal::Traces, Bytes::new()).unwrap();
    assert_eq!(empty.items(), 0);
    p.sender().admit_request(empty.clone()).await.unwrap();
    p.sender().try_send_batch(empty).unwrap();
    // `{"resourceSpans":[{}]}`: an envelope with a resource and no spans.
    let hollow = Batch::from_encoded(Signal::Traces, Bytes::from_static(b"\x0a\x00")).unwrap();
    assert_eq!(hollow.items(), 0);
    p.sender().admit_request(hollow).await.unwrap();
    p.flush().await;
    assert_eq!(
        *collector.calls.lock().unwrap(),
        0,
        "no zero-item request upstream"
    );
    assert_eq!(p.stats().signal(Signal::Traces).accepted, 0);
}

#[tokio::test(start_paused = true)]
async fn drop_oldest_evicts_only_when_that_makes_room_for_the_whole_request() {
    let collector = Collector::default();
    let hold = collector.hold.clone().write_owned().await;
    let p = Pipeline::builder(config(100, 1000, 64 << 20, Overflow::DropOldest))
        .build(collector.service())
        .unwrap();
    let tx = p.sender();
    // 900 admitted: one batch of 100 goes in flight (stalled), 800 wait.
    for i in 0..9 {
        tx.admit_request(request(i * 100, 100, "old"))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // 1100 items can never fit beside the 100 in flight: refused, nothing evicted.
    let err = tx
        .admit_request(request(50_000, 1001, "huge"))
        .await
        .unwrap_err();
    assert!(matches!(err, Refusal::TooLarge { .. }), "{err:?}");
    tx.admit_request(request(60_000, 950, "almost"))
        .await
        .unwrap_err();
    assert_eq!(p.stats().signal(Signal::Traces).dropped_total(), 0);
    // 300 more: evicting the oldest queued batches makes room, counted.
    tx.admit_request(request(70_000, 300, "new")).await.unwrap();
    let s = p.stats();
    assert_eq!(s.signal(Signal::Traces).dropped(DropReason::Evicted), 200);
    drop(hold);
    p.flush().await;
    let got: HashSet<u64> = collector.delivered().into_iter().collect();
    assert!((70_000..70_300).all(|i| got.contains(&i)));
    assert_eq!(got.len(), 1000);
    assert_adds_up(&p.stats());
}

#[tokio::test]
async fn a_joined_batch_refused_as_invalid_is_bisected_so_only_the_bad_request_fails() {
    let collector = Collector::default();
    let hold = collector.hold.clone().write_owned().await;
    let p = Pipeline::builder(config(10_000, 100_000, 64 << 20, Overflow::DropNewest))
        .build(collector.service())
        .unwrap();
    let tx = p.sender();
    // 16 senders' requests joined into one batch; request 11 is poisoned.
    for i in 0..16u64 {
        let name = if i == 11 { "poison" } else { "innocent" };
        tx.admit_request(request(i * 10, 10, name)).await.unwrap();
    }
    drop(hold);
    p.flush().await;
    let s = p.stats();
    let t = s.signal(Signal::Traces);
    assert_eq!(t.sent, 150, "{t:?}");
    assert_eq!(t.failed(FailReason::Permanent), 10, "{t:?}");
    let mut got = collector.delivered();
    got.sort_unstable();
    let want: Vec<u64> = (0..160).filter(|i| !(110..120).contains(i)).collect();
    assert_eq!(got, want);
    // log2(16) levels: a handful of calls, not one per request.
    let calls = *collector.calls.lock().unwrap();
    assert!(calls <= 2 * 4 + 1, "{calls} calls");
    assert_adds_up(&s);
}

#[tokio::test]
async fn a_permanent_error_that_is_not_about_the_data_fails_the_batch_without_bisecting() {
    let calls = Arc::new(Mutex::new(0u64));
    let c = calls.clone();
    let svc = tower::service_fn(move |_b: Batch| {
        *c.lock().unwrap() += 1;
        async {
            Err::<ExportResponse, _>(TestError {
                class: Retryability::Permanent,
                invalid: false,
            })
        }
    });
    let p = Pipeline::builder(config(10_000, 100_000, 64 << 20, Overflow::DropNewest))
        .build(svc)
        .unwrap();
    let tx = p.sender();
    for i in 0..8u64 {
        tx.try_send_batch(request(i * 10, 10, "x")).unwrap();
    }
    p.flush().await;
    assert_eq!(*calls.lock().unwrap(), 1);
    assert_eq!(
        p.stats()
            .signal(Signal::Traces)
            .failed(FailReason::Permanent),
        80
    );
}
