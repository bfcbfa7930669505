//! The OTLP/gRPC receiver: the three collector services through a pass-through
//! codec, plus `grpc.health.v1.Health` and server reflection.

use std::{convert::Infallible, fmt, net::SocketAddr, pin::Pin, sync::Arc, time::Duration};

use bytes::{Buf, BufMut, Bytes};
use http::HeaderValue;
use hyper::{Request, Response, body::Incoming};
use otlp_core::{Batch, Classify, ExportResponse, Signal};
use tokio::sync::Semaphore;
use tonic::{
    Code, Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    metadata::{MetadataMap, MetadataValue},
    server::{Grpc, UnaryService},
};
use tonic_health::{
    ServingStatus,
    pb::health_server::HealthServer,
    server::{HealthReporter, HealthService},
};
use tower::{Service, ServiceExt, util::BoxCloneSyncService};

use crate::receive::{
    BoundReceiver, ReceiveError, ReceiverLimits,
    dispatch::{self, Refusal},
    rpc,
    serve::{self, Handle},
};

/// The metadata key the OpenTelemetry Python gRPC exporter reads its retry
/// delay from (the spec's place, `grpc-status-details-bin`, is sent too).
const RETRY_INFO_TRAILER: &str = "google.rpc.retryinfo-bin";

/// The OTLP/gRPC receiver (tonic over hyper, HTTP/2 only).
///
/// Serves `TraceService/Export`, `MetricsService/Export` and
/// `LogsService/Export`, handing the raw request bytes to the inner service as
/// a [`Batch`] without decoding them, and answers with the OTLP codes:
///
/// | situation | code |
/// |-----------|------|
/// | accepted (partial success in the response) | `OK` |
/// | malformed request | `INVALID_ARGUMENT` with the reason |
/// | inner service busy, retryable failure, too many requests | `UNAVAILABLE` with `RetryInfo` |
/// | message over the size limit, inner says too large | `RESOURCE_EXHAUSTED` (no retry hint) |
/// | inner service failed for good | `INTERNAL` |
///
/// `RetryInfo` is sent both in `grpc-status-details-bin` (the spec's place)
/// and in the `google.rpc.retryinfo-bin` trailer (where the Python exporter
/// reads it). It also serves `grpc.health.v1.Health` (the three services and
/// `""` report `SERVING` until shutdown begins) and server reflection (v1 and
/// v1alpha), so `grpcurl` and `grpc_health_probe` work.
///
/// ```
/// use otlp_core::{Batch, ExportResponse};
/// use otlp_transport::GrpcReceiver;
/// # #[derive(Debug)] struct Never;
/// # impl std::fmt::Display for Never { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("never") } }
/// # impl otlp_core::Classify for Never { fn classify(&self) -> otlp_core::Retryability { otlp_core::Retryability::Permanent } }
///
/// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// # rt.block_on(async {
/// let sink = tower::service_fn(|batch: Batch| async move {
///     let _ = (batch.signal(), batch.items());
///     Ok::<_, Never>(ExportResponse::success())
/// });
/// // An agent binds 0.0.0.0:4317; port 0 lets the system pick one.
/// let bound = GrpcReceiver::new(sink).bind("127.0.0.1:0".parse()?).await?;
/// let addr = bound.local_addr();
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// let server = tokio::spawn(bound.serve(async { let _ = stopped.await; }));
/// assert!(tokio::net::TcpStream::connect(addr).await.is_ok());
/// let _ = stop.send(());
/// server.await?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct GrpcReceiver<S> {
    inner: S,
    limits: ReceiverLimits,
}

type GrpcService = BoxCloneSyncService<Request<Incoming>, Response<tonic::body::Body>, Infallible>;

/// The per-connection request router.
#[derive(Clone)]
pub(crate) struct GrpcRouter<S> {
    inner: S,
    shared: Arc<Shared>,
    health: HealthServer<HealthService>,
    reporter: HealthReporter,
    reflection_v1: GrpcService,
    reflection_v1alpha: GrpcService,
}

#[derive(Debug)]
struct Shared {
    limits: ReceiverLimits,
    requests: Arc<Semaphore>,
}

