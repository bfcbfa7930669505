//! Tests of the inner-service hand-off: readiness, classification, response encoding.

use std::{
    task::{Context, Poll},
    time::Duration,
};

use opentelemetry_proto::tonic::collector::{
    logs::v1::ExportLogsServiceResponse, trace::v1::ExportTraceServiceResponse,
};
use prost::Message;

use super::*;

#[derive(Debug)]
struct Fail(Retryability);

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "upstream said {}", self.0.as_str())
    }
}

impl Classify for Fail {
    fn classify(&self) -> Retryability {
        self.0
    }
}

/// A service that is never ready.
#[derive(Clone, Debug)]
struct NeverReady;

impl Service<Batch> for NeverReady {
    type Response = ExportResponse;
    type Error = Fail;
    type Future = std::future::Ready<Result<ExportResponse, Fail>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Fail>> {
        Poll::Pending
    }

    fn call(&mut self, _req: Batch) -> Self::Future {
        std::future::ready(Ok(ExportResponse::success()))
    }
}

fn batch() -> Batch {
    Batch::from_encoded(
        Signal::Traces,
        Bytes::from_static(&[0x0a, 0x04, 0x12, 0x02, 0x12, 0x00]),
    )
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn never_ready_inner_gets_unavailable_after_ready_timeout() {
    let limits = ReceiverLimits::new()
        .with_ready_timeout(Duration::from_millis(250))
        .with_retry_after(Duration::from_secs(3));
    let start = tokio::time::Instant::now();
    let res = export(NeverReady, batch(), &limits).await;
    assert_eq!(start.elapsed(), Duration::from_millis(250));
    match res {
        Err(Refusal::Unavailable {
            retry_after,
            message,
        }) => {
            assert_eq!(retry_after, Duration::from_secs(3));
            assert!(message.contains("busy"), "{message}");
        }
        other => panic!("expected back-pressure, got {other:?}"),
    }
}

#[tokio::test]
async fn inner_errors_map_by_their_classification() {
    let limits = ReceiverLimits::new().with_retry_after(Duration::from_secs(2));
    let cases = [
        (
            Retryability::Retryable,
            Refusal::Unavailable {
                retry_after: Duration::from_secs(2),
                message: "traces request not accepted, retry later: upstream said retryable"
                    .to_owned(),
            },
        ),
        (
            Retryability::Throttled(Duration::from_millis(700)),
            Refusal::Unavailable {
                retry_after: Duration::from_millis(700),
                message: "traces request not accepted, retry after 700ms: upstream said throttled"
                    .to_owned(),
            },
        ),
        (
            Retryability::TooLarge,
            Refusal::TooLarge(
                "traces request too large, send smaller batches: upstream said too_large"
                    .to_owned(),
            ),
        ),
        (
            Retryability::Permanent,
            Refusal::Failed("traces request failed: upstream said permanent".to_owned()),
        ),
    ];
    for (class, expected) in cases {
        let svc =
            tower::service_fn(
                move |_b: Batch| async move { Err::<ExportResponse, _>(Fail(class)) },
            );
        assert_eq!(export(svc, batch(), &limits).await, Err(expected));
    }
}

#[tokio::test]
async fn ready_inner_receives_the_batch_and_its_answer_is_returned() {
    let svc = tower::service_fn(|b: Batch| async move {
        assert_eq!(b.items(), 1);
        Ok::<_, Fail>(ExportResponse::partial(1, "span rejected"))
    });
    let res = export(svc, batch(), &ReceiverLimits::new()).await;
    assert_eq!(res, Ok(ExportResponse::partial(1, "span rejected")));
}

#[test]
fn partial_success_encodes_per_signal_and_full_success_is_empty() {
    assert!(encode_response(Signal::Traces, &ExportResponse::success()).is_empty());
    let t = ExportTraceServiceResponse::decode(encode_response(
        Signal::Traces,
        &ExportResponse::partial(3, "bad ids"),
    ))
    .unwrap();
    let p = t.partial_success.unwrap();
    assert_eq!((p.rejected_spans, p.error_message.as_str()), (3, "bad ids"));
    let l = ExportLogsServiceResponse::decode(encode_response(
        Signal::Logs,
        &ExportResponse::partial(u64::MAX, ""),
    ))
    .unwrap();
    assert_eq!(l.partial_success.unwrap().rejected_log_records, i64::MAX);
}

#[cfg(feature = "http")]
#[test]
fn json_partial_success_uses_string_counts_and_camel_case() {
    assert_eq!(
        &encode_response_json(Signal::Metrics, &ExportResponse::success())[..],
        b"{}"
    );
    let body = encode_response_json(Signal::Metrics, &ExportResponse::partial(5, "nan"));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["partialSuccess"]["rejectedDataPoints"], "5");
    assert_eq!(v["partialSuccess"]["errorMessage"], "nan");
}
