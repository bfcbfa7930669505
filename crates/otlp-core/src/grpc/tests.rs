//! Tests of the OTLP retry rules, the gRPC code table and `Classify` for `tonic::Status`.

use std::time::Duration;

use super::*;

#[test]
fn every_code_has_its_canonical_name() {
    assert_eq!(code::name(code::OK), "OK");
    assert_eq!(code::name(code::UNAVAILABLE), "UNAVAILABLE");
    assert_eq!(code::name(code::UNAUTHENTICATED), "UNAUTHENTICATED");
    assert_eq!(code::name(17), "UNRECOGNIZED");
    assert_eq!(code::name(-1), "UNRECOGNIZED");
}

#[test]
fn the_http_rule_caps_a_throttle_hint() {
    let huge = Some(Duration::from_secs(24 * 3600));
    assert_eq!(
        http_retryability(503, huge),
        Retryability::Throttled(MAX_THROTTLE)
    );
    assert_eq!(http_retryability(413, None), Retryability::TooLarge);
    assert_eq!(http_retryability(401, None), Retryability::Permanent);
}

#[cfg(feature = "tonic")]
mod tonic_status {
    use crate::{Classify, Retryability};

    #[test]
    fn a_tonic_status_is_classified_by_the_otlp_grpc_rules() {
        use tonic::{Code, Status};
        assert_eq!(
            Status::new(Code::Unavailable, "down").classify(),
            Retryability::Retryable
        );
        assert_eq!(
            Status::new(Code::ResourceExhausted, "message larger than max (5 vs. 4)").classify(),
            Retryability::TooLarge
        );
        assert_eq!(
            Status::new(Code::ResourceExhausted, "quota").classify(),
            Retryability::Permanent
        );
        assert_eq!(
            Status::new(Code::Unauthenticated, "no token").classify(),
            Retryability::Permanent
        );
        let invalid = Status::new(Code::InvalidArgument, "bad span");
        assert!(invalid.is_invalid_request());
        assert!(!Status::new(Code::Unavailable, "down").is_invalid_request());
        assert!(!Status::new(Code::Unavailable, "down").is_connection_error());
    }
}
