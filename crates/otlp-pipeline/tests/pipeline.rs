//! Pipeline behaviour: batching, overflow policies, memory bound, workers,
//! flush and shutdown, and the accounting invariant under concurrency.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest, trace::v1::Span,
};
use otlp_core::{Batch, DropReason, ExportResponse, FailReason, Observer, Retryability, Signal};
use otlp_pipeline::{
    BatchConfig, Group, Item, Overflow, Pipeline, PipelineConfig, PipelineError, QueueConfig,
    TrySendError,
};
use proptest::prelude::*;
use prost::Message;

mod common;

use common::{TestError, assert_adds_up, ok_service, stalled};

/// Counts every observer event, to compare with `Stats`.
#[derive(Debug, Default)]
struct Tally {
    accepted: AtomicU64,
    sent: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    max_depth_bytes: AtomicU64,
}

impl Observer for Tally {
    fn accepted(&self, _: Signal, n: u64) {
        self.accepted.fetch_add(n, Ordering::Relaxed);
    }
    fn sent(&self, _: Signal, n: u64) {
        self.sent.fetch_add(n, Ordering::Relaxed);
    }
    fn dropped(&self, _: Signal, _: DropReason, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
    }
    fn failed(&self, _: Signal, _: FailReason, n: u64) {
        self.failed.fetch_add(n, Ordering::Relaxed);
    }
    fn queue_depth(&self, _: Signal, _: u64, bytes: u64) {
        self.max_depth_bytes.fetch_max(bytes, Ordering::Relaxed);
    }
}

fn span_item(signal: Signal, i: u64) -> Item {
    let span = Span {
        name: format!("span-{i}"),
        start_time_unix_nano: i,
        ..Default::default()
    };
    Item::new(
        signal,
        Group::resource(b"\x0a\x00", ""),
        Group::scope(b"\x0a\x01s", ""),
        Bytes::from(span.encode_to_vec()),
        1,
    )
}