/// One export method, as tonic's unary handler sees it.
struct ExportMethod<S> {
    /// Taken by the one call the method is built for.
    inner: Option<S>,
    signal: Signal,
    shared: Arc<Shared>,
}

/// A codec that hands over the request bytes as they arrived and writes the
/// response bytes as they are: no decode, no re-encode.
#[derive(Clone, Copy, Debug, Default)]
struct RawCodec;

#[derive(Clone, Copy, Debug, Default)]
struct RawEncoder;

#[derive(Clone, Copy, Debug, Default)]
struct RawDecoder;

// === impl GrpcReceiver ===

impl<S> GrpcReceiver<S>
where
    S: Service<Batch, Response = ExportResponse> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Classify + fmt::Display + Send,
{
    /// A receiver handing every accepted request to `inner`, with default limits.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            limits: ReceiverLimits::new(),
        }
    }

    /// Replaces the limits.
    pub fn with_limits(mut self, limits: ReceiverLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The limits in force.
    pub fn limits(&self) -> &ReceiverLimits {
        &self.limits
    }

    /// Validates the limits, prepares health and reflection, and binds `addr`
    /// (port 0 picks a free port).
    ///
    /// # Errors
    ///
    /// [`ReceiveError::InvalidLimit`] for a limit that would refuse every
    /// request, [`ReceiveError::Reflection`] if the descriptors cannot be
    /// loaded, [`ReceiveError::Bind`] when the address cannot be bound.
    pub async fn bind(self, addr: SocketAddr) -> Result<BoundReceiver<S>, ReceiveError> {
        self.limits.validate()?;
        let reporter = HealthReporter::new();
        for signal in Signal::ALL {
            reporter
                .set_service_status(signal.grpc_service(), ServingStatus::Serving)
                .await;
        }
        let health = HealthServer::new(HealthService::from_health_reporter(reporter.clone()));
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(opentelemetry_proto::DESCRIPTORS)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let reflection_v1 = reflection()
            .build_v1()
            .map_err(|e| ReceiveError::Reflection(e.to_string()))?;
        let reflection_v1alpha = reflection()
            .build_v1alpha()
            .map_err(|e| ReceiveError::Reflection(e.to_string()))?;
        let (listener, local_addr) = serve::bind(addr).await?;
        let router = GrpcRouter {
            inner: self.inner,
            shared: Arc::new(Shared {
                requests: Arc::new(Semaphore::new(self.limits.max_concurrent_requests())),
                limits: self.limits.clone(),
            }),
            health,
            reporter,
            reflection_v1: BoxCloneSyncService::new(reflection_v1),
            reflection_v1alpha: BoxCloneSyncService::new(reflection_v1alpha),
        };
        Ok(BoundReceiver::grpc(
            listener,
            local_addr,
            self.limits,
            router,
        ))
    }
}

// === impl GrpcRouter ===

impl<S> fmt::Debug for GrpcRouter<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcRouter")
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}

impl<S> Handle for GrpcRouter<S>
where
    S: Service<Batch, Response = ExportResponse> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Classify + fmt::Display + Send,
{
    type Body = tonic::body::Body;

    fn handle(
        &self,
        req: Request<Incoming>,
    ) -> impl Future<Output = Response<tonic::body::Body>> + Send + 'static + use<S> {
        let this = self.clone();
        async move { this.route(req).await }
    }

    fn shutting_down(&self) -> impl Future<Output = ()> + Send + 'static + use<S> {
        let reporter = self.reporter.clone();
        async move {
            reporter
                .set_service_status("", ServingStatus::NotServing)
                .await;
            for signal in Signal::ALL {
                reporter
                    .set_service_status(signal.grpc_service(), ServingStatus::NotServing)
                    .await;
            }
        }
    }
}

