//! The OTLP/gRPC receiver on real sockets at 127.0.0.1: pass-through bytes,
//! status codes with RetryInfo, size limits, gzip, health and reflection.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(all(feature = "grpc", feature = "gzip"))]

mod receive_support;

use receive_support as support;

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use opentelemetry_proto::tonic::collector::{
    metrics::v1::metrics_service_client::MetricsServiceClient,
    trace::v1::trace_service_client::TraceServiceClient,
};
use otlp_core::{Retryability, Signal};
use otlp_transport::{GrpcReceiver, ReceiverLimits, google_rpc};
use prost::Message;
use tonic::{
    Code, Status,
    codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder},
    transport::Channel,
};

use support::{Mode, Recorder, Running, trace_bytes, trace_request};

async fn start(inner: &Recorder, limits: ReceiverLimits) -> (Running, Channel) {
    let bound = GrpcReceiver::new(inner.clone())
        .with_limits(limits)
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let server = Running::start(bound);
    let channel = Channel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .connect()
        .await
        .unwrap();
    (server, channel)
}

/// Sends raw bytes as a unary request, as a broken or hostile client would.
#[derive(Clone, Copy, Debug, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Bytes;
    type Error = Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Bytes;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        let n = src.remaining();
        Ok(Some(src.copy_to_bytes(n)))
    }
}

async fn raw_call(
    channel: Channel,
    path: &'static str,
    body: Bytes,
    gzip: bool,
) -> Result<Bytes, Status> {
    let encoding = gzip.then_some(CompressionEncoding::Gzip);
    raw_call_with(channel, path, body, encoding).await
}

/// One unary call through tonic's own client, compressed with `encoding`.
async fn raw_call_with(
    channel: Channel,
    path: &'static str,
    body: Bytes,
    encoding: Option<CompressionEncoding>,
) -> Result<Bytes, Status> {
    let mut grpc = tonic::client::Grpc::new(channel).max_encoding_message_size(usize::MAX);
    if let Some(encoding) = encoding {
        grpc = grpc.send_compressed(encoding);
    }
    grpc.ready().await.unwrap();
    grpc.unary(
        tonic::Request::new(body),
        http::uri::PathAndQuery::from_static(path),
        Raw,
    )
    .await
    .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn export_bytes_reach_inner_unchanged_and_partial_success_is_answered() {
    let inner = Recorder::new(Mode::Partial(1, "one span too old"));
    let (server, channel) = start(&inner, ReceiverLimits::new()).await;
    let resp = TraceServiceClient::new(channel)
        .export(trace_request(3))
        .await
        .unwrap()
        .into_inner();
    let partial = resp.partial_success.unwrap();
    assert_eq!(
        (partial.rejected_spans, partial.error_message.as_str()),
        (1, "one span too old")
    );
    let seen = inner.batches();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].signal(), Signal::Traces);
    assert_eq!(seen[0].items(), 3);
    assert_eq!(seen[0].bytes(), &trace_bytes(3));
    server.shutdown().await;
}

#[tokio::test]
async fn gzip_compressed_requests_are_accepted() {
    let inner = Recorder::new(Mode::Accept);
    let (server, channel) = start(&inner, ReceiverLimits::new()).await;
    let resp = raw_call(
        channel,
        Signal::Traces.grpc_path_static(),
        trace_bytes(4),
        true,
    )
    .await
    .unwrap();
    assert!(resp.is_empty(), "full success answers an empty response");
    assert_eq!(inner.batches()[0].bytes(), &trace_bytes(4));
    server.shutdown().await;
}

