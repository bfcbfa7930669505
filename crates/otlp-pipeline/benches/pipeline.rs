//! Criterion benchmarks: the producer's `try_send` cost, pipeline throughput
//! into a no-op service (memory queue, disk queue with fsync off and on), and
//! the batch encoding strategy (append encoded items vs build prost structs).
// Benches report percentiles that criterion does not compute on stderr.
#![allow(
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs
)]

use std::{convert::Infallible, hint::black_box, time::Duration};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value},
    resource::v1::Resource,
    trace::v1::{ResourceSpans, ScopeSpans, Span},
};
use otlp_core::{Batch, Classify, ExportResponse, Retryability, Signal};
use otlp_pipeline::{
    BatchConfig, Batcher, DiskQueueConfig, FsyncPolicy, Group, Item, Overflow, Pipeline,
    PipelineConfig, QueueConfig,
};
use prost::Message;

#[derive(Debug)]
struct NoError(Infallible);

impl std::fmt::Display for NoError {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {}
    }
}

impl Classify for NoError {
    fn classify(&self) -> Retryability {
        match self.0 {}
    }
}

fn span(i: u64) -> Span {
    Span {
        trace_id: vec![1; 16],
        span_id: i.to_le_bytes().to_vec(),
        name: "GET /api/orders".to_owned(),
        start_time_unix_nano: i,
        end_time_unix_nano: i + 1000,
        attributes: vec![KeyValue {
            key: "http.status_code".to_owned(),
            value: Some(AnyValue {
                value: Some(any_value::Value::IntValue(200)),
            }),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn resource() -> Resource {
    Resource {
        attributes: vec![KeyValue {
            key: "service.name".to_owned(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue("checkout".to_owned())),
            }),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "bench".to_owned(),
        version: "1.0".to_owned(),
        ..Default::default()
    }
}

fn items(n: u64) -> Vec<Item> {
    let r = Group::resource(&resource().encode_to_vec(), "");
    let s = Group::scope(&scope().encode_to_vec(), "");
    (0..n)
        .map(|i| {
            Item::new(
                Signal::Traces,
                r.clone(),
                s.clone(),
                Bytes::from(span(i).encode_to_vec()),
                1,
            )
        })
        .collect()
}

fn config(batch: u64, disk: Option<(&std::path::Path, FsyncPolicy)>) -> PipelineConfig {
    PipelineConfig {
        batch: BatchConfig {
            max_batch_size: batch,
            max_batch_bytes: 16 * 1024 * 1024,
            batch_timeout: Duration::from_secs(5),
        },
        queue: QueueConfig {
            max_items: 1 << 20,
            max_bytes: 512 * 1024 * 1024,
            overflow: Overflow::Block {
                deadline: Duration::from_secs(30),
            },
            persistent: disk.map(|(dir, fsync)| DiskQueueConfig {
                dir: dir.to_owned(),
                max_bytes: 4 * 1024 * 1024 * 1024,
                fsync,
            }),
        },
        workers: 2,
    }
}

fn noop() -> impl tower::Service<
    Batch,
    Response = ExportResponse,
    Error = NoError,
    Future = std::future::Ready<Result<ExportResponse, NoError>>,
> + Clone
+ Send
+ 'static {
    tower::service_fn(|b: Batch| {
        black_box(b);
        std::future::ready(Ok(ExportResponse::success()))
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The producer path: ns per `try_send`, items already encoded.
fn producer(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("producer_try_send");
    g.throughput(Throughput::Elements(1));
    for batch in [512u64, 8192] {
        let p = rt.block_on(async {
            Pipeline::builder(config(batch, None))
                .build(noop())
                .unwrap()
        });
        let tx = p.sender();
        let chunk = items(16_384);
        g.bench_function(BenchmarkId::from_parameter(batch), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let n = left.min(chunk.len() as u64) as usize;
                    let todo: Vec<Item> = chunk[..n].to_vec();
                    let start = std::time::Instant::now();
                    for item in todo {
                        let _ = black_box(tx.try_send(item));
                    }
                    total += start.elapsed();
                    rt.block_on(p.flush());
                    left -= n as u64;
                }
                total
            })
        });
        // Percentiles of single calls (timer overhead included).
        let mut lat = Vec::with_capacity(chunk.len());
        for _ in 0..4 {
            for item in chunk.clone() {
                let start = std::time::Instant::now();
                let _ = black_box(tx.try_send(item));
                lat.push(start.elapsed().as_nanos() as u64);
            }
            rt.block_on(p.flush());
        }
        lat.sort_unstable();
        eprintln!(
            "producer_try_send/{batch}: p50 {} ns, p99 {} ns (per call, incl. ~20 ns timer)",
            lat[lat.len() / 2],
            lat[lat.len() * 99 / 100]
        );
        rt.block_on(p.shutdown(Duration::from_secs(5)));
    }
    g.finish();
}

/// Items per second from producer to a no-op service, memory vs disk queue.
fn throughput(c: &mut Criterion) {
    let rt = runtime();
    let n = 65_536u64;
    let chunk = items(n);
    let mut g = c.benchmark_group("pipeline_throughput");
    g.throughput(Throughput::Elements(n));
    g.sample_size(10);
    for batch in [512u64, 8192] {
        for queue in ["memory", "disk_fsync_off", "disk_fsync_on"] {
            if queue != "memory" && !cfg!(feature = "disk-queue") {
                eprintln!("{queue}: skipped, run with --features disk-queue");
                continue;
            }
            let dir = tempfile::tempdir().unwrap();
            let disk = match queue {
                "memory" => None,
                "disk_fsync_off" => Some((dir.path(), FsyncPolicy::Never)),
                _ => Some((dir.path(), FsyncPolicy::Always)),
            };
            let p = rt.block_on(async {
                Pipeline::builder(config(batch, disk))
                    .build(noop())
                    .unwrap()
            });
            let tx = p.sender();
            g.bench_function(BenchmarkId::new(queue, batch), |b| {
                b.iter(|| {
                    rt.block_on(async {
                        for item in chunk.iter().cloned() {
                            let _ = tx.send(item).await;
                        }
                        p.flush().await;
                    })
                })
            });
            rt.block_on(p.shutdown(Duration::from_secs(5)));
        }
    }
    g.finish();
}

/// Encoding strategy: append each encoded span to its group buffer and write
/// headers at cut time (what the batcher does), vs keep prost structs and
/// encode the whole request at cut time. Both start from a finished span.
fn encoding(c: &mut Criterion) {
    let mut g = c.benchmark_group("batch_encoding");
    let n = 512u64;
    g.throughput(Throughput::Elements(n));
    let spans: Vec<Span> = (0..n).map(span).collect();
    let r = Group::resource(&resource().encode_to_vec(), "");
    let s = Group::scope(&scope().encode_to_vec(), "");
    g.bench_function("append_encoded", |b| {
        b.iter(|| {
            let mut batcher = Batcher::new(Signal::Traces);
            for sp in &spans {
                let body = Bytes::from(sp.encode_to_vec());
                batcher.push(Item::new(Signal::Traces, r.clone(), s.clone(), body, 1));
            }
            black_box(batcher.cut())
        })
    });
    g.bench_function("prost_at_cut", |b| {
        // The producer hands over owned spans: cloning them is setup, not measured.
        b.iter_batched(
            || spans.clone(),
            |owned| {
                let mut held = Vec::new();
                for sp in owned {
                    held.push(sp);
                }
                let req = ExportTraceServiceRequest {
                    resource_spans: vec![ResourceSpans {
                        resource: Some(resource()),
                        scope_spans: vec![ScopeSpans {
                            scope: Some(scope()),
                            spans: held,
                            schema_url: String::new(),
                        }],
                        schema_url: String::new(),
                    }],
                };
                black_box(Bytes::from(req.encode_to_vec()))
            },
            criterion::BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, encoding, producer, throughput);
criterion_main!(benches);
