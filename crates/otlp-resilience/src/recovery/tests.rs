//! Unit tests of the recovery layer: splitting with exact accounting,
//! reconnecting, slowing down, strategy order and counters.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use otlp_core::{Classify, ExportResponse, Payload, Retryability, Split};
use tokio::time::Instant;
use tower::{Service, ServiceExt, service_fn};
use tower_layer::Layer;
use tower_test::mock;

use crate::{
    Action, Recovery, RecoveryLayer, RecoveryStrategy, SplitTooLarge, StrategyStats,
    test_util::{Flatten, TestError},
};

/// Items `start..end`, split at the middle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span(u64, u64);

impl Payload for Span {
    fn items(&self) -> u64 {
        self.1 - self.0
    }
    fn byte_size(&self) -> usize {
        (self.items() * 10) as usize
    }
}

impl Split for Span {
    fn split(&self) -> Option<(Self, Self)> {
        let mid = self.0 + self.items() / 2;
        (self.items() > 1).then_some((Span(self.0, mid), Span(mid, self.1)))
    }
}

fn err(class: Retryability) -> TestError {
    TestError::new(class)
}

fn stats(applied: u64, succeeded: u64, failed: u64) -> StrategyStats {
    StrategyStats {
        applied,
        succeeded,
        failed,
    }
}

#[tokio::test(start_paused = true)]
async fn too_large_request_splits_recursively_until_every_item_is_delivered() {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let layer = RecoveryLayer::default();
    let svc = layer.layer(service_fn(move |req: Span| {
        counter.fetch_add(1, Ordering::SeqCst);
        async move {
            if req.items() > 3 {
                Err(err(Retryability::TooLarge))
            } else {
                Ok(ExportResponse::success())
            }
        }
    }));
    let answer = svc.oneshot(Span(0, 10)).await.unwrap();
    assert_eq!(answer.delivered_items(), 10);
    assert_eq!(answer.failed_items(), 0);
    assert_eq!(answer.response(), Some(&ExportResponse::success()));
    // 10 -> 5 + 5, each 5 -> 2 + 3: three splits, seven calls.
    assert_eq!(calls.load(Ordering::SeqCst), 7);
    assert_eq!(
        layer.stats().strategy("split_too_large"),
        Some(stats(3, 4, 2))
    );
}

#[tokio::test(start_paused = true)]
async fn unsplittable_too_large_item_is_a_counted_failure_not_a_loss() {
    // Item 7 alone is too large for the server.
    let svc = RecoveryLayer::default().layer(service_fn(|req: Span| async move {
        if req.0 <= 7 && 7 < req.1 {
            Err(err(Retryability::TooLarge))
        } else {
            Ok(ExportResponse::success())
        }
    }));
    let answer = svc.oneshot(Span(0, 8)).await.unwrap();
    assert_eq!(answer.delivered_items(), 7);
    let failed = answer.failed();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].items, 1);
    assert_eq!(failed[0].error.classify(), Retryability::TooLarge);
    assert_eq!(answer.delivered_items() + answer.failed_items(), 8);
}

#[tokio::test(start_paused = true)]
async fn single_item_too_large_fails_whole_with_the_inner_error() {
    let svc = RecoveryLayer::default().layer(service_fn(|_: Span| async {
        Err::<ExportResponse, _>(err(Retryability::TooLarge))
    }));
    assert_eq!(
        svc.oneshot(Span(3, 4)).await.unwrap_err(),
        err(Retryability::TooLarge)
    );
}

#[tokio::test(start_paused = true)]
async fn partial_success_of_halves_adds_rejected_counts() {
    let svc = RecoveryLayer::default().layer(service_fn(|req: Span| async move {
        if req.items() > 4 {
            Err(err(Retryability::TooLarge))
        } else {
            Ok(ExportResponse::partial(1, format!("bad item {}", req.0)))
        }
    }));
    let answer = svc.oneshot(Span(0, 8)).await.unwrap();
    let response = answer.response().unwrap();
    assert_eq!(response.rejected, 2);
    assert_eq!(response.message, "bad item 0; bad item 4");
    assert_eq!(answer.delivered_items(), 8);
}

#[tokio::test(start_paused = true)]
async fn half_failing_permanently_reports_its_items_as_failed() {
    let svc = RecoveryLayer::default().layer(service_fn(|req: Span| async move {
        if req.items() > 4 {
            Err(err(Retryability::TooLarge))
        } else if req.0 == 0 {
            Err(err(Retryability::Permanent))
        } else {
            Ok(ExportResponse::success())
        }
    }));
    let (response, failed) = svc.oneshot(Span(0, 8)).await.unwrap().into_parts();
    assert_eq!(response, Some(ExportResponse::success()));
    assert_eq!(failed.len(), 1);
    assert_eq!(
        (failed[0].items, failed[0].error.class),
        (4, Retryability::Permanent)
    );
}

