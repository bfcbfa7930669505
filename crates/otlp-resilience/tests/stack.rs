//! The three layers stacked as the facade stacks them, around a simulated
//! collector, with real encoded OTLP batches: every span is accounted for.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    trace::v1::{ResourceSpans, ScopeSpans, Span},
};
use otlp_core::{Batch, Classify, ExportResponse, Retryability, Signal};
use otlp_resilience::{
    AdaptiveConcurrencyLayer, ConcurrencyPolicy, RecoveryLayer, RetryBudget, RetryLayer,
    RetryPolicy, RetryStats,
};
use prost::Message;
use tower::{ServiceBuilder, ServiceExt, service_fn};

#[derive(Debug, Clone, PartialEq, Eq)]
enum CollectorError {
    Unavailable,
    TooLarge,
    InvalidArgument,
}

impl Classify for CollectorError {
    fn classify(&self) -> Retryability {
        match self {
            CollectorError::Unavailable => Retryability::Retryable,
            CollectorError::TooLarge => Retryability::TooLarge,
            CollectorError::InvalidArgument => Retryability::Permanent,
        }
    }
}

/// One batch of `n` spans named `s0..s{n}`, spread over two scopes.
fn batch(n: usize) -> Batch {
    let span = |i: usize| Span {
        name: format!("s{i}"),
        ..Default::default()
    };
    let scope = |range: std::ops::Range<usize>| ScopeSpans {
        spans: range.map(span).collect(),
        ..Default::default()
    };
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![scope(0..n / 2), scope(n / 2..n)],
            ..Default::default()
        }],
    };
    Batch::from_encoded(Signal::Traces, Bytes::from(request.encode_to_vec())).unwrap()
}

fn names(batch: &Batch) -> Vec<String> {
    let request = ExportTraceServiceRequest::decode(batch.bytes().clone()).unwrap();
    request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .map(|s| s.name.clone())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn full_stack_accounts_for_every_span_through_splits_retries_and_rejections() {
    const SPANS: usize = 64;
    let received: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let rng = Arc::new(Mutex::new(fastrand::Rng::with_seed(42)));
    let max_bytes = batch(10).byte_size();

    let store = received.clone();
    let collector = service_fn(move |batch: Batch| {
        let names = names(&batch);
        // Half the calls fail before anything is stored.
        let flaky = rng.lock().unwrap().bool();
        let store = store.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            if flaky {
                return Err(CollectorError::Unavailable);
            }
            if batch.byte_size() > max_bytes {
                return Err(CollectorError::TooLarge);
            }
            if names.iter().any(|n| n == "s13") {
                return Err(CollectorError::InvalidArgument);
            }
            let rejected = names.iter().filter(|n| n.ends_with('7')).count() as u64;
            let mut store = store.lock().unwrap();
            for n in names {
                *store.entry(n).or_default() += 1;
            }
            Ok(ExportResponse::partial(rejected, ""))
        }
    });

    let stats = RetryStats::default();
    let retry = RetryPolicy::builder()
        .with_initial_backoff(Duration::from_millis(10))
        .with_max_retries(Some(30))
        .with_budget(RetryBudget::try_new(2.0, 10.0, 100.0).unwrap())
        .build()
        .unwrap();
    let recovery = RecoveryLayer::default();
    let concurrency = AdaptiveConcurrencyLayer::new(ConcurrencyPolicy::default());
    let stack = ServiceBuilder::new()
        .layer(recovery.clone())
        .layer(RetryLayer::new(retry).with_events(stats.clone()))
        .layer(concurrency.clone())
        .service(collector);

    let answer = stack.oneshot(batch(SPANS)).await.unwrap();

    let received = received.lock().unwrap();
    assert!(received.values().all(|&n| n == 1), "no span sent twice");
    assert_eq!(answer.delivered_items(), received.len() as u64);
    assert_eq!(
        answer.delivered_items() + answer.failed_items(),
        SPANS as u64,
        "every span is delivered or failed"
    );
    // The part holding s13 failed permanently, with its items, and only it.
    assert!(!received.contains_key("s13"));
    let failed = answer.failed();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].error.classify(), Retryability::Permanent);
    // Partial success: every delivered span ending in 7 was rejected, summed over parts.
    let sevens = received.keys().filter(|n| n.ends_with('7')).count() as u64;
    assert_eq!(answer.response().unwrap().rejected, sevens);
    assert!(stats.retries() > 0, "the flaky collector was retried");
    assert!(
        recovery
            .stats()
            .strategy("split_too_large")
            .unwrap()
            .applied
            >= 3
    );
    assert_eq!(concurrency.handle().in_flight(), 0);
}
