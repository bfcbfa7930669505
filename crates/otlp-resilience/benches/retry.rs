//! Per-call overhead of `Retry` + `AdaptiveConcurrency` around a no-op service,
//! against the bare service.
//!
//! Run with `cargo bench -p otlp-resilience --bench retry`.

// A benchmark harness: a failure to build the runtime or a service error is a
// broken benchmark, and aborting is the right answer.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// `criterion_group!` generates an undocumented `pub fn`.
#![allow(missing_docs)]

use std::{
    convert::Infallible,
    future::{Ready, ready},
    time::{Duration, Instant},
};

use criterion::{Criterion, criterion_group, criterion_main};
use otlp_core::{Classify, Retryability};
use otlp_resilience::{AdaptiveConcurrencyLayer, ConcurrencyPolicy, RetryLayer, RetryPolicy};
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};

/// The no-op service's error, which never happens.
#[derive(Debug)]
struct NoError(Infallible);

impl Classify for NoError {
    fn classify(&self) -> Retryability {
        match self.0 {}
    }
}

fn noop(_: u64) -> Ready<Result<(), NoError>> {
    ready(Ok(()))
}

/// Times `iters` sequential ready + call round trips on `svc`.
async fn drive<S>(mut svc: S, iters: u64) -> Duration
where
    S: Service<u64, Response = ()>,
    S::Error: std::fmt::Debug,
{
    let start = Instant::now();
    for i in 0..iters {
        svc.ready().await.unwrap();
        svc.call(i).await.unwrap();
    }
    start.elapsed()
}

fn overhead(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let no_timeout = RetryPolicy::builder()
        .with_attempt_timeout(None)
        .build()
        .unwrap();
    let concurrency = ConcurrencyPolicy::builder()
        .with_initial_concurrency(8)
        .build()
        .unwrap();

    let mut group = c.benchmark_group("per_call");
    group.bench_function("bare", |b| {
        b.to_async(&rt)
            .iter_custom(|iters| drive(service_fn(noop), iters));
    });
    group.bench_function("retry_no_attempt_timeout", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let svc = ServiceBuilder::new()
                .layer(RetryLayer::new(no_timeout.clone()))
                .service(service_fn(noop));
            drive(svc, iters)
        });
    });
    group.bench_function("adaptive_concurrency", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let svc = ServiceBuilder::new()
                .layer(AdaptiveConcurrencyLayer::new(concurrency.clone()))
                .service(service_fn(noop));
            drive(svc, iters)
        });
    });
    group.bench_function("retry_and_adaptive_concurrency", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let svc = ServiceBuilder::new()
                .layer(RetryLayer::new(no_timeout.clone()))
                .layer(AdaptiveConcurrencyLayer::new(concurrency.clone()))
                .service(service_fn(noop));
            drive(svc, iters)
        });
    });
    group.bench_function("retry_default_policy_and_adaptive_concurrency", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let svc = ServiceBuilder::new()
                .layer(RetryLayer::new(RetryPolicy::default()))
                .layer(AdaptiveConcurrencyLayer::new(concurrency.clone()))
                .service(service_fn(noop));
            drive(svc, iters)
        });
    });
    group.finish();
}

criterion_group!(benches, overhead);
criterion_main!(benches);
