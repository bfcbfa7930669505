//! Tests of the self-metrics registry.

use std::time::Duration;

use otlp_core::{DropReason, FailReason, Observer, Signal};

use super::*;

#[test]
fn every_name_constant_appears_in_the_text_exposition() {
    let m = SelfMetrics::new();
    m.record_request("traces", "ok", Duration::from_millis(5));
    let text = m.encode_text().unwrap();
    for name in names::ALL {
        assert!(
            text.contains(&format!("# TYPE {name} ")),
            "{name} missing from:\n{text}"
        );
    }
    assert!(text.contains("otlp_request_duration_seconds_bucket{signal=\"traces\",le="));
    assert!(text.contains("otlp_build_info{version=\""));
}

#[test]
fn observer_calls_land_in_per_signal_and_reason_counters() {
    let m = SelfMetrics::new();
    m.accepted(Signal::Logs, 7);
    m.sent(Signal::Logs, 4);
    m.dropped(Signal::Logs, DropReason::QueueFull, 2);
    m.failed(Signal::Logs, FailReason::Rejected, 1);
    m.queue_depth(Signal::Metrics, 30, 4096);
    assert_eq!(m.sent_items(Signal::Logs), 4);
    assert_eq!(m.dropped_items(Signal::Logs, DropReason::QueueFull), 2);
    assert_eq!(m.dropped_items(Signal::Traces, DropReason::QueueFull), 0);
    let text = m.encode_text().unwrap();
    assert!(text.contains("otlp_items_accepted_total{signal=\"logs\"} 7"));
    assert!(text.contains("otlp_items_dropped_total{signal=\"logs\",reason=\"queue_full\"} 2"));
    assert!(text.contains("otlp_items_failed_total{signal=\"logs\",reason=\"rejected\"} 1"));
    assert!(text.contains("otlp_partial_success_rejected_items_total{signal=\"logs\"} 1"));
    assert!(text.contains("otlp_queue_items{signal=\"metrics\"} 30"));
    assert!(text.contains("otlp_queue_bytes{signal=\"metrics\"} 4096"));
}

#[test]
fn every_bounded_label_set_is_exported_before_any_event() {
    let text = SelfMetrics::new().encode_text().unwrap();
    for s in Signal::ALL {
        for r in DropReason::ALL {
            let series = format!(
                "otlp_items_dropped_total{{signal=\"{}\",reason=\"{}\"}} 0",
                s.as_str(),
                r.as_str()
            );
            assert!(text.contains(&series), "{series}");
        }
        for r in FailReason::ALL {
            let series = format!(
                "otlp_items_failed_total{{signal=\"{}\",reason=\"{}\"}} 0",
                s.as_str(),
                r.as_str()
            );
            assert!(text.contains(&series), "{series}");
        }
    }
}

#[test]
fn plain_methods_set_their_gauges_and_counters() {
    let m = SelfMetrics::new();
    m.record_retry(Signal::Traces);
    m.record_retry(Signal::Traces);
    m.record_throttle(Signal::Metrics);
    m.record_partial_success(Signal::Traces, 3);
    m.record_recovery(RecoveryAction::Split, true);
    m.set_concurrency_limit(12);
    m.set_queue_capacity(2048, 1 << 20);
    m.connection_opened();
    m.connection_opened();
    m.connection_closed();
    m.record_request("metrics", "retryable", Duration::from_millis(50));
    let text = m.encode_text().unwrap();
    assert!(text.contains("otlp_retries_total{signal=\"traces\"} 2"));
    assert!(text.contains("otlp_throttles_total{signal=\"metrics\"} 1"));
    assert!(text.contains("otlp_partial_success_rejected_items_total{signal=\"traces\"} 3"));
    assert!(text.contains("otlp_recoveries_total{action=\"split\",outcome=\"ok\"} 1"));
    assert!(text.contains("otlp_concurrency_limit 12"));
    assert!(text.contains("otlp_queue_capacity_items 2048"));
    assert!(text.contains("otlp_queue_capacity_bytes 1048576"));
    assert!(text.contains("otlp_active_connections 1"));
    assert!(text.contains("otlp_requests_total{signal=\"metrics\",outcome=\"retryable\"} 1"));
    assert!(text.contains("otlp_errors_total{signal=\"metrics\",kind=\"retryable\"} 1"));
    assert_eq!(m.queue_level(), (0, 0, 2048, 1 << 20));
}

