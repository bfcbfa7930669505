#![allow(clippy::unwrap_used, clippy::expect_used)]
//! OTLP profiles (`v1development`) through the real agent binary: requests
//! sent over gRPC (`ProfilesService/Export`) and OTLP/HTTP
//! (`POST /v1development/profiles`, protobuf and JSON) reach the upstream
//! as they were sent, one upstream request each (profiles requests carry a
//! dictionary, so they are never joined), with the profiles counted in the
//! agent's metrics. Real processes, 127.0.0.1 only, bounded waits.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use opentelemetry_proto::tonic::{
    collector::profiles::v1development::ExportProfilesServiceRequest,
    common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value},
    profiles::v1development::{
        Function, Line, Location, Profile, ProfilesDictionary, ResourceProfiles, Sample,
        ScopeProfiles, Stack, ValueType,
    },
    resource::v1::Resource,
};
use otlp::{
    core::{Batch, Classify, ExportResponse, Retryability, Signal},
    transport::{Exporter, GrpcReceiver, Protocol},
};
use prost::Message;

mod common;

use common::*;

/// What the upstream received: each request's signal and bytes.
type Received = Arc<Mutex<Vec<(Signal, Vec<u8>)>>>;

/// The upstream's inner service: records every request and accepts it.
#[derive(Clone)]
struct Recorder(Received);

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

impl tower::Service<Batch> for Recorder {
    type Response = ExportResponse;
    type Error = Never;
    type Future = std::future::Ready<Result<ExportResponse, Never>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Never>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, batch: Batch) -> Self::Future {
        self.0
            .lock()
            .unwrap()
            .push((batch.signal(), batch.bytes().to_vec()));
        std::future::ready(Ok(ExportResponse::success()))
    }
}

/// An OTLP/gRPC receiver of this workspace on a thread of its own, standing
/// in for the upstream collector; returns its address and what it received.
fn start_upstream() -> (SocketAddr, Received) {
    let received = Received::default();
    let (tx, rx) = std::sync::mpsc::channel();
    let recorder = Recorder(received.clone());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let bound = GrpcReceiver::new(recorder)
                .bind("127.0.0.1:0".parse().unwrap())
                .await
                .unwrap();
            tx.send(bound.local_addr()).unwrap();
            bound.serve(std::future::pending()).await;
        });
    });
    let addr = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    (addr, received)
}

fn string(v: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(v.to_owned())),
    })
}

