//! The OTLP/gRPC receiver: the three collector services, their request
//! message read straight from the HTTP/2 frames (uncopied when it arrives in
//! one), plus `grpc.health.v1.Health` and server reflection.

use std::{
    convert::Infallible,
    fmt,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, header};
use http_body::Frame;
use hyper::{Request, Response, body::Incoming};
use otlp_core::{Batch, Classify, ExportResponse, Signal};
use tokio::sync::Semaphore;
use tonic::{
    Code, Status,
    metadata::{MetadataMap, MetadataValue},
};
use tonic_health::{
    ServingStatus,
    pb::health_server::HealthServer,
    server::{HealthReporter, HealthService},
};
use tower::{Service, ServiceExt, util::BoxCloneSyncService};

use crate::{
    google_rpc,
    receive::{
        BoundReceiver, IntakeBudget, ReceiveError, ReceiverLimits, ReceiverTls,
        dispatch::{self, Refusal},
        serve::{self, Handle},
    },
};

mod message;

use self::message::{Encoding, MessageReader};

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
    tls: Option<ReceiverTls>,
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
    budget: IntakeBudget,
}

/// The body of a successful unary answer: one message, then the trailers
/// with `grpc-status: 0`.
#[derive(Debug)]
struct UnaryReply {
    message: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

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
            tls: None,
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

    /// Serves TLS with `tls` (feature `tls`); see [`ReceiverTls`].
    pub fn with_tls(mut self, tls: ReceiverTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Validates the limits, prepares health and reflection, and binds `addr`
    /// (port 0 picks a free port).
    ///
    /// # Errors
    ///
    /// [`ReceiveError::InvalidLimit`] for a limit that would refuse every
    /// request, [`ReceiveError::Tls`] for a TLS file that cannot be used
    /// ([`ReceiveError::TlsFeatureDisabled`] without feature `tls`), [`ReceiveError::Reflection`] if the descriptors cannot be
    /// loaded, [`ReceiveError::Bind`] when the address cannot be bound.
    pub async fn bind(self, addr: SocketAddr) -> Result<BoundReceiver<S>, ReceiveError> {
        self.limits.validate()?;
        let tls = self.tls.as_ref().map(ReceiverTls::acceptor).transpose()?;
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
                budget: self
                    .limits
                    .intake_budget()
                    .cloned()
                    .unwrap_or_else(|| IntakeBudget::new(IntakeBudget::DEFAULT_BYTES)),
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
            tls,
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
        let answer = async {
            let encoding = Encoding::from_headers(req.headers())?;
            // The message is read here rather than by tonic's decoder, which
            // would copy it (see `message`), under the intake budget and the
            // body read timeout, before a request permit is taken: a stalled
            // stream holds only the bytes it sent, never a slot.
            let reader = MessageReader::new(
                limits.max_decompressed_bytes(),
                self.shared.budget.reservation(),
                limits.retry_after(),
            );
            let (flag, message, mut reservation) = reader
                .read(req.into_body(), limits.body_read_timeout())
                .await?;
            let Ok(_permit) = self.shared.requests.clone().try_acquire_owned() else {
                return Err(unavailable(
                    limits.retry_after(),
                    format!(
                        "receiver busy: {} requests in flight; retry later",
                        limits.max_concurrent_requests()
                    ),
                ));
            };
            // A compressed message is kept as received: forwarded alone, it
            // goes upstream without recompressing (its bytes stay reserved
            // until the request is answered, as the decompressed ones do).
            let received = match (flag, encoding) {
                (1, Some(e)) => Some((e.wire_form(), message.clone())),
                _ => None,
            };
            let bytes = if flag == 0 {
                message
            } else {
                // Off the async workers: inflating must not stall the others.
                let (limit, retry) = (limits.max_decompressed_bytes(), limits.retry_after());
                let (out, r) = tokio::task::spawn_blocking(move || {
                    let out = message::decompress(
                        flag,
                        message,
                        encoding,
                        limit,
                        &mut reservation,
                        retry,
                    );
                    (out, reservation)
                })
                .await
                .map_err(|e| Status::internal(format!("decompression task failed: {e}")))?;
                reservation = r;
                out?
            };
            // Validated before it is acknowledged: one bad request must never
            // reach a batch joined with other senders' data.
            let batch = dispatch::received(signal, bytes)
                .await
                .map_err(Status::invalid_argument)?;
            let batch = match received {
                Some((form, wire)) => batch.with_wire_form(form, wire),
                None => batch,
            };
            let answer = dispatch::export(self.inner, batch, limits)
                .await
                .map_err(status_for);
            // Held until the pipeline took (or refused) the request.
            drop(reservation);
            answer
        };
        match answer.await {
            Ok(resp) => UnaryReply::response(dispatch::encode_response(signal, &resp)),
            Err(status) => status.into_http(),
        }
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
    let details =
        google_rpc::encode_status(google_rpc::code::UNAVAILABLE, &message, Some(retry_after));
    let mut metadata = MetadataMap::new();
    metadata.insert_bin(
        RETRY_INFO_TRAILER,
        MetadataValue::from_bytes(&google_rpc::encode_retry_info(retry_after)),
    );
    Status::with_details_and_metadata(Code::Unavailable, message, details.into(), metadata)
}

// === impl UnaryReply ===

impl UnaryReply {
    /// A `200` answer carrying `message`, framed with the 5-byte gRPC
    /// prefix, and `grpc-status: 0` in the trailers.
    fn response(message: Bytes) -> Response<tonic::body::Body> {
        let Ok(len) = u32::try_from(message.len()) else {
            return Status::internal("export response over the 4 GiB gRPC message limit")
                .into_http();
        };
        // An export response is a few bytes: one small copy frames it.
        let mut framed = BytesMut::with_capacity(5 + message.len());
        framed.put_u8(0);
        framed.put_u32(len);
        framed.extend_from_slice(&message);
        let mut trailers = HeaderMap::with_capacity(1);
        trailers.insert(Status::GRPC_STATUS, HeaderValue::from(Code::Ok as i32));
        let body = UnaryReply {
            message: Some(framed.freeze()),
            trailers: Some(trailers),
        };
        let mut resp = Response::new(tonic::body::Body::new(body));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        resp
    }
}

impl http_body::Body for UnaryReply {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(message) = self.message.take() {
            return Poll::Ready(Some(Ok(Frame::data(message))));
        }
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.message.is_none() && self.trailers.is_none()
    }
}