#[cfg(feature = "zstd")]
#[tokio::test]
async fn zstd_compressed_requests_are_accepted_and_zstd_bombs_refused() {
    let inner = Recorder::new(Mode::Accept);
    let limits = ReceiverLimits::new()
        .with_max_request_bytes(1 << 20)
        .with_max_decompressed_bytes(4 << 20);
    let (server, channel) = start(&inner, limits).await;
    // Many HTTP/2 frames, compressed by tonic's own zstd encoder.
    let big = trace_bytes(10_000);
    let resp = raw_call_with(
        channel.clone(),
        Signal::Traces.grpc_path_static(),
        big.clone(),
        Some(CompressionEncoding::Zstd),
    )
    .await
    .unwrap();
    assert!(resp.is_empty(), "full success answers an empty response");
    assert_eq!(inner.batches()[0].bytes(), &big);
    // Kept as received, for a relay to forward without recompressing.
    assert!(inner.batches()[0].has_wire_form("zstd"));
    // 64 MiB of zeros: refused at the 4 MiB decompressed limit.
    let bomb = Bytes::from(vec![0u8; 64 << 20]);
    let err = raw_call_with(
        channel,
        Signal::Traces.grpc_path(),
        bomb,
        Some(CompressionEncoding::Zstd),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert_eq!(inner.batches().len(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn requests_spanning_many_http2_frames_are_received_whole() {
    let inner = Recorder::new(Mode::Accept);
    let (server, channel) = start(&inner, ReceiverLimits::new()).await;
    // Far larger than tonic's 8 KiB default decode buffer and than one
    // 16 KiB HTTP/2 frame, so the message arrives in many pieces.
    let big = trace_bytes(10_000);
    assert!(big.len() > 256 * 1024, "{}", big.len());
    for gzip in [false, true] {
        let resp = raw_call(
            channel.clone(),
            Signal::Traces.grpc_path_static(),
            big.clone(),
            gzip,
        )
        .await
        .unwrap();
        assert!(resp.is_empty(), "full success answers an empty response");
    }
    let seen = inner.batches();
    assert_eq!(seen.len(), 2);
    for batch in seen {
        assert_eq!(batch.items(), 10_000);
        assert_eq!(batch.bytes(), &big);
    }
    server.shutdown().await;
}

trait StaticPath {
    fn grpc_path_static(self) -> &'static str;
}

impl StaticPath for Signal {
    fn grpc_path_static(self) -> &'static str {
        self.grpc_path()
    }
}

#[tokio::test]
async fn malformed_request_gets_invalid_argument_with_the_reason() {
    let inner = Recorder::new(Mode::Accept);
    let (server, channel) = start(&inner, ReceiverLimits::new()).await;
    let err = raw_call(
        channel,
        Signal::Logs.grpc_path(),
        Bytes::from_static(&[0x0a, 0x7f, 0x01]),
        false,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("invalid OTLP logs request")
            && err.message().contains("malformed protobuf"),
        "{}",
        err.message()
    );
    assert!(inner.batches().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn not_ready_inner_gets_unavailable_with_retry_info_in_details_and_trailer() {
    let inner = Recorder::new(Mode::NeverReady);
    let limits = ReceiverLimits::new()
        .with_ready_timeout(Duration::from_millis(20))
        .with_retry_after(Duration::from_millis(1500));
    let (server, channel) = start(&inner, limits).await;
    let err = MetricsServiceClient::new(channel)
        .export(opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().contains("receiver busy"));
    let details = google_rpc::Status::decode(err.details()).unwrap();
    assert_eq!(details.code, 14);
    assert_eq!(
        details.details[0].type_url,
        "type.googleapis.com/google.rpc.RetryInfo"
    );
    let expected = google_rpc::RetryInfo {
        retry_delay: Some(google_rpc::Duration {
            seconds: 1,
            nanos: 500_000_000,
        }),
    };
    assert_eq!(
        google_rpc::RetryInfo::decode(details.details[0].value.as_slice()).unwrap(),
        expected
    );
    let trailer = err
        .metadata()
        .get_bin("google.rpc.retryinfo-bin")
        .expect("retry info trailer");
    let trailer = trailer.to_bytes().unwrap();
    assert_eq!(google_rpc::RetryInfo::decode(trailer).unwrap(), expected);
    server.shutdown().await;
}

#[tokio::test]
async fn inner_failures_map_to_grpc_codes_by_classification() {
    let inner = Recorder::new(Mode::Accept);
    let (server, channel) = start(&inner, ReceiverLimits::new()).await;
    let cases = [
        (Retryability::Retryable, Code::Unavailable),
        (
            Retryability::Throttled(Duration::from_secs(4)),
            Code::Unavailable,
        ),
        (Retryability::TooLarge, Code::ResourceExhausted),
        (Retryability::Permanent, Code::Internal),
    ];
    for (class, code) in cases {
        inner.set(Mode::Fail(class));
        let err = TraceServiceClient::new(channel.clone())
            .export(trace_request(1))
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{class:?}");
        assert!(err.message().contains("upstream answered"), "{class:?}");
        let has_hint = err.metadata().get_bin("google.rpc.retryinfo-bin").is_some();
        assert_eq!(has_hint, code == Code::Unavailable, "{class:?}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn oversized_and_gzip_bomb_messages_get_resource_exhausted() {
    let inner = Recorder::new(Mode::Accept);
    let limits = ReceiverLimits::new()
        .with_max_request_bytes(64 << 10)
        .with_max_decompressed_bytes(256 << 10);
    let (server, channel) = start(&inner, limits).await;
    // 10 000 spans encode to well over 256 KiB.
    let big = trace_bytes(10_000);
    assert!(big.len() > 256 << 10);
    let err = raw_call(channel.clone(), Signal::Traces.grpc_path(), big, false)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    // 64 MiB of zeros compresses to about 64 KiB; decompression stops at the limit.
    let bomb = Bytes::from(vec![0u8; 64 << 20]);
    let err = raw_call(channel, Signal::Traces.grpc_path(), bomb, true)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(inner.batches().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_method_gets_unimplemented() {
    let inner = Recorder::new(Mode::Accept);
    let (server, channel) = start(&inner, ReceiverLimits::new()).await;
    let err = raw_call(
        channel,
        "/opentelemetry.proto.collector.events.v1development.EventsService/Export",
        Bytes::new(),
        false,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    server.shutdown().await;
}

#[tokio::test]
async fn the_profiles_service_reflection_lists_is_served_with_partial_success() {
    use opentelemetry_proto::tonic::{
        collector::profiles::v1development::{
            ExportProfilesServiceRequest, profiles_service_client::ProfilesServiceClient,
        },
        profiles::v1development::{Profile, ProfilesDictionary, ResourceProfiles, ScopeProfiles},
    };
    let inner = Recorder::new(Mode::Partial(1, "one profile too old"));
    let (server, channel) = start(&inner, ReceiverLimits::new()).await;
    let request = ExportProfilesServiceRequest {
        resource_profiles: vec![ResourceProfiles {
            scope_profiles: vec![ScopeProfiles {
                profiles: vec![
                    Profile {
                        profile_id: vec![1; 16],
                        ..Default::default()
                    },
                    Profile {
                        profile_id: vec![2; 16],
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
        dictionary: Some(ProfilesDictionary {
            string_table: vec![String::new(), "cpu".to_owned()],
            ..Default::default()
        }),
    };
    let resp = ProfilesServiceClient::new(channel)
        .export(request.clone())
        .await
        .unwrap()
        .into_inner();
    let partial = resp.partial_success.unwrap();
    assert_eq!(partial.rejected_profiles, 1);
    assert_eq!(partial.error_message, "one profile too old");
    let batches = inner.batches();
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].signal(), Signal::Profiles);
    assert_eq!(batches[0].items(), 2);
    assert_eq!(
        batches[0].bytes().as_ref(),
        request.encode_to_vec().as_slice()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn health_reports_serving_for_each_otlp_service() {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let inner = Recorder::new(Mode::Accept);
    let (server, channel) = start(&inner, ReceiverLimits::new()).await;
    let mut client = HealthClient::new(channel);
    for service in [
        "",
        Signal::Traces.grpc_service(),
        Signal::Metrics.grpc_service(),
        Signal::Logs.grpc_service(),
    ] {
        let resp = client
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(resp.status, ServingStatus::Serving as i32, "{service:?}");
    }
    let err = client
        .check(HealthCheckRequest {
            service: "no.such.Service".to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    server.shutdown().await;
}

#[tokio::test]
async fn reflection_lists_the_otlp_services_and_describes_them() {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let inner = Recorder::new(Mode::Accept);
    let (server, channel) = start(&inner, ReceiverLimits::new()).await;
    let mut client = ServerReflectionClient::new(channel);
    let requests = futures_util::stream::iter([
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        },
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                Signal::Logs.grpc_service().to_owned(),
            )),
        },
    ]);
    let mut responses = client
        .server_reflection_info(requests)
        .await
        .unwrap()
        .into_inner();
    let first = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = first.message_response else {
        panic!("expected a service list, got {first:?}");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    for signal in Signal::ALL {
        assert!(names.contains(&signal.grpc_service()), "{names:?}");
    }
    assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");
    let second = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::FileDescriptorResponse(files)) = second.message_response else {
        panic!("expected file descriptors, got {second:?}");
    };
    assert!(!files.file_descriptor_proto.is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn health_serves_until_shutdown_then_the_port_closes() {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let inner = Recorder::new(Mode::Accept);
    let (server, channel) = start(
        &inner,
        ReceiverLimits::new().with_shutdown_grace(Duration::from_secs(2)),
    )
    .await;
    let addr = server.addr;
    let mut client = HealthClient::new(channel);
    let resp = client
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(resp.into_inner().status, ServingStatus::Serving as i32);
    server.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the listener is closed"
    );
}

#[tokio::test]
async fn connection_without_a_request_is_closed_after_the_header_read_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let inner = Recorder::new(Mode::Accept);
    let limits = ReceiverLimits::new().with_header_read_timeout(Duration::from_millis(200));
    let (server, _channel) = start(&inner, limits).await;
    // Half an HTTP/2 preface, then silence: a slowloris on the gRPC port.
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        s.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
        // EOF or a reset both mean the server closed it.
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf).await;
    })
    .await;
    assert!(
        closed.is_ok(),
        "the server closes an idle connection within the bound"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_request_of_another_signal_or_with_bad_ids_gets_invalid_argument_and_is_not_taken() {
    let inner = Recorder::new(Mode::Accept);
    let (server, channel) = start(&inner, ReceiverLimits::new()).await;
    // A traces request sent to LogsService/Export.
    let err = raw_call(
        channel.clone(),
        Signal::Logs.grpc_path(),
        trace_bytes(3),
        false,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("log_records[0]") && err.message().contains("another signal"),
        "{}",
        err.message()
    );
    // A span with a 15-byte trace id.
    let mut req = trace_request(2);
    req.resource_spans[0].scope_spans[0].spans[1].trace_id = vec![1; 15];
    let err = raw_call(
        channel.clone(),
        Signal::Traces.grpc_path(),
        Bytes::from(req.encode_to_vec()),
        false,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message()
            .contains("spans[1].trace_id: 15 bytes, want 16"),
        "{}",
        err.message()
    );
    assert!(
        inner.batches().is_empty(),
        "nothing invalid reaches the pipeline"
    );
    // Valid traffic on the same channel still goes through.
    raw_call(channel, Signal::Traces.grpc_path(), trace_bytes(3), false)
        .await
        .unwrap();
    assert_eq!(inner.batches().len(), 1);
    server.shutdown().await;
}
