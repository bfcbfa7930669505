//! Producer latency with the disk queue: how long `Sender::send` takes, at
//! p50 / p99 / p99.9 / max, while four producers write through a pipeline
//! whose batches go to disk under each fsync policy.
//!
//! Criterion reports means; this bench is about the tail (a producer that
//! waits on another's `fsync`), so it records every call and prints the
//! percentiles. Run it with `cargo bench -p otlp-benches --bench disk_queue`.

#![allow(clippy::expect_used, clippy::print_stdout)] // A bench's setup failure has no caller; its report is stdout.
#![allow(missing_docs)]

use std::{
    fmt,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use otlp_benches::shape;
use otlp_core::{Batch, Classify, ExportResponse, Retryability, Signal};
use otlp_pipeline::{
    BatchConfig, DiskQueueConfig, FsyncPolicy, Group, Item, Overflow, Pipeline, PipelineConfig,
    QueueConfig,
};
use prost::Message;

const PRODUCERS: usize = 4;
const PER_PRODUCER: usize = 25_000;

#[derive(Debug)]
struct Never;

impl fmt::Display for Never {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("never")
    }
}

impl Classify for Never {
    fn classify(&self) -> Retryability {
        Retryability::Retryable
    }
}

fn config(dir: &std::path::Path, fsync: FsyncPolicy) -> PipelineConfig {
    PipelineConfig {
        batch: BatchConfig {
            max_batch_size: 512,
            max_batch_bytes: 1024 * 1024,
            batch_timeout: Duration::from_millis(200),
        },
        queue: QueueConfig {
            max_items: 200_000,
            max_bytes: 64 * 1024 * 1024,
            overflow: Overflow::Block {
                deadline: Duration::from_secs(30),
            },
            persistent: Some(DiskQueueConfig {
                dir: dir.to_owned(),
                max_bytes: 1 << 30,
                fsync,
            }),
        },
        workers: 2,
    }
}

/// Nanoseconds at quantile `q` of sorted `v`.
fn at(v: &[u64], q: f64) -> f64 {
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v.get(i).copied().unwrap_or(0) as f64 / 1000.0
}

async fn run(fsync: FsyncPolicy) -> (Vec<u64>, Duration) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    // The collector takes a moment per batch, as a real one does.
    let svc = tower::service_fn(|_b: Batch| async {
        tokio::time::sleep(Duration::from_micros(200)).await;
        Ok::<_, Never>(ExportResponse::success())
    });
    let p = Pipeline::builder(config(dir.path(), fsync))
        .build(svc)
        .expect("the bench pipeline builds");
    let resource = Group::resource(&shape::proto_resource().encode_to_vec(), "");
    let scope = Group::scope(&shape::proto_scope().encode_to_vec(), "");
    let span = Bytes::from(shape::proto_span([1; 16], [2; 8], 1).encode_to_vec());
    let item = Arc::new(Item::new(Signal::Traces, resource, scope, span, 1));
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..PRODUCERS)
        .map(|_| {
            let tx = p.sender();
            let item = item.clone();
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(PER_PRODUCER);
                for _ in 0..PER_PRODUCER {
                    let t = Instant::now();
                    tx.send((*item).clone()).await.expect("block policy admits");
                    lat.push(t.elapsed().as_nanos() as u64);
                    // Producers interleave instead of one running alone.
                    tokio::task::yield_now().await;
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::with_capacity(PRODUCERS * PER_PRODUCER);
    for t in tasks {
        all.extend(t.await.expect("a producer task"));
    }
    let took = t0.elapsed();
    let _ = p.shutdown(Duration::from_secs(10)).await;
    all.sort_unstable();
    (all, took)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    println!(
        "disk queue producer latency: {PRODUCERS} producers x {PER_PRODUCER} spans, batches of 512, 2 workers, collector 200 us per batch"
    );
    println!("| fsync | p50 us | p99 us | p99.9 us | max us | calls >= 1 ms | spans/s |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, fsync) in [
        ("always", FsyncPolicy::Always),
        ("interval 1s", FsyncPolicy::Interval(Duration::from_secs(1))),
        (
            "interval 10ms",
            FsyncPolicy::Interval(Duration::from_millis(10)),
        ),
        ("never", FsyncPolicy::Never),
    ] {
        let (lat, took) = rt.block_on(run(fsync));
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {:.0} |",
            at(&lat, 0.5),
            at(&lat, 0.99),
            at(&lat, 0.999),
            at(&lat, 1.0),
            lat.iter().filter(|&&ns| ns >= 1_000_000).count(),
            lat.len() as f64 / took.as_secs_f64()
        );
    }
}