#[test]
fn openmetrics_exposition_ends_with_eof_marker() {
    let m = SelfMetrics::new();
    m.sent(Signal::Traces, 1);
    let text = m.encode_openmetrics().unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(text.contains("# UNIT otlp_memory_usage_bytes bytes"));
}

#[cfg(target_os = "linux")]
#[test]
fn scrape_reads_process_memory_from_the_os() {
    let m = SelfMetrics::new();
    let text = m.encode_text().unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("otlp_memory_usage_bytes "))
        .unwrap();
    let value: f64 = line.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(value > 0.0, "{line}");
}

#[test]
fn requests_of_known_and_unknown_labels_are_counted_once() {
    let m = SelfMetrics::new();
    m.record_request("traces", "ok", Duration::from_millis(1));
    m.record_request("traces", "too_large", Duration::from_millis(1));
    m.record_request("traces", "odd_outcome", Duration::from_millis(1));
    m.record_request("request", "ok", Duration::from_millis(1));
    let text = m.encode_text().unwrap();
    assert!(text.contains("otlp_requests_total{signal=\"traces\",outcome=\"ok\"} 1"));
    assert!(text.contains("otlp_requests_total{signal=\"traces\",outcome=\"too_large\"} 1"));
    assert!(text.contains("otlp_errors_total{signal=\"traces\",kind=\"too_large\"} 1"));
    assert!(text.contains("otlp_requests_total{signal=\"traces\",outcome=\"odd_outcome\"} 1"));
    assert!(text.contains("otlp_request_duration_seconds_count{signal=\"traces\"} 3"));
    assert!(text.contains("otlp_request_duration_seconds_count{signal=\"request\"} 1"));
}

