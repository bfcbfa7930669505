//! Shared helpers of the receiver integration tests (a `mod receive_support;` of each, not a test target).

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::{
    fmt,
    net::SocketAddr,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value},
    resource::v1::Resource,
    trace::v1::{ResourceSpans, ScopeSpans, Span},
};
use otlp_core::{Batch, Classify, ExportResponse, Retryability};
use prost::Message;
use tokio::sync::{Notify, oneshot};

/// What the test inner service answers.
#[derive(Clone, Debug)]
pub enum Mode {
    Accept,
    Partial(u64, &'static str),
    Fail(Retryability),
    /// `poll_ready` stays pending.
    NeverReady,
    /// The call waits until the notify fires.
    Block(Arc<Notify>),
    /// The first `n` calls fail with this classification, later calls are accepted.
    FailFirst(Arc<std::sync::atomic::AtomicUsize>, Retryability),
}

#[derive(Debug)]
pub struct InnerError(pub Retryability);

impl fmt::Display for InnerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "upstream answered {}", self.0.as_str())
    }
}

impl Classify for InnerError {
    fn classify(&self) -> Retryability {
        self.0
    }
}

/// An inner service that records every batch it receives.
#[derive(Clone, Debug)]
pub struct Recorder {
    pub mode: Arc<Mutex<Mode>>,
    pub seen: Arc<Mutex<Vec<Batch>>>,
    /// Calls started (including those still blocked or failed).
    pub calls: Arc<std::sync::atomic::AtomicUsize>,
}

impl Recorder {
    pub fn new(mode: Mode) -> Self {
        Self {
            mode: Arc::new(Mutex::new(mode)),
            seen: Arc::new(Mutex::new(Vec::new())),
            calls: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        }
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// Waits (bounded) until `n` calls have started.
    pub async fn wait_calls(&self, n: usize) {
        for _ in 0..1000 {
            if self.calls.load(std::sync::atomic::Ordering::SeqCst) >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{n} calls did not start within 10s");
    }

    pub fn batches(&self) -> Vec<Batch> {
        self.seen.lock().unwrap().clone()
    }
}

impl tower::Service<Batch> for Recorder {
    type Response = ExportResponse;
    type Error = InnerError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<ExportResponse, InnerError>> + Send>,
    >;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), InnerError>> {
        match *self.mode.lock().unwrap() {
            Mode::NeverReady => Poll::Pending,
            _ => Poll::Ready(Ok(())),
        }
    }

    fn call(&mut self, batch: Batch) -> Self::Future {
        let mode = self.mode.lock().unwrap().clone();
        let seen = self.seen.clone();
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async move {
            match mode {
                Mode::Fail(r) => return Err(InnerError(r)),
                Mode::FailFirst(ref left, r) => {
                    let dec = left.fetch_update(
                        std::sync::atomic::Ordering::SeqCst,
                        std::sync::atomic::Ordering::SeqCst,
                        |n| n.checked_sub(1),
                    );
                    if dec.is_ok() {
                        return Err(InnerError(r));
                    }
                }
                Mode::Block(ref n) => n.notified().await,
                _ => {}
            }
            seen.lock().unwrap().push(batch);
            match mode {
                Mode::Partial(n, m) => Ok(ExportResponse::partial(n, m)),
                _ => Ok(ExportResponse::success()),
            }
        })
    }
}

/// A trace request with `n` spans named `span-i`.
pub fn trace_request(n: usize) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".to_owned(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("receiver-test".to_owned())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "test".to_owned(),
                    ..Default::default()
                }),
                spans: (0..n)
                    .map(|i| Span {
                        trace_id: vec![1; 16],
                        span_id: vec![2; 8],
                        name: format!("span-{i}"),
                        ..Default::default()
                    })
                    .collect(),
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

pub fn trace_bytes(n: usize) -> Bytes {
    Bytes::from(trace_request(n).encode_to_vec())
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// A server running on its own task; dropping `stop` shuts it down.
pub struct Running {
    pub addr: SocketAddr,
    pub stop: Option<oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn start<S>(bound: otlp_transport::BoundReceiver<S>) -> Self
    where
        S: tower::Service<Batch, Response = ExportResponse> + Clone + Send + 'static,
        S::Future: Send,
        S::Error: Classify + fmt::Display + Send,
    {
        let addr = bound.local_addr();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(bound.serve(async move {
            let _ = rx.await;
        }));
        Self {
            addr,
            stop: Some(tx),
            task,
        }
    }

    /// Signals shutdown and waits (bounded) for `serve` to return.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("serve returns within 10s of shutdown")
            .unwrap();
    }
}
