//! Tests of the log ring.

use tracing_subscriber::layer::SubscriberExt;

use super::*;

fn with_ring(ring: &LogRing, f: impl FnOnce()) {
    let subscriber = tracing_subscriber::registry().with(ring.clone());
    tracing::subscriber::with_default(subscriber, f);
}

#[test]
fn keeps_only_the_newest_events_oldest_first() {
    let ring = LogRing::new(3, 64);
    with_ring(&ring, || {
        for i in 0..5 {
            tracing::info!("event {i}");
        }
    });
    let messages: Vec<_> = ring.entries(10).into_iter().map(|e| e.message).collect();
    assert_eq!(messages, ["event 2", "event 3", "event 4"]);
    let last: Vec<_> = ring.entries(1).into_iter().map(|e| e.message).collect();
    assert_eq!(last, ["event 4"]);
}

#[test]
fn long_messages_are_cut_at_a_character_boundary() {
    let ring = LogRing::new(2, 10);
    with_ring(&ring, || tracing::warn!("ééééééééé"));
    let e = &ring.entries(1)[0];
    assert!(e.truncated);
    assert_eq!(e.message, "ééééé");
    assert_eq!(e.level, "WARN");
}

#[test]
fn analysis_counts_levels_errors_and_targets() {
    let ring = LogRing::new(100, 128);
    with_ring(&ring, || {
        tracing::error!(target: "exporter", code = 14, "unavailable");
        tracing::error!(target: "exporter", "timeout");
        tracing::warn!(target: "queue", "80% full");
        tracing::info!(target: "queue", "flushed");
        tracing::info!(target: "queue", "flushed");
        tracing::debug!(target: "other", "detail");
    });
    ring.push(Level::INFO, "direct", "pushed");
    let a = ring.analysis();
    assert_eq!(a.total, 7);
    assert_eq!(a.by_level.error, 2);
    assert_eq!(a.by_level.warn, 1);
    assert_eq!(a.by_level.info, 3);
    assert_eq!(a.by_level.debug, 1);
    assert_eq!(a.retained, 7);
    assert_eq!(a.recent_errors.len(), 2);
    assert_eq!(a.recent_errors[0].message, "timeout");
    assert_eq!(a.recent_errors[1].message, "unavailable code=14");
    assert_eq!(a.top_targets[0], ("queue", 3));
    assert_eq!(a.top_targets[1], ("exporter", 2));
    let json = ring.to_json(2);
    assert!(json.contains("\"events\":[{"), "{json}");
    assert!(json.contains("\"message\":\"pushed\""), "{json}");
}