#[tokio::test(start_paused = true)]
async fn permanent_error_without_a_strategy_is_returned_and_not_resent() {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let layer = RecoveryLayer::default();
    let svc = layer.layer(service_fn(move |_: Span| {
        counter.fetch_add(1, Ordering::SeqCst);
        async { Err::<ExportResponse, _>(err(Retryability::Permanent)) }
    }));
    assert!(svc.oneshot(Span(0, 4)).await.is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(layer.stats().snapshot().iter().all(|(_, s)| s.applied == 0));
}

/// A connection whose first generation is broken.
#[derive(Clone, Debug)]
struct Conn {
    generation: u32,
}

impl Service<Span> for Conn {
    type Response = ExportResponse;
    type Error = TestError;
    type Future = std::future::Ready<Result<ExportResponse, TestError>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), TestError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Span) -> Self::Future {
        std::future::ready(if self.generation == 0 {
            Err(TestError {
                class: Retryability::Retryable,
                connection: true,
            })
        } else {
            Ok(ExportResponse::success())
        })
    }
}

#[tokio::test(start_paused = true)]
async fn connection_error_rebuilds_the_service_and_resends() {
    let built = Arc::new(AtomicU32::new(0));
    let factory = built.clone();
    let layer = RecoveryLayer::default();
    let mut svc = layer
        .layer(Conn { generation: 0 })
        .with_reconnect(move || Conn {
            generation: factory.fetch_add(1, Ordering::SeqCst) + 1,
        });
    let mut clone = svc.clone();

    let t0 = Instant::now();
    let answer = svc.ready().await.unwrap().call(Span(0, 2)).await.unwrap();
    assert_eq!(answer.delivered_items(), 2);
    assert_eq!(t0.elapsed(), Duration::from_secs(1), "the reconnect delay");
    assert_eq!(built.load(Ordering::SeqCst), 1);
    assert_eq!(layer.stats().strategy("reconnect"), Some(stats(1, 1, 0)));

    // The clone learns of the reconnect and rebuilds its own connection.
    clone.ready().await.unwrap();
    assert_eq!(built.load(Ordering::SeqCst), 2);
    assert!(clone.get_ref().generation > 0);
    assert!(clone.call(Span(0, 1)).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn throttled_failure_waits_the_hint_and_resends_at_most_max_resends() {
    let layer = RecoveryLayer::default().with_max_resends(2);
    let (inner, mut handle) = mock::pair::<Span, Result<ExportResponse, TestError>>();
    let svc = layer.layer(Flatten(inner));
    let call = tokio::spawn(svc.oneshot(Span(0, 4)));
    let t0 = Instant::now();
    let mut arrivals = Vec::new();
    for _ in 0..3 {
        let (_, send) = handle.next_request().await.unwrap();
        arrivals.push(t0.elapsed().as_secs());
        send.send_response(Err(err(Retryability::Throttled(Duration::from_secs(5)))));
    }
    assert!(call.await.unwrap().is_err(), "the third throttle stands");
    assert_eq!(arrivals, [0, 5, 10]);
    assert_eq!(layer.stats().strategy("slow_down"), Some(stats(3, 0, 2)));
}

/// Refuses to split anything.
#[derive(Debug)]
struct NeverSplit;

impl RecoveryStrategy for NeverSplit {
    fn name(&self) -> &'static str {
        "never_split"
    }
    fn can_handle(&self, error: &dyn Classify) -> bool {
        error.classify() == Retryability::TooLarge
    }
    fn recover(&self, _: &dyn Classify, _: &dyn Payload) -> Action {
        Action::GiveUp
    }
}

#[tokio::test(start_paused = true)]
async fn strategies_run_in_order_and_the_first_match_decides() {
    let layer = RecoveryLayer::new(vec![Arc::new(NeverSplit), Arc::new(SplitTooLarge)]);
    let svc = layer.layer(service_fn(|_: Span| async {
        Err::<ExportResponse, _>(err(Retryability::TooLarge))
    }));
    assert!(svc.oneshot(Span(0, 8)).await.is_err());
    let snapshot = layer.stats().snapshot();
    assert_eq!(snapshot[0], ("never_split", stats(1, 0, 0)));
    assert_eq!(snapshot[1], ("split_too_large", stats(0, 0, 0)));
}

#[test]
fn recovery_new_uses_the_built_in_strategies() {
    let svc = Recovery::new(Conn { generation: 1 });
    assert_eq!(svc.get_ref().generation, 1);
    let names: Vec<_> = RecoveryLayer::default()
        .stats()
        .snapshot()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["split_too_large", "reconnect", "slow_down"]);
}
