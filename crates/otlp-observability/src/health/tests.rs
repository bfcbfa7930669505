//! Tests of the health checks and the composite checker.

use std::time::Duration;

use super::*;

#[derive(Debug)]
struct Never;

impl HealthCheck for Never {
    fn name(&self) -> &str {
        "never"
    }
    fn check(&self) -> CheckFuture<'_> {
        Box::pin(std::future::pending())
    }
}

#[tokio::test(start_paused = true)]
async fn exporter_check_goes_unhealthy_after_the_failure_streak_and_recovers() {
    let health = ExporterHealth::new();
    let checker = HealthChecker::new()
        .with_check(ExporterCheck::new(health.clone()).with_max_consecutive_failures(3));
    assert_eq!(checker.check_all().await.status, HealthStatus::Healthy);
    health.record_failure();
    assert_eq!(checker.check_all().await.status, HealthStatus::Degraded);
    assert_eq!(checker.check_all().await.http_status(), 200);
    health.record_failure();
    health.record_failure();
    let report = checker.check_all().await;
    assert_eq!(report.status, HealthStatus::Unhealthy);
    assert_eq!(report.http_status(), 503);
    assert!(
        report.checks[0]
            .result
            .message
            .contains("3 consecutive export attempts failed")
    );
    health.record_success();
    assert_eq!(checker.check_all().await.status, HealthStatus::Healthy);
}

#[tokio::test(start_paused = true)]
async fn exporter_check_is_unhealthy_once_attempts_failed_for_max_failing() {
    let health = ExporterHealth::new();
    let check = ExporterCheck::new(health.clone());
    health.record_success();
    // A long quiet spell with no attempts is not an outage.
    tokio::time::advance(Duration::from_secs(600)).await;
    assert_eq!(check.evaluate().status, HealthStatus::Healthy);
    // Two failed attempts 9 s apart: degraded, still within max_failing.
    health.record_failure();
    tokio::time::advance(Duration::from_secs(9)).await;
    health.record_failure();
    assert_eq!(check.evaluate().status, HealthStatus::Degraded);
    // Past 10 s of failing: unhealthy, whatever the attempt count.
    tokio::time::advance(Duration::from_secs(2)).await;
    let r = check.evaluate();
    assert_eq!(r.status, HealthStatus::Unhealthy);
    assert!(r.message.contains("failed for 11s"), "{}", r.message);
    // The first success ends the streak.
    health.record_success();
    assert_eq!(check.evaluate().status, HealthStatus::Healthy);
    assert_eq!(health.failing_for(), None);
}

#[tokio::test(start_paused = true)]
async fn an_overall_check_is_in_health_only() {
    let checker = HealthChecker::new()
        .with_probe(Probe::Overall, Never)
        .with_timeout(Duration::from_millis(10));
    assert!(checker.check_liveness().await.checks.is_empty());
    assert!(checker.check_readiness().await.checks.is_empty());
    assert_eq!(checker.check_all().await.checks.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn liveness_and_readiness_run_only_their_own_checks() {
    let health = ExporterHealth::new();
    for _ in 0..10 {
        health.record_failure();
    }
    let checker = HealthChecker::new()
        .with_check(ExporterCheck::new(health).with_max_consecutive_failures(5))
        .with_probe(Probe::Liveness, MemoryCheck::with_reader(100, || Ok(10)));
    let live = checker.check_liveness().await;
    assert_eq!(live.status, HealthStatus::Healthy);
    assert_eq!(live.checks.len(), 1);
    assert_eq!(live.checks[0].name, "memory");
    let ready = checker.check_readiness().await;
    assert_eq!(ready.status, HealthStatus::Unhealthy);
    assert_eq!(ready.checks[0].name, "exporter");
    assert_eq!(checker.check_all().await.checks.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_check_that_never_answers_is_unhealthy_after_the_timeout() {
    let checker = HealthChecker::new()
        .with_timeout(Duration::from_secs(1))
        .with_check(Never);
    let report = checker.check_all().await;
    assert_eq!(report.status, HealthStatus::Unhealthy);
    assert!(report.checks[0].result.message.contains("did not answer"));
}

#[test]
fn queue_check_grades_by_the_fuller_dimension() {
    let level = |items, bytes| {
        QueueCheck::new(move || QueueLevel {
            items,
            bytes,
            max_items: 100,
            max_bytes: 1000,
        })
        .evaluate()
        .status
    };
    assert_eq!(level(10, 100), HealthStatus::Healthy);
    assert_eq!(level(10, 850), HealthStatus::Degraded);
    assert_eq!(level(100, 0), HealthStatus::Unhealthy);
}

#[test]
fn queue_check_reads_the_self_metrics_gauges() {
    use otlp_core::{Observer, Signal};
    let metrics = std::sync::Arc::new(crate::SelfMetrics::new());
    metrics.set_queue_capacity(10, 0);
    metrics.queue_depth(Signal::Traces, 6, 0);
    metrics.queue_depth(Signal::Logs, 4, 0);
    let result = QueueCheck::from_metrics(metrics).evaluate();
    assert_eq!(result.status, HealthStatus::Unhealthy);
    assert_eq!(result.details["items"], Detail::Integer(10));
}

#[test]
fn memory_check_compares_usage_with_the_limit() {
    let status = |used| {
        MemoryCheck::with_reader(1000, move || Ok(used))
            .evaluate()
            .status
    };
    assert_eq!(status(100), HealthStatus::Healthy);
    assert_eq!(status(900), HealthStatus::Degraded);
    assert_eq!(status(1001), HealthStatus::Unhealthy);
}

#[test]
fn disk_check_reads_free_space_and_fails_on_a_missing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let free = DiskCheck::available_bytes(dir.path()).unwrap();
    assert!(free > 0);
    assert_eq!(
        DiskCheck::new(dir.path(), 1).evaluate().status,
        HealthStatus::Healthy
    );
    assert_eq!(
        DiskCheck::new(dir.path(), u64::MAX).evaluate().status,
        HealthStatus::Unhealthy
    );
    let missing = DiskCheck::new(dir.path().join("missing"), 1).evaluate();
    assert_eq!(missing.status, HealthStatus::Unhealthy);
    assert!(missing.message.contains("missing"), "{}", missing.message);
}

#[tokio::test]
async fn report_serializes_to_json_with_every_check() {
    let report = HealthChecker::new()
        .with_check(MemoryCheck::with_reader(1000, || Ok(1)))
        .check_all()
        .await;
    let json = report.to_json();
    assert!(
        json.starts_with(
            "{\"status\":\"healthy\",\"checks\":[{\"name\":\"memory\",\"status\":\"healthy\""
        ),
        "{json}"
    );
    assert!(json.contains("\"used_bytes\":1"), "{json}");
}
