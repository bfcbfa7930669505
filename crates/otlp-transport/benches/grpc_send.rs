//! Sends pre-encoded trace batches over loopback to one tonic OTLP server,
//! with `GrpcExporter` (pass-through codec) and with the plain generated tonic
//! client (prost codec, the request as a message), so the report can give
//! spans/s for both and their ratio.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{hint::black_box, time::Duration};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_client::TraceServiceClient,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::{AnyValue, KeyValue, any_value},
    trace::v1::{ResourceSpans, ScopeSpans, Span},
};
use otlp_core::{Batch, Signal};
use otlp_transport::{ExporterConfig, GrpcExporter};
use prost::Message as _;
use tonic::{Request, Response, Status, transport::server::TcpIncoming};

const SPANS: usize = 512;

#[derive(Debug, Default)]
struct Sink;

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        black_box(request.into_inner().resource_spans.len());
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

fn request() -> ExportTraceServiceRequest {
    let spans = (0..SPANS)
        .map(|i| Span {
            trace_id: vec![(i % 251) as u8; 16],
            span_id: (i as u64 + 1).to_be_bytes().to_vec(),
            name: format!("GET /api/items/{i}"),
            kind: 2,
            start_time_unix_nano: 1_700_000_000_000_000_000 + i as u64,
            end_time_unix_nano: 1_700_000_000_001_000_000 + i as u64,
            attributes: vec![
                KeyValue {
                    key: "http.method".into(),
                    key_strindex: 0,
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("GET".into())),
                    }),
                },
                KeyValue {
                    key: "http.status_code".into(),
                    key_strindex: 0,
                    value: Some(AnyValue {
                        value: Some(any_value::Value::IntValue(200)),
                    }),
                },
            ],
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let addr = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let incoming = TcpIncoming::from(listener);
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(Sink))
                .serve_with_incoming(incoming),
        );
        addr
    });
    let req = request();
    let batch = Batch::new(
        Signal::Traces,
        Bytes::from(req.encode_to_vec()),
        SPANS as u64,
    );
    let endpoint = format!("http://{addr}");

    let exporter = rt.block_on(async {
        GrpcExporter::new(&ExporterConfig {
            endpoint: endpoint.clone(),
            ..ExporterConfig::default()
        })
        .unwrap()
    });
    let plain = rt.block_on(async { TraceServiceClient::connect(endpoint.clone()).await.unwrap() });

    let mut group = c.benchmark_group("grpc_send");
    group.throughput(Throughput::Elements(SPANS as u64));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("grpc_exporter_preencoded", |b| {
        b.to_async(&rt).iter(|| {
            let exporter = exporter.clone();
            let batch = batch.clone();
            async move { exporter.send(batch).await.unwrap() }
        })
    });
    group.bench_function("plain_tonic_client", |b| {
        b.to_async(&rt).iter(|| {
            let mut client = plain.clone();
            let req = req.clone();
            async move { client.export(req).await.unwrap() }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
