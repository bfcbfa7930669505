//! One bad request never sinks other senders' items: the running agent
//! validates each received request before acknowledging it (issue 15,
//! case 3), while valid traffic flows beside the bad requests and is
//! delivered exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use opentelemetry_proto::tonic::{
    collector::logs::v1::ExportLogsServiceRequest,
    common::v1::{AnyValue, ArrayValue, any_value},
    logs::v1::{LogRecord, ResourceLogs, ScopeLogs},
};
use otlp_e2e::{
    FaultServer, Figures, Script,
    agent::{Agent, AgentConfig, metric_sum, post_to, spans_with},
    record,
};
use prost::Message;

const PB: &str = "application/x-protobuf";

fn deep_log(levels: usize) -> Vec<u8> {
    let mut v = AnyValue {
        value: Some(any_value::Value::StringValue("leaf".into())),
    };
    for _ in 0..levels {
        v = AnyValue {
            value: Some(any_value::Value::ArrayValue(ArrayValue { values: vec![v] })),
        };
    }
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    body: Some(v),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_requests_get_400_and_valid_traffic_beside_them_is_delivered_exactly() {
    let server = FaultServer::start(Script::accept()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = AgentConfig::new(server.grpc_endpoint());
    // A long batch timeout, so valid and invalid requests would be joined.
    cfg.batch = "  batch_timeout: 200ms\n".to_owned();
    let agent = Agent::start(&cfg, dir.path(), "validation").unwrap();

    // Valid senders: 40 requests of 25 spans, concurrently with the bad ones.
    let acked = Arc::new(Mutex::new(HashSet::new()));
    let valid = {
        let (addr, acked) = (agent.http, acked.clone());
        tokio::spawn(async move {
            for r in 0..40u64 {
                let (s, _) = post_to(
                    addr,
                    "/v1/traces",
                    "",
                    PB,
                    &spans_with(r * 25, 25, "ok", 16),
                )
                .await;
                if s == 200 {
                    acked.lock().unwrap().extend(r * 25..r * 25 + 25);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let mut bad_utf8 = spans_with(900_000, 3, "NAME", 16);
    let at = bad_utf8.windows(4).position(|w| w == b"NAME").unwrap();
    bad_utf8[at] = 0xff;
    let cases: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        (
            "traces payload sent to /v1/logs",
            "/v1/logs",
            spans_with(800_000, 3, "wrong-endpoint", 16),
            "another signal",
        ),
        (
            "200-deep nested AnyValue",
            "/v1/logs",
            deep_log(200),
            "nested deeper than 32",
        ),
        (
            "invalid UTF-8 in a span name",
            "/v1/traces",
            bad_utf8,
            "UTF-8",
        ),
        (
            "15-byte trace id",
            "/v1/traces",
            spans_with(700_000, 3, "short-id", 15),
            "trace_id: 15 bytes, want 16",
        ),
    ];
    let mut wrong = Vec::new();
    for _round in 0..5 {
        for (what, path, body, reason) in &cases {
            let (status, text) = post_to(agent.http, path, "", PB, body).await;
            if status != 400 || !text.contains(reason) {
                wrong.push(format!("{what}: {status} {text}"));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    valid.await.unwrap();
    let acked: HashSet<u64> = acked.lock().unwrap().clone();
    let n = acked.len() as u64;
    let ok = server.wait_for_items(n, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fs = server.stats();
    let ids = server.span_ids();
    let m = agent.metrics().await;
    let t = ["signal=\"traces\""];
    let accepted = metric_sum(&m, "otlp_items_accepted_total", &t);
    let sent = metric_sum(&m, "otlp_items_sent_total", &t);
    let lost_or_failed = metric_sum(&m, "otlp_items_dropped_total", &[])
        + metric_sum(&m, "otlp_items_failed_total", &[]);
    let lost = acked.iter().filter(|i| !ids.contains(i)).count() as u64;
    record(&Figures {
        suite: "validation",
        scenario: "bad_requests_beside_valid_traffic".into(),
        protocol: "http",
        expected: "wrong signal, 200-deep AnyValue, invalid UTF-8, 15-byte trace id: 400 with the reason; valid items delivered once".into(),
        sent: n,
        delivered: fs.items_accepted,
        lost,
        duplicated: fs.duplicate_spans,
        dropped_or_failed: lost_or_failed,
        cases: Some(20 + 40),
        ..Figures::default()
    });
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert_eq!(n, 1000, "every valid request acknowledged");
    assert!(ok, "{fs:?}");
    assert_eq!(lost, 0);
    assert_eq!(fs.items_accepted, n, "nothing invalid upstream: {fs:?}");
    assert_eq!(fs.duplicate_spans, 0);
    assert_eq!((accepted, sent, lost_or_failed), (n, n, 0));
}
