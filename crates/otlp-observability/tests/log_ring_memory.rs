#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The log ring's memory stays flat however many events pass through it.

use otlp_observability::LogRing;
use tracing_subscriber::layer::SubscriberExt;

#[test]
fn a_million_events_leave_the_ring_size_and_buffers_unchanged() {
    let ring = LogRing::new(1024, 256);
    let before = ring.retained_bytes();
    let subscriber = tracing_subscriber::registry().with(ring.clone());
    let long = "x".repeat(1000);
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..1_000_000u32 {
            if i % 1000 == 0 {
                // Messages longer than the limit must not grow a slot either.
                tracing::warn!(attempt = i, "{long}");
            } else {
                tracing::info!(batch = i, items = 512, "exported batch");
            }
        }
    });
    assert_eq!(ring.capacity(), 1024);
    assert_eq!(ring.retained_bytes(), before, "the ring grew");
    let analysis = ring.analysis();
    assert_eq!(analysis.total, 1_000_000);
    assert_eq!(analysis.by_level.warn, 1000);
    assert_eq!(analysis.retained, 1024);
    let newest = ring.entries(1).pop().unwrap();
    assert_eq!(newest.message, "exported batch batch=999999 items=512");
}
