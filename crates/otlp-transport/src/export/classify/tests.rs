//! Table tests of the OTLP retry rules and the hint parsers.

use std::time::{Duration, UNIX_EPOCH};

use otlp_core::{ExportResponse, Retryability};
use prost::Message as _;

use super::*;
use crate::google_rpc::{
    Any as ProtoAny, Duration as ProtoDuration, RETRY_INFO_TYPE_URL, RetryInfo, Status as RpcStatus,
};

#[test]
fn grpc_codes_map_exactly_per_otlp_spec() {
    use Retryability::*;
    let hint = Some(Duration::from_secs(3));
    // (code, retryability without RetryInfo, with RetryInfo of 3 s)
    let table: [(i32, Retryability, Retryability); 17] = [
        (0, Permanent, Permanent),
        (1, Retryable, Throttled(Duration::from_secs(3))),
        (2, Permanent, Permanent),
        (3, Permanent, Permanent),
        (4, Retryable, Throttled(Duration::from_secs(3))),
        (5, Permanent, Permanent),
        (6, Permanent, Permanent),
        (7, Permanent, Permanent),
        (8, Permanent, Throttled(Duration::from_secs(3))),
        (9, Permanent, Permanent),
        (10, Retryable, Throttled(Duration::from_secs(3))),
        (11, Retryable, Throttled(Duration::from_secs(3))),
        (12, Permanent, Permanent),
        (13, Permanent, Permanent),
        (14, Retryable, Throttled(Duration::from_secs(3))),
        (15, Retryable, Throttled(Duration::from_secs(3))),
        (16, Permanent, Permanent),
    ];
    for (code, plain, hinted) in table {
        assert_eq!(
            grpc_retryability(code, "x", None),
            plain,
            "code {code} without hint"
        );
        assert_eq!(
            grpc_retryability(code, "x", hint),
            hinted,
            "code {code} with hint"
        );
    }
}

#[test]
fn grpc_resource_exhausted_for_size_is_too_large() {
    let msg = "grpc: received message larger than max (5000 vs. 4194304)";
    assert_eq!(grpc_retryability(8, msg, None), Retryability::TooLarge);
}

#[test]
fn http_statuses_map_exactly_per_otlp_spec() {
    use Retryability::*;
    let hint = Some(Duration::from_secs(7));
    let throttled = Throttled(Duration::from_secs(7));
    let table: [(u16, Retryability, Retryability); 14] = [
        (400, Permanent, Permanent),
        (401, Permanent, Permanent),
        (403, Permanent, Permanent),
        (404, Permanent, Permanent),
        (405, Permanent, Permanent),
        (408, Permanent, Permanent),
        (413, TooLarge, TooLarge),
        (415, Permanent, Permanent),
        (429, Retryable, throttled),
        (500, Permanent, Permanent),
        (501, Permanent, Permanent),
        (502, Retryable, throttled),
        (503, Retryable, throttled),
        (504, Retryable, throttled),
    ];
    for (status, plain, hinted) in table {
        assert_eq!(
            http_retryability(status, None),
            plain,
            "status {status} without hint"
        );
        assert_eq!(
            http_retryability(status, hint),
            hinted,
            "status {status} with hint"
        );
    }
}

#[test]
fn throttle_hints_are_capped() {
    let huge = Some(Duration::from_secs(86_400));
    assert_eq!(
        http_retryability(503, huge),
        Retryability::Throttled(MAX_THROTTLE)
    );
    assert_eq!(
        grpc_retryability(14, "", huge),
        Retryability::Throttled(MAX_THROTTLE)
    );
    assert_eq!(parse_retry_after("999999", UNIX_EPOCH), Some(MAX_THROTTLE));
}

#[test]
fn retry_after_accepts_seconds_and_http_date() {
    // 1994-11-06T08:49:37Z is 784111777 seconds after the epoch.
    let now = UNIX_EPOCH + Duration::from_secs(784_111_777 - 30);
    assert_eq!(
        parse_retry_after(" 12 ", now),
        Some(Duration::from_secs(12))
    );
    assert_eq!(
        parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
        Some(Duration::from_secs(30))
    );
    // A date in the past means "now".
    let later = UNIX_EPOCH + Duration::from_secs(784_111_777 + 100);
    assert_eq!(
        parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", later),
        Some(Duration::ZERO)
    );
    assert_eq!(parse_retry_after("soon", now), None);
    assert_eq!(parse_retry_after("-3", now), None);
}

fn retry_info(secs: i64, nanos: i32) -> RetryInfo {
    RetryInfo {
        retry_delay: Some(ProtoDuration {
            seconds: secs,
            nanos,
        }),
    }
}

#[test]
fn retry_info_is_read_from_status_details_and_trailer() {
    let status = RpcStatus {
        code: 8,
        message: "slow down".into(),
        details: vec![
            ProtoAny {
                type_url: "type.googleapis.com/google.rpc.DebugInfo".into(),
                value: vec![1, 2, 3],
            },
            ProtoAny {
                type_url: RETRY_INFO_TYPE_URL.into(),
                value: retry_info(2, 500_000_000).encode_to_vec(),
            },
        ],
    };
    assert_eq!(
        retry_info_from_status_details(&status.encode_to_vec()),
        Some(Duration::from_millis(2500))
    );
    assert_eq!(
        retry_info_from_trailer(&retry_info(4, 0).encode_to_vec()),
        Some(Duration::from_secs(4))
    );
    assert_eq!(
        retry_info_from_trailer(&retry_info(-4, 0).encode_to_vec()),
        None
    );
    assert_eq!(retry_info_from_status_details(b"\xff\xff garbage"), None);
}

#[test]
fn partial_success_is_decoded_from_protobuf_and_json() {
    let body = ExportServiceResponse {
        partial_success: Some(PartialSuccess {
            rejected: 3,
            error_message: "bad spans".into(),
        }),
    }
    .encode_to_vec();
    assert_eq!(
        decode_partial_success(&body),
        ExportResponse::partial(3, "bad spans")
    );
    assert_eq!(decode_partial_success(&[]), ExportResponse::success());
    let json = br#"{"partialSuccess":{"rejectedLogRecords":"5","errorMessage":"too old"}}"#;
    assert_eq!(
        decode_partial_success_json(json),
        ExportResponse::partial(5, "too old")
    );
    assert_eq!(
        decode_partial_success_json(b"{}"),
        ExportResponse::success()
    );
}
