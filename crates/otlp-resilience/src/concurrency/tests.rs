//! Unit tests of adaptive concurrency and batch sizing, on paused tokio time.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU8, AtomicUsize, Ordering},
    },
    time::Duration,
};

use otlp_core::Retryability;
use tokio::time::{Instant, sleep};
use tokio_test_shim::assert_pending_then_ready;
use tower::{Service, ServiceExt, service_fn};
use tower_layer::Layer;
use tower_test::mock;

use crate::{
    AdaptiveConcurrencyLayer, BatchSizer, ConcurrencyPolicy,
    test_util::{Flatten, TestError},
};

/// Polls a service's readiness once.
mod tokio_test_shim {
    use std::{future::poll_fn, task::Poll};

    use tower::Service;

    /// Whether `svc` is ready now, without waiting.
    pub(super) async fn assert_pending_then_ready<S: Service<R>, R>(svc: &mut S) -> bool {
        poll_fn(|cx| Poll::Ready(matches!(svc.poll_ready(cx), Poll::Ready(Ok(()))))).await
    }
}

fn fixed(n: usize) -> ConcurrencyPolicy {
    ConcurrencyPolicy::builder()
        .with_min_concurrency(n)
        .with_max_concurrency(n)
        .with_initial_concurrency(n)
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn poll_ready_reserves_a_permit_and_the_response_future_returns_it() {
    let (inner, mut handle) = mock::pair::<u32, Result<u32, TestError>>();
    let layer = AdaptiveConcurrencyLayer::new(fixed(1));
    let mut a = layer.layer(Flatten(inner));
    let mut b = a.clone();

    assert!(
        assert_pending_then_ready(&mut a).await,
        "one permit is free"
    );
    assert!(
        !assert_pending_then_ready(&mut b).await,
        "a holds the only permit, and cloning did not copy it"
    );
    let fut = a.call(1);
    assert_eq!(layer.handle().in_flight(), 1);
    let (_, send) = handle.next_request().await.unwrap();
    send.send_response(Ok(1));
    assert_eq!(fut.await, Ok(1));
    assert!(
        assert_pending_then_ready(&mut b).await,
        "the permit came back"
    );

    // A dropped response future also returns its permit.
    let fut = b.call(2);
    drop(fut);
    assert!(assert_pending_then_ready(&mut a).await);
    assert_eq!(layer.handle().in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn retryable_errors_shrink_the_limit_to_min_and_permanent_do_not() {
    let policy = ConcurrencyPolicy::builder()
        .with_min_concurrency(2)
        .with_max_concurrency(32)
        .with_initial_concurrency(32)
        .build()
        .unwrap();
    let layer = AdaptiveConcurrencyLayer::new(policy);
    let handle = layer.handle();
    let class = Arc::new(AtomicU8::new(0));
    let mode = class.clone();
    let svc = layer.layer(service_fn(move |_: u32| {
        let permanent = mode.load(Ordering::SeqCst) == 0;
        async move {
            sleep(Duration::from_millis(5)).await;
            Err::<(), _>(TestError::new(if permanent {
                Retryability::Permanent
            } else {
                Retryability::Retryable
            }))
        }
    }));
    for _ in 0..50 {
        let _ = svc.clone().oneshot(0).await;
    }
    assert_eq!(handle.limit(), 32, "permanent errors are not back-pressure");
    class.store(1, Ordering::SeqCst);
    for _ in 0..100 {
        let _ = svc.clone().oneshot(0).await;
    }
    assert_eq!(
        handle.limit(),
        2,
        "retryable errors push the limit down to min"
    );
}

const BEST: usize = 8;
const BASE: Duration = Duration::from_millis(10);

#[tokio::test(start_paused = true)]
async fn simulated_collector_limit_converges_near_the_best_and_backs_off_under_429_and_unavailable()
{
    let policy = ConcurrencyPolicy::builder()
        .with_max_concurrency(64)
        .build()
        .unwrap();
    let layer = AdaptiveConcurrencyLayer::new(policy);
    let handle = layer.handle();
    let in_flight = Arc::new(AtomicUsize::new(0));
    // 0: healthy, 1: HTTP 429 / RESOURCE_EXHAUSTED with a hint, 2: UNAVAILABLE.
    let mode = Arc::new(AtomicU8::new(0));
    let (load, state) = (in_flight.clone(), mode.clone());
    // Up to BEST requests run in parallel at BASE latency; beyond that they
    // queue, and latency grows with the concurrency (throughput stays flat).
    let collector = service_fn(move |_: u32| {
        let n = load.fetch_add(1, Ordering::SeqCst) + 1;
        let mode = state.load(Ordering::SeqCst);
        let load = load.clone();
        async move {
            let result = match mode {
                0 => {
                    let factor = n.max(BEST) as f64 / BEST as f64;
                    sleep(BASE.mul_f64(factor)).await;
                    Ok(())
                }
                1 => {
                    sleep(Duration::from_millis(2)).await;
                    Err(TestError::new(Retryability::Throttled(
                        Duration::from_secs(1),
                    )))
                }
                _ => {
                    sleep(Duration::from_millis(2)).await;
                    Err(TestError::new(Retryability::Retryable))
                }
            };
            load.fetch_sub(1, Ordering::SeqCst);
            result
        }
    });
    let svc = layer.layer(collector);

    let end = Instant::now() + Duration::from_secs(45);
    let mut clients = Vec::new();
    for _ in 0..40 {
        let mut svc = svc.clone();
        clients.push(tokio::spawn(async move {
            for _ in 0..1_000_000 {
                if Instant::now() >= end {
                    break;
                }
                let ready = svc.ready().await.unwrap();
                let _ = ready.call(0).await;
            }
        }));
    }

    // Phase 1 (0-20s): healthy. Sample the limit over the last 10s.
    sleep(Duration::from_secs(10)).await;
    let mut samples = Vec::new();
    for _ in 0..100 {
        sleep(Duration::from_millis(100)).await;
        samples.push(handle.limit());
    }
    let mean = samples.iter().sum::<usize>() as f64 / samples.len() as f64;
    let (lo, hi) = (samples.iter().min().unwrap(), samples.iter().max().unwrap());
    assert!(
        (5.0..=12.0).contains(&mean) && *lo >= 3 && *hi <= 16,
        "limit should hover near {BEST}: mean {mean}, range {lo}..={hi}"
    );
    assert!(in_flight.load(Ordering::SeqCst) <= *hi);

    // Phase 2 (20-25s): throttled.
    mode.store(1, Ordering::SeqCst);
    sleep(Duration::from_secs(5)).await;
    assert!(handle.limit() <= 2, "429 backs off: {}", handle.limit());

    // Phase 3 (25-35s): healthy again, the limit climbs back.
    mode.store(0, Ordering::SeqCst);
    sleep(Duration::from_secs(10)).await;
    let recovered = handle.limit();
    assert!((5..=16).contains(&recovered), "recovered to {recovered}");

    // Phase 4 (35-40s): UNAVAILABLE.
    mode.store(2, Ordering::SeqCst);
    sleep(Duration::from_secs(5)).await;
    assert!(
        handle.limit() <= 2,
        "UNAVAILABLE backs off: {}",
        handle.limit()
    );
    mode.store(0, Ordering::SeqCst);

    for c in clients {
        c.await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn cancelled_requests_count_as_back_pressure() {
    let policy = ConcurrencyPolicy::builder()
        .with_initial_concurrency(10)
        .build()
        .unwrap();
    let layer = AdaptiveConcurrencyLayer::new(policy);
    let handle = layer.handle();
    let svc = layer.layer(service_fn(|_: u32| async {
        sleep(Duration::from_secs(60)).await;
        Ok::<_, TestError>(())
    }));
    for _ in 0..5 {
        let _ = tokio::time::timeout(Duration::from_millis(10), svc.clone().oneshot(0)).await;
    }
    assert!(
        handle.limit() < 10,
        "timeouts shrank the limit to {}",
        handle.limit()
    );
}

#[test]
fn invalid_concurrency_policy_reports_every_problem() {
    let err = ConcurrencyPolicy::builder()
        .with_min_concurrency(0)
        .with_decrease_ratio(1.5)
        .with_ewma_alpha(0.0)
        .build()
        .unwrap_err()
        .to_string();
    for field in ["min_concurrency", "decrease_ratio", "ewma_alpha"] {
        assert!(err.contains(field), "{err} misses {field}");
    }
}

#[test]
fn batch_sizer_converges_below_the_latency_target_within_bounds() {
    let sizer = BatchSizer::builder()
        .with_min_size(10)
        .with_max_size(5000)
        .with_initial_size(100)
        .with_target_latency(Duration::from_millis(100))
        .with_window(5)
        .build()
        .unwrap();
    // A collector that takes 5ms plus 0.1ms per item: 950 items reach 100ms.
    let mut sizes = Vec::new();
    for _ in 0..400 {
        let size = sizer.size();
        assert!((10..=5000).contains(&size));
        let latency = Duration::from_micros(5_000 + 100 * size as u64);
        sizer.record(latency, size as u64);
        sizes.push(size);
    }
    let tail = &sizes[300..];
    assert!(
        tail.iter().all(|s| (600..=1200).contains(s)),
        "sizes settle near 950: {:?}",
        &tail[..10]
    );
}

#[test]
fn batch_sizer_backs_off_when_growth_hurts_throughput_and_respects_bounds() {
    let sizer = BatchSizer::builder()
        .with_min_size(50)
        .with_max_size(400)
        .with_initial_size(50)
        .with_target_latency(Duration::from_secs(10))
        .with_window(1)
        .build()
        .unwrap();
    // Throughput peaks at 200 items and falls beyond (a saturated collector).
    for _ in 0..200 {
        let size = sizer.size() as u64;
        let per_item_us = if size <= 200 {
            100
        } else {
            100 + (size - 200) * 2
        };
        sizer.record(Duration::from_micros(size * per_item_us), size);
        assert!((50..=400).contains(&sizer.size()));
    }
    assert!(
        sizer.size() <= 300,
        "stays near the throughput peak: {}",
        sizer.size()
    );
    assert!(BatchSizer::builder().with_min_size(0).build().is_err());
}
