//! otlp-transport alone: an OTLP/HTTP receiver on 127.0.0.1 whose service
//! counts what arrives, and an exporter that sends it one encoded request
//! with gzip. No pipeline, no config crate: the receiver hands each request
//! to any `tower::Service<Batch>`, the exporter is one.
//!
//! Run it with `cargo run -p otlp-transport --example round_trip`.

#![allow(clippy::print_stdout)] // An example reports on stdout.

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use bytes::Bytes;
use otlp_core::{Batch, Classify, ExportResponse, Retryability, Signal};
use otlp_transport::{Compression, Exporter, HttpReceiver, Protocol};
use tower::{ServiceExt, service_fn};

/// The counting service never fails; the receiver still needs its error
/// classified (it maps errors to gRPC / HTTP answers).
#[derive(Debug)]
enum Never {}

impl fmt::Display for Never {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {}
    }
}

impl Classify for Never {
    fn classify(&self) -> Retryability {
        match *self {}
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The receiving side: count the items of every accepted request.
    let received = Arc::new(AtomicU64::new(0));
    let count = received.clone();
    let sink = service_fn(move |batch: Batch| {
        count.fetch_add(batch.items(), Ordering::SeqCst);
        async { Ok::<_, Never>(ExportResponse::success()) }
    });
    let receiver = HttpReceiver::new(sink).bind("127.0.0.1:0".parse()?).await?;
    let addr = receiver.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(receiver.serve(async {
        let _ = stopped.await;
    }));
    println!("receiver: OTLP/HTTP on {addr}");

    // The sending side: one resource, one scope, three (empty) spans,
    // already encoded as an ExportTraceServiceRequest.
    let request = Bytes::from_static(&[0x0a, 0x08, 0x12, 0x06, 0x12, 0x00, 0x12, 0x00, 0x12, 0x00]);
    let batch = Batch::from_encoded(Signal::Traces, request)?;
    let exporter = Exporter::builder()
        .with_endpoint(format!("http://{addr}"))
        .with_protocol(Protocol::HttpProtobuf)
        .with_compression(Compression::Gzip)
        .build()?;
    let response = exporter.oneshot(batch).await?;
    println!(
        "exporter: sent 3 spans, the receiver rejected {}",
        response.rejected
    );
    println!("receiver: got {} spans", received.load(Ordering::SeqCst));

    let _ = stop.send(());
    serving.await?;
    Ok(())
}