/// A profiles request with one resource per entry of `profiles` (that many
/// profiles each) and a dictionary whose strings name `tag`.
fn request(tag: &str, profiles: &[u8]) -> ExportProfilesServiceRequest {
    let dictionary = ProfilesDictionary {
        string_table: ["", "samples", "count", tag, "main.rs"]
            .map(str::to_owned)
            .to_vec(),
        function_table: vec![
            Function::default(),
            Function {
                name_strindex: 3,
                filename_strindex: 4,
                start_line: 1,
                ..Default::default()
            },
        ],
        location_table: vec![
            Location::default(),
            Location {
                address: 0x4000,
                lines: vec![Line {
                    function_index: 1,
                    line: 12,
                    column: 5,
                }],
                ..Default::default()
            },
        ],
        stack_table: vec![
            Stack::default(),
            Stack {
                location_indices: vec![1],
            },
        ],
        ..Default::default()
    };
    let mut id = 0u8;
    ExportProfilesServiceRequest {
        resource_profiles: profiles
            .iter()
            .enumerate()
            .map(|(r, &n)| ResourceProfiles {
                resource: Some(Resource {
                    attributes: vec![KeyValue {
                        key: "service.name".to_owned(),
                        value: string(&format!("{tag}-{r}")),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                scope_profiles: vec![ScopeProfiles {
                    scope: Some(InstrumentationScope {
                        name: "profiler".to_owned(),
                        ..Default::default()
                    }),
                    profiles: (0..n)
                        .map(|_| {
                            id += 1;
                            Profile {
                                sample_type: Some(ValueType {
                                    type_strindex: 1,
                                    unit_strindex: 2,
                                }),
                                samples: vec![Sample {
                                    stack_index: 1,
                                    values: vec![i64::from(id)],
                                    timestamps_unix_nano: vec![1_700_000_000_000_000_000],
                                    ..Default::default()
                                }],
                                time_unix_nano: 1_700_000_000_000_000_000,
                                duration_nano: 1_000_000_000,
                                profile_id: vec![id; 16],
                                ..Default::default()
                            }
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
        dictionary: Some(dictionary),
    }
}

/// One HTTP/1.1 POST; returns the status line's code and the body.
fn post(addr: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let resp = String::from_utf8_lossy(&resp).into_owned();
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, resp)
}

/// Waits (up to 20 s) until `received` holds `n` requests.
fn wait_requests(received: &Received, n: usize) -> Vec<(Signal, Vec<u8>)> {
    let started = Instant::now();
    loop {
        let got = received.lock().unwrap().clone();
        if got.len() >= n || started.elapsed() > Duration::from_secs(20) {
            return got;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits (up to 20 s) until the agent's `/metrics` shows `line`.
fn wait_metric(admin: &str, line: &str) -> String {
    let started = Instant::now();
    loop {
        let (_, metrics) = http_get(admin, "/metrics");
        if metrics.lines().any(|l| l == line) || started.elapsed() > Duration::from_secs(20) {
            return metrics;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn profiles_over_grpc_and_http_reach_the_upstream_as_sent_and_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (upstream, received) = start_upstream();
    let agent = start_agent(&upstream.to_string(), dir.path(), "");

    let a = request("grpc-a", &[2, 1]).encode_to_vec();
    let b = request("grpc-b", &[2]).encode_to_vec();
    let c = request("http-c", &[1, 1, 1]).encode_to_vec();
    let d = request("json-d", &[1]);

    // Two requests back to back over gRPC (within one batch timeout: other
    // signals' requests would be joined into one upstream request here).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let exporter = Exporter::builder()
            .with_endpoint(format!("http://{}", agent.grpc))
            .with_protocol(Protocol::Grpc)
            .with_timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        for bytes in [&a, &b] {
            let batch = Batch::from_encoded(Signal::Profiles, bytes.clone().into()).unwrap();
            let resp = exporter.send(batch).await.unwrap();
            assert!(resp.is_full_success(), "{resp:?}");
        }
    });
    // OTLP/HTTP, protobuf and JSON, on the path the specification gives.
    let (status, resp) = post(
        &agent.http,
        "/v1development/profiles",
        "application/x-protobuf",
        &c,
    );
    assert_eq!(status, 200, "{resp}");
    let json = otlp::transport::to_otlp_json(Signal::Profiles, &d.encode_to_vec()).unwrap();
    let (status, resp) = post(
        &agent.http,
        "/v1development/profiles",
        "application/json",
        &json,
    );
    assert_eq!(status, 200, "{resp}");

    let got = wait_requests(&received, 4);
    assert_eq!(got.len(), 4, "one upstream request per profiles request");
    assert!(got.iter().all(|(s, _)| *s == Signal::Profiles));
    let bytes: Vec<&Vec<u8>> = got.iter().map(|(_, b)| b).collect();
    for (name, sent) in [("grpc a", &a), ("grpc b", &b), ("http c", &c)] {
        assert!(
            bytes.contains(&sent),
            "{name}: not received byte for byte (joined or re-encoded?)"
        );
    }
    // The JSON request is re-encoded, and decodes to what was sent.
    let decoded: Vec<ExportProfilesServiceRequest> = got
        .iter()
        .map(|(_, b)| ExportProfilesServiceRequest::decode(b.as_slice()).unwrap())
        .collect();
    assert!(decoded.contains(&d), "the JSON request arrived changed");

    // 3 + 2 + 3 + 1 profiles, counted by walking the wire.
    let line = "otlp_items_sent_total{signal=\"profiles\"} 9";
    let metrics = wait_metric(&agent.admin, line);
    assert!(metrics.lines().any(|l| l == line), "{metrics}");
    assert!(
        metrics
            .lines()
            .any(|l| l == "otlp_items_accepted_total{signal=\"profiles\"} 9"),
        "{metrics}"
    );
}

#[test]
fn an_invalid_profiles_request_is_refused_with_the_field_path() {
    let dir = tempfile::tempdir().unwrap();
    let (upstream, received) = start_upstream();
    let agent = start_agent(&upstream.to_string(), dir.path(), "");
    let mut bad = request("bad", &[1]);
    bad.resource_profiles[0].scope_profiles[0].profiles[0].profile_id = vec![7; 5];
    let (status, resp) = post(
        &agent.http,
        "/v1development/profiles",
        "application/x-protobuf",
        &bad.encode_to_vec(),
    );
    assert_eq!(status, 400, "{resp}");
    assert!(
        resp.contains("resource_profiles[0].scope_profiles[0].profiles[0].profile_id"),
        "{resp}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(received.lock().unwrap().is_empty());
}

#[test]
fn profiles_the_python_protobuf_bindings_send_arrive_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (upstream, received) = start_upstream();
    let agent = start_agent(&upstream.to_string(), dir.path(), "");
    let script = root().join("crates/otlp-client/tests/python/profiles_peer.py");
    let out = run(
        std::process::Command::new(python())
            .arg(&script)
            .args([&agent.grpc, &agent.http]),
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python peer failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // "sent <transport> <items> <hex>" per request.
    let sent: Vec<(u64, Vec<u8>)> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("sent "))
        .map(|l| {
            let mut parts = l.split_whitespace().skip(1);
            let items = parts.next().unwrap().parse().unwrap();
            let hex = parts.next().unwrap();
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            (items, bytes)
        })
        .collect();
    assert_eq!(sent.len(), 2, "{stdout}");
    let got = wait_requests(&received, 2);
    assert_eq!(got.len(), 2);
    for (items, bytes) in &sent {
        assert!(
            got.iter()
                .any(|(s, b)| *s == Signal::Profiles && b == bytes),
            "a request of {items} profiles did not arrive byte for byte"
        );
    }
    let total: u64 = sent.iter().map(|(n, _)| n).sum();
    let line = format!("otlp_items_sent_total{{signal=\"profiles\"}} {total}");
    let metrics = wait_metric(&agent.admin, &line);
    assert!(metrics.lines().any(|l| l == line), "{metrics}");
}
