//! otlp-resilience alone around a plain tonic client: the generated
//! `TraceServiceClient` of opentelemetry-proto, wrapped in `Retry`, talks
//! to a collector on 127.0.0.1 that answers `UNAVAILABLE` twice before it
//! accepts. `tonic::Status` is classified by the OTLP/gRPC retry rules
//! (otlp-core's `tonic` feature), so no newtype is needed.
//!
//! Run it with `cargo run -p otlp-resilience --example tonic_client`.

#![allow(clippy::print_stdout)] // An example reports on stdout.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_client::TraceServiceClient,
    trace_service_server::{TraceService, TraceServiceServer},
};
use otlp_resilience::{RetryLayer, RetryPolicy};
use tonic::{Request, Response, Status};
use tower::{ServiceBuilder, ServiceExt, service_fn};

/// A collector that is unavailable for its first two calls.
#[derive(Default)]
struct Flaky {
    calls: Arc<AtomicU32>,
}

#[tonic::async_trait]
impl TraceService for Flaky {
    async fn export(
        &self,
        _request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n <= 2 {
            println!("collector: call {n} -> UNAVAILABLE");
            return Err(Status::unavailable("warming up"));
        }
        println!("collector: call {n} -> OK");
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let collector = Flaky::default();
    let calls = collector.calls.clone();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let client = TraceServiceClient::connect(format!("http://{addr}")).await?;
    // The plain tonic call as a tower service; its error is `tonic::Status`.
    let export = service_fn(move |request: ExportTraceServiceRequest| {
        let mut client = client.clone();
        async move { client.export(request).await.map(Response::into_inner) }
    });
    let policy = RetryPolicy::builder()
        .with_initial_backoff(Duration::from_millis(100))
        .with_max_elapsed(Duration::from_secs(10))
        .build()?;
    let exporter = ServiceBuilder::new()
        .layer(RetryLayer::new(policy))
        .service(export);

    exporter
        .oneshot(ExportTraceServiceRequest::default())
        .await?;
    println!(
        "exported after {} attempts (2 retried UNAVAILABLE answers)",
        calls.load(Ordering::SeqCst)
    );
    Ok(())
}
