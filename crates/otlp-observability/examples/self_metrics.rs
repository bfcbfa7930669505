//! otlp-observability alone: the self-metrics a pipeline feeds through
//! `otlp_core::Observer`, the readiness decision the health checks make
//! from them, and the Prometheus text an admin server would serve at
//! `/metrics`. Here the events are reported by hand, as any producer of
//! your own could.
//!
//! Run it with `cargo run -p otlp-observability --example self_metrics`.

#![allow(clippy::print_stdout)] // An example reports on stdout.

use std::sync::Arc;

use otlp_core::{DropReason, Observer, Signal};
use otlp_observability::{ExporterCheck, HealthChecker, QueueCheck, SelfMetrics};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), otlp_observability::ObservabilityError> {
    let metrics = Arc::new(SelfMetrics::new());
    metrics.accepted(Signal::Traces, 1000);
    metrics.sent(Signal::Traces, 990);
    metrics.dropped(Signal::Traces, DropReason::QueueFull, 10);

    let health = HealthChecker::new()
        .with_check(ExporterCheck::new(metrics.exporter_health()))
        .with_check(QueueCheck::from_metrics(metrics.clone()));
    let ready = health.check_readiness().await;
    println!(
        "readiness: {:?} (HTTP {})",
        ready.status,
        ready.http_status()
    );

    let text = metrics.encode_text()?;
    // The traces series that moved (every series is pre-registered at 0).
    let moved = |l: &&str| !l.starts_with('#') && !l.ends_with(" 0") && !l.ends_with(" 0.0");
    for line in text
        .lines()
        .filter(|l| l.contains("signal=\"traces\""))
        .filter(moved)
    {
        println!("{line}");
    }
    Ok(())
}
