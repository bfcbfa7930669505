//! Unit tests of the retry layer, on paused tokio time.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use otlp_core::Retryability;
use tokio::time::Instant;
use tower::{ServiceExt, service_fn};
use tower_layer::Layer;
use tower_test::mock;

use crate::{
    GiveUp, RetryBudget, RetryError, RetryLayer, RetryPolicy, RetryStats, connect_with_retry,
    test_util::{Flatten, TestError},
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn exact(initial: u64, max: u64) -> crate::RetryPolicyBuilder {
    RetryPolicy::builder()
        .with_initial_backoff(ms(initial))
        .with_multiplier(2.0)
        .with_max_backoff(ms(max))
        .with_jitter(0.0)
        .with_attempt_timeout(None)
        .with_budget(RetryBudget::unlimited())
}

fn retryable() -> TestError {
    TestError::new(Retryability::Retryable)
}

#[tokio::test(start_paused = true)]
async fn backoff_schedule_doubles_up_to_max_backoff() {
    let policy = exact(100, 1000).build().unwrap();
    let (svc, mut handle) = mock::pair::<u32, Result<u32, TestError>>();
    let svc = RetryLayer::new(policy).layer(Flatten(svc));
    let call = tokio::spawn(svc.oneshot(7));

    let t0 = Instant::now();
    let mut arrivals = Vec::new();
    for _ in 0..6 {
        let (req, send) = handle.next_request().await.unwrap();
        assert_eq!(req, 7, "every attempt resends the same request");
        arrivals.push(t0.elapsed());
        send.send_response(Err(retryable()));
    }
    let (_, send) = handle.next_request().await.unwrap();
    arrivals.push(t0.elapsed());
    send.send_response(Ok(42));

    assert_eq!(call.await.unwrap(), Ok(42));
    let expected = [0, 100, 300, 700, 1500, 2500, 3500];
    assert_eq!(arrivals, expected.map(ms).to_vec());
}

#[test]
fn jittered_delays_stay_within_the_jitter_band() {
    let policy = RetryPolicy::builder()
        .with_initial_backoff(ms(1000))
        .with_jitter(0.5)
        .build()
        .unwrap();
    let (mut lo, mut hi) = (Duration::MAX, Duration::ZERO);
    for _ in 0..1000 {
        let d = policy.delay(1, None);
        assert!(d >= ms(500) && d <= ms(1500), "{d:?} outside ±50% of 1s");
        lo = lo.min(d);
        hi = hi.max(d);
    }
    assert!(lo < ms(800) && hi > ms(1200), "jitter spreads the delays");
}

#[tokio::test(start_paused = true)]
async fn permanent_error_is_never_retried() {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let stats = RetryStats::default();
    let svc = RetryLayer::new(exact(10, 100).build().unwrap())
        .with_events(stats.clone())
        .layer(service_fn(move |_: u32| {
            counter.fetch_add(1, Ordering::SeqCst);
            async { Err::<u32, _>(TestError::new(Retryability::Permanent)) }
        }));
    let result = svc.oneshot(1).await;
    assert_eq!(
        result,
        Err(RetryError::Inner(TestError::new(Retryability::Permanent)))
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(stats.retries(), 0);
}

#[tokio::test(start_paused = true)]
async fn too_large_is_not_retried_by_the_retry_layer() {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let svc = RetryLayer::new(exact(10, 100).build().unwrap()).layer(service_fn(move |_: u32| {
        counter.fetch_add(1, Ordering::SeqCst);
        async { Err::<u32, _>(TestError::new(Retryability::TooLarge)) }
    }));
    assert!(svc.oneshot(1).await.is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn throttle_hint_sets_the_next_delay_to_at_least_the_hint_capped() {
    let policy = exact(100, 1000)
        .with_max_throttle(Duration::from_secs(5))
        .build()
        .unwrap();
    let stats = RetryStats::default();
    let (svc, mut handle) = mock::pair::<u32, Result<u32, TestError>>();
    let svc = RetryLayer::new(policy)
        .with_events(stats.clone())
        .layer(Flatten(svc));
    let call = tokio::spawn(svc.oneshot(1));

    let t0 = Instant::now();
    let (_, send) = handle.next_request().await.unwrap();
    send.send_response(Err(TestError::new(Retryability::Throttled(
        Duration::from_secs(3),
    ))));
    let (_, send) = handle.next_request().await.unwrap();
    assert_eq!(t0.elapsed(), Duration::from_secs(3), "the hint beats 100ms");
    send.send_response(Err(TestError::new(Retryability::Throttled(
        Duration::from_secs(100),
    ))));
    let (_, send) = handle.next_request().await.unwrap();
    assert_eq!(
        t0.elapsed(),
        Duration::from_secs(8),
        "a 100s hint is capped at 5s"
    );
    send.send_response(Ok(1));

    assert_eq!(call.await.unwrap(), Ok(1));
    assert_eq!(stats.throttles(), 2);
    assert_eq!(stats.retries(), 2);
}

#[test]
fn default_policy_obeys_throttle_hints_up_to_five_minutes_as_the_transport_caps_them() {
    let policy = RetryPolicy::default();
    assert_eq!(policy.max_throttle(), otlp_core::MAX_THROTTLE);
    assert_eq!(
        policy.delay(1, Some(Duration::from_secs(240))),
        Duration::from_secs(240),
        "a four-minute hint is obeyed"
    );
    assert_eq!(
        policy.delay(1, Some(Duration::from_secs(3600))),
        Duration::from_secs(300)
    );
    assert_eq!(
        RetryPolicy::for_connect().max_throttle(),
        Duration::from_secs(300)
    );
}

#[tokio::test(start_paused = true)]
async fn gives_up_after_max_retries_with_the_last_error() {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let stats = RetryStats::default();
    let svc = RetryLayer::new(exact(10, 100).with_max_retries(Some(3)).build().unwrap())
        .with_events(stats.clone())
        .layer(service_fn(move |_: u32| {
            counter.fetch_add(1, Ordering::SeqCst);
            async { Err::<u32, _>(retryable()) }
        }));
    assert_eq!(svc.oneshot(1).await, Err(RetryError::Inner(retryable())));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        4,
        "one attempt and three retries"
    );
    assert_eq!(stats.gave_up(GiveUp::MaxRetries), 1);
}

#[tokio::test(start_paused = true)]
async fn gives_up_when_the_next_delay_would_pass_max_elapsed() {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let stats = RetryStats::default();
    // Delays 100, 200, 400, 800: the fourth would end at 1500ms > 1s.
    let policy = exact(100, 10_000)
        .with_max_elapsed(Duration::from_secs(1))
        .build()
        .unwrap();
    let svc = RetryLayer::new(policy)
        .with_events(stats.clone())
        .layer(service_fn(move |_: u32| {
            counter.fetch_add(1, Ordering::SeqCst);
            async { Err::<u32, _>(retryable()) }
        }));
    let t0 = Instant::now();
    assert!(svc.oneshot(1).await.is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert_eq!(t0.elapsed(), ms(700));
    assert_eq!(stats.gave_up(GiveUp::MaxElapsed), 1);
}

#[tokio::test(start_paused = true)]
async fn hung_attempt_times_out_and_is_retried_then_reported() {
    let policy = exact(100, 1000)
        .with_attempt_timeout(Some(Duration::from_secs(1)))
        .with_max_retries(Some(2))
        .build()
        .unwrap();
    let (svc, mut handle) = mock::pair::<u32, Result<u32, TestError>>();
    let svc = RetryLayer::new(policy).layer(Flatten(svc));
    let call = tokio::spawn(svc.oneshot(1));
    let t0 = Instant::now();
    // Hold every attempt unanswered: each times out after 1s.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(handle.next_request().await.unwrap());
    }
    let result = call.await.unwrap();
    assert_eq!(
        result,
        Err(RetryError::AttemptTimeout {
            timeout: Duration::from_secs(1),
            attempts: 3
        })
    );
    // Three timeouts of 1s plus backoffs of 100ms and 200ms.
    assert_eq!(t0.elapsed(), ms(3300));
}

#[tokio::test(start_paused = true)]
async fn half_of_attempts_failing_loses_nothing_within_the_budget() {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let rng = Arc::new(std::sync::Mutex::new(fastrand::Rng::with_seed(6)));
    let stats = RetryStats::default();
    // A 50% failure ratio costs one retry per request on average; the budget
    // allows half as much again, plus a small reserve.
    let budget = RetryBudget::try_new(1.5, 1.0, 50.0).unwrap();
    let policy = exact(10, 200)
        .with_max_retries(Some(20))
        .with_budget(budget)
        .build()
        .unwrap();
    let layer = RetryLayer::new(policy).with_events(stats.clone());
    let svc = layer.layer(service_fn(move |req: u32| {
        counter.fetch_add(1, Ordering::SeqCst);
        let fail = rng.lock().unwrap().bool();
        async move { if fail { Err(retryable()) } else { Ok(req) } }
    }));
    let mut delivered = 0;
    for i in 0..200 {
        let answer = svc.clone().oneshot(i).await;
        assert_eq!(
            answer,
            Ok(i),
            "request {i} was lost: {} budget, {} max-retries give-ups",
            stats.gave_up(GiveUp::Budget),
            stats.gave_up(GiveUp::MaxRetries)
        );
        delivered += 1;
    }
    assert_eq!(delivered, 200);
    let calls = calls.load(Ordering::SeqCst);
    assert_eq!(u64::from(calls), 200 + stats.retries());
    assert!(calls > 300, "about half of {calls} attempts failed");
    assert_eq!(stats.gave_up(GiveUp::Budget), 0);
}

#[tokio::test(start_paused = true)]
async fn dead_collector_retries_are_bounded_by_the_budget() {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let stats = RetryStats::default();
    // 20% of requests may be retried, no time-based reserve.
    let budget = RetryBudget::try_new(0.2, 0.0, 100.0).unwrap();
    let policy = exact(10, 100)
        .with_max_retries(Some(10))
        .with_budget(budget)
        .build()
        .unwrap();
    let svc = RetryLayer::new(policy)
        .with_events(stats.clone())
        .layer(service_fn(move |_: u32| {
            counter.fetch_add(1, Ordering::SeqCst);
            async { Err::<u32, _>(retryable()) }
        }));
    for i in 0..100 {
        assert!(svc.clone().oneshot(i).await.is_err());
    }
    let calls = calls.load(Ordering::SeqCst);
    // Without a budget, 100 requests would make 1100 calls.
    assert!(
        calls <= 120,
        "{calls} calls: the budget allows about 20 retries"
    );
    assert!(stats.gave_up(GiveUp::Budget) >= 80);
}

#[tokio::test(start_paused = true)]
async fn budget_reserve_refills_with_time_up_to_capacity() {
    let budget = RetryBudget::try_new(0.0, 0.2, 3.0).unwrap();
    assert!(
        budget.withdraw() && budget.withdraw(),
        "ten seconds of reserve"
    );
    assert!(!budget.withdraw());
    tokio::time::advance(Duration::from_secs(100)).await;
    assert_eq!(budget.balance(), 3.0, "capped at capacity");
}

#[test]
fn invalid_policy_reports_every_problem() {
    let err = RetryPolicy::builder()
        .with_initial_backoff(Duration::ZERO)
        .with_multiplier(0.5)
        .with_jitter(2.0)
        .build()
        .unwrap_err();
    let msg = err.to_string();
    for field in ["initial_backoff", "multiplier", "jitter"] {
        assert!(msg.contains(field), "{msg} misses {field}");
    }
    assert!(RetryBudget::try_new(f64::NAN, -1.0, 0.0).is_err());
}

#[tokio::test(start_paused = true)]
async fn connect_retries_until_the_endpoint_answers() {
    let mut attempts = 0;
    let t0 = Instant::now();
    let policy = exact(100, 1000).with_max_retries(Some(5)).build().unwrap();
    let conn = connect_with_retry(
        || {
            attempts += 1;
            let n = attempts;
            async move { if n < 4 { Err(retryable()) } else { Ok(n) } }
        },
        &policy,
    )
    .await;
    assert_eq!(conn, Ok(4));
    assert_eq!(t0.elapsed(), ms(700), "100 + 200 + 400");
}

#[tokio::test(start_paused = true)]
async fn connect_returns_a_permanent_error_at_once() {
    let mut attempts = 0;
    let conn: Result<(), _> = connect_with_retry(
        || {
            attempts += 1;
            async { Err(TestError::new(Retryability::Permanent)) }
        },
        &RetryPolicy::for_connect(),
    )
    .await;
    assert!(conn.is_err());
    assert_eq!(attempts, 1);
}

#[tokio::test(start_paused = true)]
async fn connect_gives_up_after_max_retries() {
    let mut attempts = 0;
    let policy = exact(100, 1000).with_max_retries(Some(2)).build().unwrap();
    let conn: Result<(), _> = connect_with_retry(
        || {
            attempts += 1;
            async { Err(retryable()) }
        },
        &policy,
    )
    .await;
    assert_eq!(conn, Err(RetryError::Inner(retryable())));
    assert_eq!(attempts, 3);
}
