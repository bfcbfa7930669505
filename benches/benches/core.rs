//! Criterion benches of otlp-core on encoded requests of the benchmark span
//! shape: joining batches, counting items on the wire, and splitting.

#![allow(clippy::expect_used)] // Setup failures in a bench have no caller to report to: panic with the reason.
#![allow(missing_docs)] // criterion_group! generates an undocumented `pub fn`.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use otlp_benches::shape;
use otlp_core::{Batch, Signal, count_items, validate};

/// Spans per request, the SDK's default export batch size.
const SPANS: u64 = 512;

fn encoded(n: u64) -> Bytes {
    shape::encode(&shape::trace_request(n)).expect("the benchmark shape encodes")
}

fn join(c: &mut Criterion) {
    let batch = Batch::new(Signal::Traces, encoded(SPANS), SPANS);
    let mut g = c.benchmark_group("batch_join");
    g.throughput(Throughput::Elements(2 * SPANS));
    g.bench_function("two_512_span_batches", |b| {
        b.iter(|| black_box(&batch).join(black_box(&batch)))
    });
    let many: Vec<Batch> = (0..16).map(|_| batch.clone()).collect();
    g.throughput(Throughput::Elements(16 * SPANS));
    g.bench_function("concat_16_batches_of_512", |b| {
        b.iter(|| Batch::concat(Signal::Traces, black_box(&many)))
    });
    g.finish();
}

fn count(c: &mut Criterion) {
    let bytes = encoded(SPANS);
    let mut g = c.benchmark_group("count_items");
    g.throughput(Throughput::Elements(SPANS));
    g.bench_function("traces_512_spans", |b| {
        b.iter(|| count_items(Signal::Traces, black_box(&bytes)))
    });
    let logs = shape::encode(&shape::logs_request(SPANS)).expect("the log shape encodes");
    g.bench_function("logs_512_records", |b| {
        b.iter(|| count_items(Signal::Logs, black_box(&logs)))
    });
    g.finish();
}

/// The schema check every received request gets before it is acknowledged
/// (compare with `count_items`, the walk it replaced on the receive path).
fn validation(c: &mut Criterion) {
    let bytes = encoded(SPANS);
    let mut g = c.benchmark_group("validate");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("traces_512_spans", |b| {
        b.iter(|| validate(Signal::Traces, black_box(&bytes)))
    });
    let logs = shape::encode(&shape::logs_request(SPANS)).expect("the log shape encodes");
    g.throughput(Throughput::Bytes(logs.len() as u64));
    g.bench_function("logs_512_records", |b| {
        b.iter(|| validate(Signal::Logs, black_box(&logs)))
    });
    g.finish();
}

fn split(c: &mut Criterion) {
    let batch = Batch::new(Signal::Traces, encoded(SPANS), SPANS);
    let mut g = c.benchmark_group("batch_split");
    g.throughput(Throughput::Elements(SPANS));
    g.bench_function("halve_512_spans", |b| {
        b.iter_batched(|| batch.clone(), |b| b.try_split(), BatchSize::SmallInput)
    });
    g.finish();
}

criterion_group!(benches, join, count, validation, split);
criterion_main!(benches);