#[test]
fn every_attempt_feeds_the_attempt_counters_up_gauge_and_exporter_health() {
    let m = SelfMetrics::new();
    m.record_attempt(Signal::Traces, "retryable");
    m.record_attempt(Signal::Traces, "retryable");
    let text = m.encode_text().unwrap();
    assert!(
        text.contains("otlp_export_attempts_total{signal=\"traces\",outcome=\"retryable\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("otlp_exporter_up{signal=\"traces\"} 0"),
        "{text}"
    );
    assert!(
        text.contains("otlp_exporter_up{signal=\"logs\"} 1"),
        "{text}"
    );
    assert_eq!(m.exporter_health().consecutive_failures(), 2);
    assert!(m.exporter_health().failing_for().is_some());
    m.record_attempt(Signal::Traces, "ok");
    let text = m.encode_text().unwrap();
    assert!(
        text.contains("otlp_exporter_up{signal=\"traces\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("otlp_export_attempts_total{signal=\"traces\",outcome=\"ok\"} 1"),
        "{text}"
    );
    assert_eq!(m.exporter_health().consecutive_failures(), 0);
    m.set_memory_limit(512 << 20);
    assert!(
        m.encode_text()
            .unwrap()
            .contains("otlp_memory_limit_bytes 536870912")
    );
}

#[test]
fn the_concurrency_gauge_reads_its_source_at_every_scrape() {
    let m = SelfMetrics::new();
    let limit = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(1));
    let l = limit.clone();
    m.set_concurrency_source(move || l.load(std::sync::atomic::Ordering::SeqCst));
    assert!(
        m.encode_text()
            .unwrap()
            .contains("otlp_concurrency_limit 1")
    );
    limit.store(6, std::sync::atomic::Ordering::SeqCst);
    assert!(
        m.encode_text()
            .unwrap()
            .contains("otlp_concurrency_limit 6")
    );
}

#[test]
fn backlog_gauges_show_the_oldest_age_and_the_outage_the_queue_absorbs() {
    let m = SelfMetrics::new();
    let t0 = std::time::Instant::now();
    let backlog = |intake_bytes, oldest| otlp_core::Backlog {
        oldest: [Some(Duration::from_secs(oldest)), None, None, None],
        free_bytes: 1_000_000,
        intake_bytes,
    };
    // One sample: no rate yet, so the queue absorbs any outage (+Inf).
    m.set_backlog(backlog(0, 3), t0);
    let text = m.encode_text().unwrap();
    assert!(
        text.contains("otlp_outage_absorbable_seconds +Inf"),
        "{text}"
    );
    assert!(
        text.contains("otlp_queue_oldest_item_age_seconds{signal=\"traces\"} 3.0"),
        "{text}"
    );
    assert!(
        text.contains("otlp_queue_oldest_item_age_seconds{signal=\"logs\"} 0.0"),
        "{text}"
    );
    // 10 s later 100 kB more were taken: 10 kB/s fills 1 MB in 100 s.
    m.set_backlog(backlog(100_000, 13), t0 + Duration::from_secs(10));
    assert_eq!(m.absorbable.get(), 100.0);
    // The rate is that of the last minute: older samples stop counting.
    m.set_backlog(backlog(100_000, 0), t0 + Duration::from_secs(80));
    m.set_backlog(backlog(100_000, 0), t0 + Duration::from_secs(150));
    assert_eq!(m.absorbable.get(), f64::INFINITY);
    // However often it is scraped, the samples stay bounded.
    for i in 0..10_000u64 {
        m.set_backlog(
            backlog(i, 0),
            t0 + Duration::from_secs(150) + Duration::from_millis(i),
        );
    }
    assert!(m.intake_samples.lock().unwrap().len() <= 257);
}

/// A balancer's backends show with an `endpoint` label while they are in
/// its set, and their series end when they leave it.
#[test]
fn balancer_backends_are_series_while_in_the_set() {
    let m = SelfMetrics::new();
    let set = std::sync::Arc::new(std::sync::Mutex::new(vec![
        BackendSample {
            endpoint: "http://10.0.0.1:4317".into(),
            sent: 12,
            failed: 3,
            in_flight: 4,
            up: true,
        },
        BackendSample {
            endpoint: "http://10.0.0.2:4317".into(),
            up: false,
            ..Default::default()
        },
    ]));
    let source = set.clone();
    m.add_balancer_source(Signal::Traces, move || BalancerSample {
        backends: source.lock().unwrap().clone(),
        duplicates: 7,
    });
    let text = m.encode_text().unwrap();
    for line in [
        "otlp_backend_items_sent_total{signal=\"traces\",endpoint=\"http://10.0.0.1:4317\"} 12",
        "otlp_backend_items_failed_total{signal=\"traces\",endpoint=\"http://10.0.0.1:4317\"} 3",
        "otlp_backend_in_flight_items{signal=\"traces\",endpoint=\"http://10.0.0.1:4317\"} 4",
        "otlp_backend_up{signal=\"traces\",endpoint=\"http://10.0.0.1:4317\"} 1",
        "otlp_backend_up{signal=\"traces\",endpoint=\"http://10.0.0.2:4317\"} 0",
        "otlp_items_duplicated_total{signal=\"traces\"} 7",
        "otlp_items_duplicated_total{signal=\"logs\"} 0",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
    set.lock().unwrap().remove(1);
    let text = m.encode_text().unwrap();
    assert!(
        !text.contains("10.0.0.2"),
        "a removed backend's series stayed"
    );
    assert!(m.encode_openmetrics().unwrap().contains("10.0.0.1"));
}
