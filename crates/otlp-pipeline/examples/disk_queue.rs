//! otlp-pipeline alone, with its crash-safe disk queue: the first run's
//! collector never answers, so the spans stay on disk when it shuts down;
//! the second run finds them there and delivers them. The "collectors" are
//! plain `tower::Service<Batch>`s, no transport involved.
//!
//! Run it with `cargo run -p otlp-pipeline --features disk-queue --example disk_queue`.

#![allow(clippy::print_stdout)] // An example reports on stdout.

use std::{fmt, path::Path, time::Duration};

use bytes::Bytes;
use otlp_core::{Batch, Classify, ExportResponse, Retryability, Signal};
use otlp_pipeline::{
    DiskQueueConfig, FsyncPolicy, Group, Item, Pipeline, PipelineConfig, QueueConfig,
};

#[derive(Debug)]
enum Never {}

impl fmt::Display for Never {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {}
    }
}

impl Classify for Never {
    fn classify(&self) -> Retryability {
        match *self {}
    }
}

fn config(dir: &Path) -> PipelineConfig {
    PipelineConfig {
        queue: QueueConfig {
            persistent: Some(DiskQueueConfig {
                dir: dir.to_owned(),
                max_bytes: 64 << 20,
                fsync: FsyncPolicy::Always,
            }),
            ..QueueConfig::default()
        },
        ..PipelineConfig::default()
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;

    // Run 1: the collector is down (never answers).
    let down =
        tower::service_fn(|_: Batch| std::future::pending::<Result<ExportResponse, Never>>());
    let pipeline = Pipeline::builder(config(dir.path())).build(down)?;
    let tx = pipeline.sender();
    let resource = Group::resource(b"", "");
    let scope = Group::scope(b"\x0a\x03app", ""); // InstrumentationScope { name: "app" }
    for _ in 0..1000 {
        // An encoded Span named "s" (field 5).
        let span = Bytes::from_static(b"\x2a\x01s");
        tx.try_send(Item::new(
            Signal::Traces,
            resource.clone(),
            scope.clone(),
            span,
            1,
        ))?;
    }
    let report = pipeline.shutdown(Duration::from_millis(200)).await;
    println!(
        "run 1 (collector down): sent {}, left on disk {}",
        report.sent, report.left_queued
    );

    // Run 2: the collector is back; the queue recovers what the disk holds.
    let up = tower::service_fn(|batch: Batch| async move {
        println!("collector: {} spans", batch.items());
        Ok::<_, Never>(ExportResponse::success())
    });
    let pipeline = Pipeline::builder(config(dir.path())).build(up)?;
    pipeline.flush().await;
    let report = pipeline.shutdown(Duration::from_secs(5)).await;
    println!(
        "run 2 (collector up): recovered {}, sent {}, left {}",
        report.stats.signal(Signal::Traces).recovered,
        report.sent,
        report.left_queued
    );
    Ok(())
}