fn config(batch: u64, max_items: u64, max_bytes: u64, overflow: Overflow) -> PipelineConfig {
    PipelineConfig {
        batch: BatchConfig {
            max_batch_size: batch,
            max_batch_bytes: 1024 * 1024,
            batch_timeout: Duration::from_millis(200),
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

#[test]
fn build_outside_a_runtime_is_an_error_not_a_panic() {
    let err = Pipeline::builder(PipelineConfig::default())
        .build(ok_service())
        .unwrap_err();
    assert!(matches!(err, PipelineError::NoRuntime));
    assert!(err.to_string().contains("inside a tokio runtime"), "{err}");
}

#[tokio::test(flavor = "current_thread")]
async fn invalid_config_is_refused_with_every_problem() {
    let c = PipelineConfig {
        workers: 0,
        batch: BatchConfig {
            batch_timeout: Duration::ZERO,
            ..BatchConfig::default()
        },
        ..PipelineConfig::default()
    };
    let err = Pipeline::builder(c).build(ok_service()).unwrap_err();
    let PipelineError::InvalidConfig { problems } = err else {
        panic!("wrong error");
    };
    assert_eq!(problems.len(), 2, "{problems:?}");
}

#[tokio::test(start_paused = true)]
async fn batches_are_cut_at_max_batch_size_and_decode_as_requests() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let svc = {
        let seen = seen.clone();
        tower::service_fn(move |b: Batch| {
            seen.lock().unwrap().push(b);
            async { Ok::<_, TestError>(ExportResponse::success()) }
        })
    };
    let p = Pipeline::builder(config(4, 1000, 1 << 20, Overflow::DropNewest))
        .build(svc)
        .unwrap();
    let tx = p.sender();
    for i in 0..10 {
        tx.try_send(span_item(Signal::Traces, i)).unwrap();
    }
    p.flush().await;
    let batches = seen.lock().unwrap().clone();
    let sizes: Vec<u64> = batches.iter().map(Batch::items).collect();
    assert_eq!(
        sizes,
        vec![4, 4, 2],
        "two full batches, then the flushed rest"
    );
    let names: Vec<String> = batches
        .iter()
        .flat_map(|b| {
            let r = ExportTraceServiceRequest::decode(b.bytes().clone()).unwrap();
            assert_eq!(r.resource_spans.len(), 1);
            r.resource_spans[0].scope_spans[0]
                .spans
                .iter()
                .map(|s| s.name.clone())
                .collect::<Vec<_>>()
        })
        .collect();
    let want: Vec<String> = (0..10).map(|i| format!("span-{i}")).collect();
    assert_eq!(names, want);
    assert_eq!(p.stats().signal(Signal::Traces).sent, 10);
}

#[tokio::test(start_paused = true)]
async fn open_batch_is_cut_after_batch_timeout() {
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = {
        let calls = calls.clone();
        tower::service_fn(move |_b: Batch| {
            calls.fetch_add(1, Ordering::Relaxed);
            async { Ok::<_, TestError>(ExportResponse::success()) }
        })
    };
    let p = Pipeline::builder(config(100, 1000, 1 << 20, Overflow::DropNewest))
        .build(svc)
        .unwrap();
    p.sender().try_send(span_item(Signal::Logs, 1)).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        calls.load(Ordering::Relaxed),
        0,
        "not cut before the timeout"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        calls.load(Ordering::Relaxed),
        1,
        "cut once the timeout passed"
    );
    assert_eq!(p.stats().signal(Signal::Logs).sent, 1);
}

#[tokio::test(start_paused = true)]
async fn full_queue_drops_newest_and_counts_it() {
    let p = Pipeline::builder(config(2, 6, 1 << 20, Overflow::DropNewest))
        .build(stalled())
        .unwrap();
    let tx = p.sender();
    let mut dropped = 0;
    for i in 0..10 {
        match tx.try_send(span_item(Signal::Traces, i)) {
            Ok(()) => {}
            Err(e) => {
                assert_eq!(e.reason(), DropReason::QueueFull);
                assert!(e.to_string().contains("memory limit exceeded"), "{e}");
                dropped += 1;
            }
        }
    }
    assert_eq!(dropped, 4);
    let s = p.stats();
    let t = s.signal(Signal::Traces);
    assert_eq!(t.accepted, 10);
    assert_eq!(t.dropped(DropReason::QueueFull), 4);
    assert_eq!(t.queued_items, 6);
    assert_adds_up(&s);
}

#[tokio::test(start_paused = true)]
async fn drop_oldest_evicts_queued_batches_and_counts_them() {
    // One worker holds the first batch forever; later batches wait in the queue.
    let p = Pipeline::builder(config(2, 6, 1 << 20, Overflow::DropOldest))
        .build(stalled())
        .unwrap();
    let tx = p.sender();
    for i in 0..6 {
        tx.try_send(span_item(Signal::Traces, i)).unwrap();
    }
    tokio::task::yield_now().await;
    for i in 6..10 {
        tx.try_send(span_item(Signal::Traces, i)).unwrap();
    }
    let s = p.stats();
    let t = s.signal(Signal::Traces);
    assert_eq!(t.dropped(DropReason::Evicted), 4, "{t:?}");
    assert_eq!(t.queued_items, 6);
    assert_adds_up(&s);
}

#[tokio::test(start_paused = true)]
async fn block_waits_for_room_then_times_out_and_counts_it() {
    let deadline = Duration::from_secs(2);
    let p = Pipeline::builder(config(2, 4, 1 << 20, Overflow::Block { deadline }))
        .build(stalled())
        .unwrap();
    let tx = p.sender();
    for i in 0..4 {
        tx.send(span_item(Signal::Metrics, i)).await.unwrap();
    }
    let start = tokio::time::Instant::now();
    let err = tx.send(span_item(Signal::Metrics, 5)).await.unwrap_err();
    assert_eq!(err.reason(), DropReason::BlockTimeout);
    assert_eq!(start.elapsed(), deadline, "waited exactly the deadline");
    // offer hands the item back under `block`, neither accepted nor dropped.
    let accepted = p.stats().signal(Signal::Metrics).accepted;
    match tx.offer(span_item(Signal::Metrics, 7)) {
        Err(otlp_pipeline::Offer::Full(item)) => assert_eq!(item.count, 1),
        other => panic!("expected the item back, got {other:?}"),
    }
    assert_eq!(p.stats().signal(Signal::Metrics).accepted, accepted);
    // try_send never waits, even under `block`.
    let err = tx.try_send(span_item(Signal::Metrics, 6)).unwrap_err();
    assert_eq!(err.reason(), DropReason::QueueFull);
    let s = p.stats();
    assert_eq!(s.signal(Signal::Metrics).dropped_total(), 2);
    assert_adds_up(&s);
}

#[tokio::test(start_paused = true)]
async fn blocked_producer_proceeds_when_the_collector_drains() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let svc = {
        let gate = gate.clone();
        tower::service_fn(move |_b: Batch| {
            let gate = gate.clone();
            async move {
                gate.acquire().await.unwrap().forget();
                Ok::<_, TestError>(ExportResponse::success())
            }
        })
    };
    let deadline = Duration::from_secs(10);
    let p = Pipeline::builder(config(2, 4, 1 << 20, Overflow::Block { deadline }))
        .build(svc)
        .unwrap();
    let tx = p.sender();
    for i in 0..4 {
        tx.send(span_item(Signal::Traces, i)).await.unwrap();
    }
    let waiter = tokio::spawn({
        let tx = tx.clone();
        async move { tx.send(span_item(Signal::Traces, 9)).await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !waiter.is_finished(),
        "the producer waits while the queue is full"
    );
    gate.add_permits(10);
    waiter.await.unwrap().unwrap();
    p.flush().await;
    assert_eq!(p.stats().signal(Signal::Traces).sent, 5);
}

#[tokio::test(start_paused = true)]
async fn stalled_collector_never_grows_memory_past_the_limit() {
    let max_bytes = 8 * 1024;
    let tally = Arc::new(Tally::default());
    let p = Pipeline::builder(config(16, 1_000_000, max_bytes, Overflow::DropOldest))
        .with_observer(tally.clone())
        .build(stalled())
        .unwrap();
    let tx = p.sender();
    let mut peak = 0;
    // Producers push hard for a while; the collector never answers.
    for round in 0..50u64 {
        for i in 0..200 {
            let _ = tx.try_send(span_item(Signal::Traces, round * 1000 + i));
            let held = p.stats().total().queued_bytes;
            peak = peak.max(held);
            assert!(held <= max_bytes, "held {held} bytes > limit {max_bytes}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(tally.max_depth_bytes.load(Ordering::Relaxed) <= max_bytes);
    assert!(
        peak > max_bytes / 2,
        "the test did fill the queue (peak {peak})"
    );
    let s = p.stats();
    assert!(s.signal(Signal::Traces).dropped(DropReason::Evicted) > 0);
    assert_adds_up(&s);
}

#[tokio::test(start_paused = true)]
async fn shutdown_with_dead_collector_returns_by_its_deadline() {
    let p = Pipeline::builder(config(4, 1000, 1 << 20, Overflow::DropNewest))
        .build(stalled())
        .unwrap();
    let tx = p.sender();
    for i in 0..10 {
        tx.try_send(span_item(Signal::Logs, i)).unwrap();
    }
    let start = tokio::time::Instant::now();
    let report = p.shutdown(Duration::from_secs(3)).await;
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    assert!(!report.drained);
    assert_eq!(report.sent, 0);
    assert_eq!(report.left_queued, 0);
    let l = report.stats.signal(Signal::Logs);
    assert_eq!(l.dropped(DropReason::Shutdown), 10);
    assert_eq!(l.queued_items, 0);
    assert_adds_up(&report.stats);
    // Intake is closed: later items are counted as dropped (shutdown).
    assert_eq!(
        tx.try_send(span_item(Signal::Logs, 99)),
        Err(TrySendError::Closed)
    );
    assert_eq!(p.shutdown(Duration::from_secs(1)).await.sent, 0);
}

#[tokio::test(start_paused = true)]
async fn export_outcomes_are_accounted_by_classification() {
    // Batches of one item; the span's start time picks the outcome.
    let svc = tower::service_fn(|b: Batch| async move {
        let r = ExportTraceServiceRequest::decode(b.bytes().clone()).unwrap();
        let n = r.resource_spans[0].scope_spans[0].spans.len() as u64;
        match r.resource_spans[0].scope_spans[0].spans[0].start_time_unix_nano {
            0 => Ok(ExportResponse::success()),
            1 => Ok(ExportResponse::partial(n, "bad span")),
            2 => Err(TestError::new(Retryability::Permanent)),
            3 => Err(TestError::new(Retryability::TooLarge)),
            4 => Err(TestError::new(Retryability::Retryable)),
            _ => Err(TestError::new(Retryability::Throttled(
                Duration::from_secs(1),
            ))),
        }
    });
    let p = Pipeline::builder(config(1, 1000, 1 << 20, Overflow::DropNewest))
        .build(svc)
        .unwrap();
    for i in 0..6 {
        p.sender().try_send(span_item(Signal::Traces, i)).unwrap();
    }
    p.flush().await;
    let s = p.stats();
    let t = s.signal(Signal::Traces);
    assert_eq!(t.sent, 1);
    assert_eq!(t.failed(FailReason::Rejected), 1);
    assert_eq!(t.failed(FailReason::Permanent), 1);
    assert_eq!(t.failed(FailReason::TooLarge), 1);
    assert_eq!(t.failed(FailReason::RetriesExhausted), 2);
    assert_adds_up(&s);
}

#[tokio::test(start_paused = true)]
async fn raw_requests_are_joined_and_oversized_ones_split() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let svc = {
        let seen = seen.clone();
        tower::service_fn(move |b: Batch| {
            seen.lock().unwrap().push(b);
            async { Ok::<_, TestError>(ExportResponse::success()) }
        })
    };
    let mut c = config(1000, 10_000, 1 << 20, Overflow::DropNewest);
    c.batch.max_batch_bytes = 400;
    let p = Pipeline::builder(c).build(svc).unwrap();
    let tx = p.sender();
    let request = |n: u64| {
        let mut b = otlp_core::Batch::empty(Signal::Traces);
        for i in 0..n {
            let item = span_item(Signal::Traces, i);
            let mut bytes = Vec::new();
            // ResourceSpans { ScopeSpans { span } } written by hand.
            let scope_body = [&[0x12], &encode_len(item.body.len())[..], &item.body[..]].concat();
            let res_body = [&[0x12], &encode_len(scope_body.len())[..], &scope_body[..]].concat();
            bytes.extend_from_slice(&[0x0a]);
            bytes.extend_from_slice(&encode_len(res_body.len()));
            bytes.extend_from_slice(&res_body);
            b = b
                .join(&Batch::from_encoded(Signal::Traces, Bytes::from(bytes)).unwrap())
                .unwrap();
        }
        b
    };
    // Small requests are joined.
    tx.try_send_batch(request(2)).unwrap();
    tx.try_send_batch(request(3)).unwrap();
    // One request over max_batch_bytes is split until the parts fit.
    let big = request(60);
    assert!(big.byte_size() > 400);
    tx.try_send_batch(big).unwrap();
    p.flush().await;
    let batches = seen.lock().unwrap().clone();
    assert_eq!(batches.iter().map(Batch::items).sum::<u64>(), 65);
    assert!(batches.iter().all(|b| b.byte_size() <= 400));
    assert_eq!(
        batches[0].items(),
        5,
        "the two small requests travel as one"
    );
    assert_eq!(p.stats().signal(Signal::Traces).sent, 65);
}

fn encode_len(n: usize) -> Vec<u8> {
    let mut v = n as u64;
    let mut out = Vec::new();
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
    out
}

#[tokio::test(start_paused = true)]
async fn workers_can_be_added_and_removed_at_run_time() {
    let active = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let svc = {
        let (active, peak) = (active.clone(), peak.clone());
        tower::service_fn(move |_b: Batch| {
            let (active, peak) = (active.clone(), peak.clone());
            async move {
                let now = active.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
                active.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, TestError>(ExportResponse::success())
            }
        })
    };
    let p = Pipeline::builder(config(1, 10_000, 1 << 20, Overflow::DropNewest))
        .build(svc)
        .unwrap();
    assert_eq!(p.workers(), 1);
    let tx = p.sender();
    for i in 0..20 {
        tx.try_send(span_item(Signal::Traces, i)).unwrap();
    }
    p.flush().await;
    assert_eq!(peak.load(Ordering::SeqCst), 1);
    p.set_workers(4).unwrap();
    assert_eq!(p.workers(), 4);
    for i in 0..20 {
        tx.try_send(span_item(Signal::Traces, i)).unwrap();
    }
    p.flush().await;
    assert_eq!(
        peak.load(Ordering::SeqCst),
        4,
        "four workers export at once"
    );
    p.set_workers(2).unwrap();
    assert_eq!(p.workers(), 2);
    assert!(p.set_workers(0).is_err());
    assert_eq!(p.stats().signal(Signal::Traces).sent, 40);
}

#[tokio::test(start_paused = true)]
async fn workers_honour_poll_ready_back_pressure() {
    // A service that is never ready: no batch may leave the queue, so
    // drop_oldest can still evict every queued batch.
    #[derive(Clone)]
    struct NeverReady;
    impl tower::Service<Batch> for NeverReady {
        type Response = ExportResponse;
        type Error = TestError;
        type Future = std::future::Ready<Result<ExportResponse, TestError>>;
        fn poll_ready(
            &mut self,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), TestError>> {
            std::task::Poll::Pending
        }
        fn call(&mut self, _: Batch) -> Self::Future {
            panic!("called without being ready")
        }
    }
    let p = Pipeline::builder(config(2, 4, 1 << 20, Overflow::DropOldest))
        .build(NeverReady)
        .unwrap();
    let tx = p.sender();
    for i in 0..8 {
        tx.try_send(span_item(Signal::Traces, i)).unwrap();
        tokio::task::yield_now().await;
    }
    let t = p.stats().signal(Signal::Traces).clone();
    assert_eq!(t.dropped(DropReason::Evicted), 4, "{t:?}");
    let report = p.shutdown(Duration::from_secs(1)).await;
    assert_eq!(
        report
            .stats
            .signal(Signal::Traces)
            .dropped(DropReason::Shutdown),
        4
    );
    assert_adds_up(&report.stats);
}

// === accounting property ===

#[derive(Clone, Copy, Debug)]
enum Fate {
    Ok,
    Partial,
    Permanent,
    Retryable,
    TooLarge,
    Hang,
}

fn fate() -> impl Strategy<Value = Fate> {
    prop_oneof![
        4 => Just(Fate::Ok),
        1 => Just(Fate::Partial),
        1 => Just(Fate::Permanent),
        1 => Just(Fate::Retryable),
        1 => Just(Fate::TooLarge),
        1 => Just(Fate::Hang),
    ]
}

fn overflow() -> impl Strategy<Value = Overflow> {
    prop_oneof![
        Just(Overflow::DropNewest),
        Just(Overflow::DropOldest),
        Just(Overflow::Block {
            deadline: Duration::from_millis(5)
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn accounting_adds_up_under_concurrent_producers_and_failures(
        fates in prop::collection::vec(fate(), 1..16),
        producers in 1usize..4,
        per_producer in 1u64..150,
        batch in 1u64..20,
        max_items in 10u64..200,
        workers in 1usize..4,
        overflow in overflow(),
        flush_first in any::<bool>(),
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let calls = Arc::new(AtomicUsize::new(0));
            let delivered = Arc::new(AtomicU64::new(0));
            let svc = {
                let (calls, delivered, fates) = (calls.clone(), delivered.clone(), fates.clone());
                tower::service_fn(move |b: Batch| {
                    let n = calls.fetch_add(1, Ordering::Relaxed);
                    let fate = fates[n % fates.len()];
                    let delivered = delivered.clone();
                    async move {
                        tokio::task::yield_now().await;
                        match fate {
                            Fate::Ok => {
                                delivered.fetch_add(b.items(), Ordering::Relaxed);
                                Ok(ExportResponse::success())
                            }
                            Fate::Partial => {
                                delivered.fetch_add(b.items() / 2, Ordering::Relaxed);
                                Ok(ExportResponse::partial(b.items() - b.items() / 2, "half"))
                            }
                            Fate::Permanent => Err(TestError::new(Retryability::Permanent)),
                            Fate::Retryable => Err(TestError::new(Retryability::Retryable)),
                            Fate::TooLarge => Err(TestError::new(Retryability::TooLarge)),
                            Fate::Hang => std::future::pending().await,
                        }
                    }
                })
            };
            let tally = Arc::new(Tally::default());
            let mut c = config(batch, max_items, 1 << 20, overflow);
            c.workers = workers;
            let p = Pipeline::builder(c).with_observer(tally.clone()).build(svc).unwrap();
            let mut tasks = Vec::new();
            for id in 0..producers {
                let tx = p.sender();
                tasks.push(tokio::spawn(async move {
                    for i in 0..per_producer {
                        let signal = Signal::ALL[(i as usize + id) % 3];
                        let item = span_item(signal, i);
                        if i % 2 == 0 {
                            let _ = tx.try_send(item);
                        } else {
                            let _ = tx.send(item).await;
                        }
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            let live = p.stats();
            assert_adds_up(&live);
            let hangs = fates.iter().any(|f| matches!(f, Fate::Hang));
            if flush_first && !hangs {
                p.flush().await;
                let s = p.stats();
                assert_adds_up(&s);
                assert_eq!(s.total().queued_items, 0, "flush settles everything");
            }
            let report = p.shutdown(Duration::from_millis(200)).await;
            let s = &report.stats;
            assert_adds_up(s);
            let total = s.total();
            assert_eq!(total.accepted, producers as u64 * per_producer);
            assert_eq!(total.queued_items, 0, "memory queue leaves nothing queued");
            assert_eq!(report.left_queued, 0);
            assert_eq!(total.sent, delivered.load(Ordering::Relaxed));
            assert_eq!(report.sent + report.dropped + report.failed, total.accepted);
            // The observer saw exactly what the stats say.
            assert_eq!(tally.accepted.load(Ordering::Relaxed), total.accepted);
            assert_eq!(tally.sent.load(Ordering::Relaxed), total.sent);
            assert_eq!(tally.dropped.load(Ordering::Relaxed), total.dropped_total());
            assert_eq!(tally.failed.load(Ordering::Relaxed), total.failed_total());
        });
    }
}

#[tokio::test(start_paused = true)]
async fn item_larger_than_the_whole_queue_is_dropped_as_oversized() {
    let p = Pipeline::builder(config(
        10,
        1000,
        256,
        Overflow::Block {
            deadline: Duration::from_secs(1),
        },
    ))
    .build(ok_service())
    .unwrap();
    let mut big = span_item(Signal::Traces, 1);
    big.body = Bytes::from(vec![0x2a; 300]);
    let err = p.sender().send(big).await.unwrap_err();
    assert!(
        matches!(err, TrySendError::Oversized { limit: 256, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("raise queue.max_bytes"), "{err}");
    let s = p.stats();
    assert_eq!(s.signal(Signal::Traces).dropped(DropReason::Oversized), 1);
    assert_adds_up(&s);
}

#[tokio::test(start_paused = true)]
async fn flush_waits_for_earlier_items_even_when_later_ones_settle_first() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let svc = {
        let gate = gate.clone();
        tower::service_fn(move |b: Batch| {
            let gate = gate.clone();
            async move {
                let r = ExportTraceServiceRequest::decode(b.bytes().clone()).unwrap();
                if r.resource_spans[0].scope_spans[0].spans[0].start_time_unix_nano == 0 {
                    gate.acquire().await.unwrap().forget();
                }
                Ok::<_, TestError>(ExportResponse::success())
            }
        })
    };
    let mut c = config(1, 1000, 1 << 20, Overflow::DropNewest);
    c.workers = 2;
    let p = Arc::new(Pipeline::builder(c).build(svc).unwrap());
    let tx = p.sender();
    tx.try_send(span_item(Signal::Traces, 0)).unwrap();
    let flush = tokio::spawn({
        let p = p.clone();
        async move { p.flush().await }
    });
    tokio::task::yield_now().await;
    // Later items settle through the other worker while item 0 is stuck.
    for i in 1..10 {
        tx.try_send(span_item(Signal::Traces, i)).unwrap();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(p.stats().signal(Signal::Traces).sent, 9);
    assert!(!flush.is_finished(), "item 0 is not settled yet");
    gate.add_permits(1);
    flush.await.unwrap();
    assert_eq!(p.stats().signal(Signal::Traces).sent, 10);
}

#[tokio::test(start_paused = true)]
async fn backlog_shows_the_oldest_waiting_item_the_free_room_and_the_intake() {
    let p = Pipeline::builder(config(2, 100, 1 << 20, Overflow::DropNewest))
        .build(stalled())
        .unwrap();
    let empty = p.backlog();
    assert_eq!(empty.oldest, [None; Signal::COUNT]);
    assert_eq!((empty.free_bytes, empty.intake_bytes), (1 << 20, 0));
    let tx = p.sender();
    // Two batches of traces: one in flight (the service never answers), one queued.
    for i in 0..4 {
        tx.try_send(span_item(Signal::Traces, i)).unwrap();
    }
    tokio::time::sleep(Duration::from_secs(30)).await;
    tx.try_send(span_item(Signal::Logs, 9)).unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let b = p.backlog();
    let traces = b.oldest[Signal::Traces.index()].unwrap();
    assert!(traces >= Duration::from_secs(35), "{traces:?}");
    // The log record waits in its open batch (200 ms timeout, then the queue).
    let logs = b.oldest[Signal::Logs.index()].unwrap();
    assert!(
        (Duration::from_secs(4)..Duration::from_secs(6)).contains(&logs),
        "{logs:?}"
    );
    assert_eq!(b.oldest[Signal::Metrics.index()], None);
    assert!(b.intake_bytes > 0);
    // What is held (as charged, about what was taken) is no longer free.
    assert!(
        b.free_bytes < 1 << 20 && b.free_bytes > (1 << 20) - 2 * b.intake_bytes,
        "{b:?}"
    );
    // The probe reads the same, and nothing once the pipeline is gone.
    let probe = p.backlog_probe();
    assert_eq!(probe.read().map(|b| b.intake_bytes), Some(b.intake_bytes));
    p.shutdown(Duration::from_millis(100)).await;
    drop((tx, p));
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert_eq!(probe.read(), None);
}
