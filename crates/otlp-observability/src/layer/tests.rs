//! Tests of the `Metrics` layer, driven through `tower_test::mock`.

use std::{sync::Arc, time::Duration};

use otlp_core::{Classify, Payload, Retryability};
use tower::{Service, ServiceExt};
use tower_layer::Layer;
use tower_test::mock;

use super::*;

#[derive(Debug)]
struct Req(u64);

impl Payload for Req {
    fn items(&self) -> u64 {
        self.0
    }
    fn byte_size(&self) -> usize {
        0
    }
    fn label(&self) -> &'static str {
        "traces"
    }
}

#[derive(Debug)]
struct TestError(Retryability);

impl Classify for TestError {
    fn classify(&self) -> Retryability {
        self.0
    }
}

type MockService = tower::util::MapErr<mock::Mock<Req, ()>, fn(tower::BoxError) -> TestError>;

fn mock_error(_: tower::BoxError) -> TestError {
    TestError(Retryability::Retryable)
}

fn setup() -> (
    Arc<SelfMetrics>,
    Metrics<MockService>,
    mock::Handle<Req, ()>,
) {
    let metrics = Arc::new(SelfMetrics::new());
    let (mock, handle) = mock::pair::<Req, ()>();
    let mock: MockService = mock.map_err(mock_error as fn(tower::BoxError) -> TestError);
    (
        metrics.clone(),
        MetricsLayer::new(metrics).layer(mock),
        handle,
    )
}

#[tokio::test(start_paused = true)]
async fn success_counts_ok_and_resets_the_failure_streak() {
    let (metrics, svc, mut handle) = setup();
    let health = metrics.exporter_health();
    health.record_failure();
    let call = tokio::spawn(svc.oneshot(Req(3)));
    let (req, send) = handle.next_request().await.unwrap();
    assert_eq!(req.0, 3);
    assert_eq!(metrics.in_flight(), 1);
    send.send_response(());
    call.await.unwrap().unwrap();
    assert_eq!(metrics.in_flight(), 0);
    assert_eq!(health.consecutive_failures(), 0);
    assert_eq!(health.successes(), 1);
    let text = metrics.encode_text().unwrap();
    assert!(text.contains("otlp_requests_total{signal=\"traces\",outcome=\"ok\"} 1"));
    assert!(text.contains("otlp_request_duration_seconds_count{signal=\"traces\"} 1"));
}

#[tokio::test(start_paused = true)]
async fn errors_are_labelled_by_their_classification_and_passed_through() {
    let metrics = Arc::new(SelfMetrics::new());
    let svc = MetricsLayer::new(metrics.clone()).layer(tower::service_fn(|_: Req| async {
        Err::<(), _>(TestError(Retryability::Throttled(Duration::from_secs(1))))
    }));
    let res = svc.clone().oneshot(Req(1)).await;
    assert!(matches!(res, Err(TestError(Retryability::Throttled(_)))));
    let svc2 = MetricsLayer::new(metrics.clone()).layer(tower::service_fn(|_: Req| async {
        Err::<(), _>(TestError(Retryability::Permanent))
    }));
    assert!(svc2.oneshot(Req(1)).await.is_err());
    let health = metrics.exporter_health();
    assert_eq!(health.consecutive_failures(), 2);
    assert_eq!(health.since_last_success(), None);
    let text = metrics.encode_text().unwrap();
    assert!(text.contains("otlp_requests_total{signal=\"traces\",outcome=\"throttled\"} 1"));
    assert!(text.contains("otlp_errors_total{signal=\"traces\",kind=\"permanent\"} 1"));
    assert_eq!(metrics.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn dropped_call_counts_as_cancelled_and_frees_in_flight() {
    let (metrics, mut svc, mut handle) = setup();
    handle.allow(1);
    let fut = svc.ready().await.unwrap().call(Req(1));
    assert_eq!(metrics.in_flight(), 1);
    drop(fut);
    assert_eq!(metrics.in_flight(), 0);
    let text = metrics.encode_text().unwrap();
    assert!(text.contains("otlp_requests_total{signal=\"traces\",outcome=\"cancelled\"} 1"));
    assert_eq!(metrics.exporter_health().consecutive_failures(), 0);
}

#[tokio::test(start_paused = true)]
async fn health_remembers_time_since_last_success() {
    let metrics = Arc::new(SelfMetrics::new());
    let svc = MetricsLayer::new(metrics.clone())
        .layer(tower::service_fn(|_: Req| async { Ok::<_, TestError>(()) }));
    svc.oneshot(Req(1)).await.unwrap();
    tokio::time::advance(Duration::from_secs(30)).await;
    let since = metrics.exporter_health().since_last_success().unwrap();
    assert_eq!(since, Duration::from_secs(30));
}
