//! Property-based fuzzing of the decode paths and the configuration inputs:
//! `Batch::from_encoded` on arbitrary and mutated requests, the HTTP
//! receiver's OTLP/JSON decode over a real socket, and the environment
//! parser. Nothing may panic; valid input must decode to the right counts;
//! invalid input must get a clear error (HTTP 400). Case counts are recorded.
//!
//! cargo-fuzz needs a nightly toolchain, which this project does not pin, so
//! proptest with many cases stands in for it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    trace::v1::{ResourceSpans, ScopeSpans, Span},
};
use otlp_config::{Env, Sources};
use otlp_core::{Batch, Classify, ExportResponse, Retryability, Signal, count_items};
use otlp_e2e::{Figures, full_mode, record};
use proptest::{prelude::*, test_runner::TestRunner};
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn cases(fast: u32) -> u32 {
    if full_mode() { fast * 10 } else { fast }
}

fn runner(n: u32) -> TestRunner {
    TestRunner::new(ProptestConfig {
        cases: n,
        failure_persistence: None,
        ..ProptestConfig::default()
    })
}

fn request(shape: &[u8]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: shape
            .iter()
            .map(|&n| ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: (0..n)
                        .map(|i| Span {
                            name: format!("s{i}"),
                            span_id: vec![i; 8],
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }
}

#[test]
fn batch_decode_never_panics_and_counts_valid_requests_exactly() {
    let n = cases(3000);
    let mut r = runner(n);
    let ran = AtomicU64::new(0);
    // Valid requests of random shape: the count is the number of spans, and
    // arbitrary truncations and byte flips give Ok or a DecodeError, never a panic.
    r.run(
        &(
            proptest::collection::vec(0u8..20, 0..6),
            any::<prop::sample::Index>(),
            any::<u8>(),
            any::<prop::sample::Index>(),
        ),
        |(shape, cut, flip, at)| {
            ran.fetch_add(1, Ordering::Relaxed);
            let bytes = request(&shape).encode_to_vec();
            let expected: u64 = shape.iter().map(|&n| u64::from(n)).sum();
            let b = Batch::from_encoded(Signal::Traces, Bytes::from(bytes.clone())).unwrap();
            prop_assert_eq!(b.items(), expected);
            if !bytes.is_empty() {
                let mut bad = bytes.clone();
                let i = at.index(bad.len());
                bad[i] ^= flip;
                let _ = Batch::from_encoded(Signal::Traces, Bytes::from(bad.clone()));
                let _ = count_items(Signal::Logs, &bad);
                let short = &bytes[..cut.index(bytes.len())];
                if let Ok(b) = Batch::from_encoded(Signal::Traces, Bytes::copy_from_slice(short)) {
                    prop_assert!(b.items() <= expected);
                }
            }
            Ok(())
        },
    )
    .unwrap();
    // Arbitrary bytes for every signal.
    let mut r = runner(n);
    r.run(&proptest::collection::vec(any::<u8>(), 0..512), |raw| {
        ran.fetch_add(1, Ordering::Relaxed);
        for s in Signal::ALL {
            if let Ok(b) = Batch::from_encoded(s, Bytes::from(raw.clone())) {
                // Whatever decodes splits without panicking, into halves that add up.
                if let Ok(Some((l, rr))) = b.try_split() {
                    prop_assert_eq!(l.items() + rr.items(), b.items());
                }
            }
        }
        Ok(())
    })
    .unwrap();
    let ran = ran.load(Ordering::Relaxed);
    record(&Figures {
        suite: "fuzz",
        scenario: "batch_from_encoded".to_owned(),
        protocol: "-",
        expected: "no panic; exact counts for valid requests".to_owned(),
        cases: Some(ran),
        ..Figures::default()
    });
    assert_eq!(ran, u64::from(n) * 2);
}

#[test]
fn env_parser_never_panics_and_reports_every_bad_value() {
    const NAMES: [&str; 12] = [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_COMPRESSION",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
        "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT",
        "OTEL_EXPORTER_OTLP_CERTIFICATE",
        "OTEL_EXPORTER_OTLP_INSECURE",
        "OTLP_ENDPOINT",
        "OTLP_PROTOCOL",
        "OTLP_TIMEOUT",
    ];
    let value = prop_oneof![
        ".{0,40}",
        "[a-z0-9:/%=,._-]{0,30}",
        Just("http://127.0.0.1:4317".to_owned()),
        Just("grpc".to_owned()),
        Just("gzip".to_owned()),
        Just("1000".to_owned()),
        Just("-1".to_owned()),
        Just("a=b,c=%zz".to_owned()),
        Just("18446744073709551616".to_owned()),
    ];
    let n = cases(2000);
    let ran = AtomicU64::new(0);
    let invalid = AtomicU64::new(0);
    runner(n)
        .run(
            &proptest::collection::vec((0..NAMES.len(), value), 0..6),
            |vars| {
                ran.fetch_add(1, Ordering::Relaxed);
                let env = Env::from_map(vars.iter().map(|(i, v)| (NAMES[*i], v.clone())));
                let resolved = Sources::new().with_env(env).resolve();
                if !resolved.is_valid() {
                    invalid.fetch_add(1, Ordering::Relaxed);
                    // Every error names the setting and says something.
                    for p in resolved.errors() {
                        prop_assert!(!p.to_string().is_empty());
                    }
                    prop_assert!(resolved.into_result().is_err());
                }
                Ok(())
            },
        )
        .unwrap();
    let ran = ran.load(Ordering::Relaxed);
    record(&Figures {
        suite: "fuzz",
        scenario: "env_parser".to_owned(),
        protocol: "-",
        expected: "no panic; invalid values reported".to_owned(),
        cases: Some(ran),
        dropped_or_failed: invalid.load(Ordering::Relaxed),
        ..Figures::default()
    });
    assert_eq!(ran, u64::from(n));
    // The generator reaches the error paths, so the property is not vacuous.
    assert!(invalid.load(Ordering::Relaxed) > 0);
}

#[derive(Debug)]
struct Never;

impl std::fmt::Display for Never {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("never")
    }
}

impl Classify for Never {
    fn classify(&self) -> Retryability {
        Retryability::Permanent
    }
}

async fn post_json(addr: std::net::SocketAddr, body: &[u8]) -> u16 {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&out);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn http_json_decode_answers_200_or_400_and_never_panics() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let received = Arc::new(AtomicU64::new(0));
    let rec = received.clone();
    let addr = rt.block_on(async move {
        let sink = tower::service_fn(move |b: Batch| {
            rec.fetch_add(b.items(), Ordering::Relaxed);
            async { Ok::<_, Never>(ExportResponse::success()) }
        });
        let bound = otlp_transport::HttpReceiver::new(sink)
            .bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = bound.local_addr();
        tokio::spawn(bound.serve(std::future::pending::<()>()));
        addr
    });
    let piece = prop_oneof![
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just(",".to_owned()),
        Just(":".to_owned()),
        Just("\"resourceSpans\"".to_owned()),
        Just("\"scopeSpans\"".to_owned()),
        Just("\"spans\"".to_owned()),
        Just("\"name\"".to_owned()),
        Just("\"spanId\"".to_owned()),
        Just("\"traceId\"".to_owned()),
        Just("\"0102030405060708\"".to_owned()),
        Just("\"\\ud800\"".to_owned()),
        Just("1e999".to_owned()),
        Just("-1".to_owned()),
        Just("null".to_owned()),
        "\"[^\"\\\\]{0,8}\"",
    ];
    let n = cases(200);
    let ran = AtomicU64::new(0);
    let statuses = std::sync::Mutex::new(std::collections::BTreeMap::<u16, u64>::new());
    runner(n)
        .run(
            &(
                0u8..3,
                proptest::collection::vec(piece, 0..40),
                proptest::collection::vec(".{0,12}", 0..5),
                any::<prop::sample::Index>(),
                proptest::collection::vec(any::<u8>(), 1..4),
            ),
            |(mode, pieces, names, cut, junk)| {
                ran.fetch_add(1, Ordering::Relaxed);
                // A valid document whose span names are arbitrary Unicode.
                let spans: Vec<_> = names
                    .iter()
                    .map(|n| serde_json::json!({"name": n, "spanId": "0102030405060708"}))
                    .collect();
                let valid =
                    serde_json::json!({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]})
                        .to_string()
                        .into_bytes();
                let body = match mode {
                    // Valid: must be accepted with every span.
                    0 => valid,
                    // Truncated, then raw bytes (often invalid UTF-8) appended.
                    1 => {
                        let mut b = valid[..cut.index(valid.len())].to_vec();
                        b.extend_from_slice(&junk);
                        b
                    }
                    // A soup of JSON and OTLP pieces, then raw bytes.
                    _ => {
                        let mut b = pieces.concat().into_bytes();
                        b.extend_from_slice(&junk);
                        b
                    }
                };
                let before = received.load(Ordering::Relaxed);
                let code = rt.block_on(post_json(addr, &body));
                *statuses.lock().unwrap().entry(code).or_default() += 1;
                prop_assert!(
                    code == 200 || code == 400,
                    "status {code} for {:?}",
                    String::from_utf8_lossy(&body)
                );
                if mode == 0 {
                    prop_assert_eq!(code, 200);
                    prop_assert_eq!(
                        received.load(Ordering::Relaxed) - before,
                        names.len() as u64
                    );
                }
                Ok(())
            },
        )
        .unwrap();
    // A valid request still goes through: the receiver survived all of it.
    let valid = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"a","spanId":"0102030405060708","traceId":"0102030405060708090a0b0c0d0e0f10"}]}]}]}"#;
    let before = received.load(Ordering::Relaxed);
    assert_eq!(rt.block_on(post_json(addr, valid)), 200);
    assert_eq!(received.load(Ordering::Relaxed), before + 1);
    let ran = ran.load(Ordering::Relaxed);
    let statuses = statuses.into_inner().unwrap();
    record(&Figures {
        suite: "fuzz",
        scenario: "http_json_decode".to_owned(),
        protocol: "http",
        expected: format!("200 or 400 only; statuses seen {statuses:?}"),
        cases: Some(ran),
        ..Figures::default()
    });
    assert_eq!(ran, u64::from(n));
    // Both answers were reached, so neither property is vacuous.
    assert!(statuses.get(&400).copied().unwrap_or(0) > 0, "{statuses:?}");
    assert!(statuses.get(&200).copied().unwrap_or(0) > 0, "{statuses:?}");
}