impl<S> GrpcRouter<S>
where
    S: Service<Batch, Response = ExportResponse> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Classify + fmt::Display + Send,
{
    async fn route(self, req: Request<Incoming>) -> Response<tonic::body::Body> {
        let path = req.uri().path();
        if let Some(signal) = Signal::ALL.into_iter().find(|s| s.grpc_path() == path) {
            return self.export(signal, req).await;
        }
        let svc = if path.starts_with("/grpc.health.v1.Health/") {
            let Ok(resp) = self.health.oneshot(req).await;
            return resp;
        } else if path.starts_with("/grpc.reflection.v1.ServerReflection/") {
            self.reflection_v1
        } else if path.starts_with("/grpc.reflection.v1alpha.ServerReflection/") {
            self.reflection_v1alpha
        } else {
            return Status::unimplemented(format!(
                "unknown gRPC method {path}: this receiver serves the OTLP collector services, grpc.health.v1.Health and server reflection"
            ))
            .into_http();
        };
        let Ok(resp) = svc.oneshot(req).await;
        resp
    }

    async fn export(self, signal: Signal, req: Request<Incoming>) -> Response<tonic::body::Body> {
        let limits = &self.shared.limits;
        let Ok(_permit) = self.shared.requests.clone().try_acquire_owned() else {
            return unavailable(
                limits.retry_after(),
                format!(
                    "receiver busy: {} requests in flight; retry later",
                    limits.max_concurrent_requests()
                ),
            )
            .into_http();
        };
        let mut grpc =
            Grpc::new(RawCodec).max_decoding_message_size(limits.max_decompressed_bytes());
        #[cfg(feature = "gzip")]
        {
            grpc = grpc.accept_compressed(tonic::codec::CompressionEncoding::Gzip);
        }
        let method = ExportMethod {
            inner: Some(self.inner),
            signal,
            shared: self.shared.clone(),
        };
        let mut resp = grpc.unary(method, req).await;
        // tonic refuses a message whose length prefix passes the limit with
        // OUT_OF_RANGE, which the OTLP spec makes retryable; the same bytes
        // would be refused forever, so answer RESOURCE_EXHAUSTED (no RetryInfo,
        // not retryable) as gRPC itself does for oversized messages.
        let status = resp.headers().get(Status::GRPC_STATUS);
        if status.is_some_and(|v| v.as_bytes() == b"11") {
            resp.headers_mut().insert(
                Status::GRPC_STATUS,
                HeaderValue::from(Code::ResourceExhausted as i32),
            );
        }
        resp
    }
}

// === impl ExportMethod ===

impl<S> UnaryService<Bytes> for ExportMethod<S>
where
    S: Service<Batch, Response = ExportResponse> + Send + 'static,
    S::Future: Send,
    S::Error: Classify + fmt::Display + Send,
{
    type Response = Bytes;
    type Future =
        Pin<Box<dyn Future<Output = Result<tonic::Response<Bytes>, Status>> + Send + 'static>>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let signal = self.signal;
        let shared = self.shared.clone();
        // The method is built for one call, so the service is taken, not cloned.
        let inner = self.inner.take();
        Box::pin(async move {
            let Some(inner) = inner else {
                return Err(Status::internal("export method called twice"));
            };
            let batch = Batch::from_encoded(signal, request.into_inner()).map_err(|e| {
                Status::invalid_argument(format!("malformed OTLP {signal} export request: {e}"))
            })?;
            match dispatch::export(inner, batch, &shared.limits).await {
                Ok(resp) => Ok(tonic::Response::new(dispatch::encode_response(
                    signal, &resp,
                ))),
                Err(refusal) => Err(status_for(refusal)),
            }
        })
    }
}

/// The gRPC status for a refused request.
fn status_for(refusal: Refusal) -> Status {
    match refusal {
        Refusal::Unavailable {
            retry_after,
            message,
        } => unavailable(retry_after, message),
        Refusal::TooLarge(msg) => Status::resource_exhausted(msg),
        Refusal::Failed(msg) => Status::internal(msg),
    }
}

/// `UNAVAILABLE` with `RetryInfo` in the status details and in the trailer
/// the Python exporter reads.
fn unavailable(retry_after: Duration, message: String) -> Status {
    let details = rpc::status(rpc::code::UNAVAILABLE, &message, Some(retry_after));
    let mut metadata = MetadataMap::new();
    metadata.insert_bin(
        RETRY_INFO_TRAILER,
        MetadataValue::from_bytes(&rpc::retry_info(retry_after)),
    );
    Status::with_details_and_metadata(Code::Unavailable, message, details.into(), metadata)
}

// === impl RawCodec ===

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        RawEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        let len = src.remaining();
        Ok(Some(src.copy_to_bytes(len)))
    }
}
