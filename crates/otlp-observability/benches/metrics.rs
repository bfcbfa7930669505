//! What recording costs: counter increments, histogram observations, the
//! `Observer` calls the pipeline makes per batch, a log ring push and a
//! stage profiler record.
//!
//! Run with `cargo bench -p otlp-observability --bench metrics`.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::{hint::black_box, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use otlp_core::{DropReason, Observer, Signal};
use otlp_observability::{LogRing, SelfMetrics, Stage, StageProfiler};
use tracing_subscriber::layer::SubscriberExt;

fn recording(c: &mut Criterion) {
    let metrics = SelfMetrics::new();
    let mut g = c.benchmark_group("self_metrics");
    g.bench_function("observer_sent", |b| {
        b.iter(|| metrics.sent(black_box(Signal::Traces), black_box(512)))
    });
    g.bench_function("observer_dropped", |b| {
        b.iter(|| metrics.dropped(black_box(Signal::Logs), black_box(DropReason::Evicted), 1))
    });
    g.bench_function("observer_queue_depth", |b| {
        b.iter(|| metrics.queue_depth(black_box(Signal::Metrics), black_box(100), black_box(4096)))
    });
    g.bench_function("record_retry_counter_inc", |b| {
        b.iter(|| metrics.record_retry(black_box(Signal::Traces)))
    });
    g.bench_function("record_request_counter_and_histogram", |b| {
        b.iter(|| {
            metrics.record_request(
                black_box("traces"),
                "ok",
                black_box(Duration::from_millis(3)),
            )
        })
    });
    g.bench_function("encode_text_scrape", |b| b.iter(|| metrics.encode_text()));
    g.finish();

    let mut g = c.benchmark_group("log_ring");
    let ring = LogRing::default();
    g.bench_function("push_direct", |b| {
        b.iter(|| {
            ring.push(
                tracing::Level::INFO,
                "bench",
                black_box("exported batch of 512 spans"),
            )
        })
    });
    let subscriber = tracing_subscriber::registry().with(ring.clone());
    tracing::subscriber::with_default(subscriber, || {
        g.bench_function("tracing_event_with_fields", |b| {
            b.iter(|| tracing::info!(items = black_box(512u64), "exported batch"))
        });
    });
    g.finish();

    let profiler = StageProfiler::new();
    let mut g = c.benchmark_group("stage_profiler");
    g.bench_function("record", |b| {
        b.iter(|| {
            profiler.record(
                black_box(Stage::Encode),
                black_box(Duration::from_micros(37)),
            )
        })
    });
    g.bench_function("timer_guard", |b| {
        b.iter(|| drop(profiler.time(Stage::Send)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20);
    targets = recording
}
criterion_main!(benches);
