//! The OTLP/HTTP receiver: `POST /v1/{traces,metrics,logs}` with protobuf or
//! JSON bodies, gzip / deflate request encoding, answered in the request's format.

use std::{fmt, net::SocketAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use http_body_util::Full;
use hyper::{Request, Response, body::Incoming};
use otlp_core::{Batch, Classify, ExportResponse, Signal};
use tokio::sync::Semaphore;
use tower::Service;

use crate::{
    google_rpc::{self, code},
    receive::{
        BoundReceiver, IntakeBudget, ReceiveError, ReceiverLimits, ReceiverTls,
        body::{self, BodyError, Encoding},
        budget::{Collect, Reservation},
        dispatch::{self, Refusal},
        serve::{self, Handle},
    },
};

/// The OTLP/HTTP receiver (hyper 1, HTTP/1.1 and cleartext HTTP/2).
///
/// Each `POST /v1/traces`, `/v1/metrics` or `/v1/logs` request is checked
/// against the [`ReceiverLimits`], decoded into a [`Batch`] (protobuf bodies
/// are only walked, never decoded; OTLP/JSON bodies are re-encoded) and handed
/// to the inner service. Answers follow the OTLP/HTTP specification:
///
/// | situation | status |
/// |-----------|--------|
/// | accepted (partial success in the body) | 200 |
/// | malformed body | 400, `google.rpc.Status` with the reason |
/// | unknown path | 404 |
/// | method other than POST | 405 with `Allow: POST` |
/// | body over a size limit | 413 |
/// | content type or encoding not supported | 415 |
/// | inner service busy or retryable failure, too many requests | 503 with `Retry-After` |
/// | inner service failed for good | 500 |
///
/// Responses use the request's content type (`application/x-protobuf` or
/// `application/json`).
///
/// ```
/// use otlp_core::{Batch, ExportResponse};
/// use otlp_transport::HttpReceiver;
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
/// // An agent binds 0.0.0.0:4318; port 0 lets the system pick one.
/// let bound = HttpReceiver::new(sink).bind("127.0.0.1:0".parse()?).await?;
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
pub struct HttpReceiver<S> {
    inner: S,
    limits: ReceiverLimits,
    tls: Option<ReceiverTls>,
    routes: Vec<GetRoute>,
}

/// Builds the JSON body of an extra `GET` route (see [`HttpReceiver::with_get_route`]).
pub type GetHandler = Arc<dyn Fn() -> String + Send + Sync>;

/// An extra `GET` route answered with JSON, such as a sink's `/stats`.
#[derive(Clone)]
struct GetRoute {
    path: String,
    handler: GetHandler,
}

impl fmt::Debug for GetRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GetRoute")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The per-connection request handler.
#[derive(Clone)]
pub(crate) struct HttpHandler<S> {
    inner: S,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    limits: ReceiverLimits,
    requests: Arc<Semaphore>,
    budget: IntakeBudget,
    routes: Vec<GetRoute>,
}

/// The body format of a request, which is also the format of its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Protobuf,
    Json,
}

type HttpResponse = Response<Full<Bytes>>;

// === impl HttpReceiver ===

impl<S> HttpReceiver<S>
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
            routes: Vec::new(),
        }
    }

    /// Also answers `GET path` with the JSON `handler` returns (for example a
    /// sink's `/stats`). OTLP paths cannot be taken over.
    pub fn with_get_route(mut self, path: impl Into<String>, handler: GetHandler) -> Self {
        self.routes.push(GetRoute {
            path: path.into(),
            handler,
        });
        self
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

    /// Validates the limits and binds `addr` (port 0 picks a free port).
    ///
    /// # Errors
    ///
    /// [`ReceiveError::InvalidLimit`] for a limit that would refuse every
    /// request, [`ReceiveError::Tls`] for a TLS file that cannot be used
    /// ([`ReceiveError::TlsFeatureDisabled`] without feature `tls`), [`ReceiveError::Bind`] when the address cannot be bound.
    pub async fn bind(self, addr: SocketAddr) -> Result<BoundReceiver<S>, ReceiveError> {
        self.limits.validate()?;
        let tls = self.tls.as_ref().map(ReceiverTls::acceptor).transpose()?;
        let (listener, local_addr) = serve::bind(addr).await?;
        let handler = HttpHandler {
            inner: self.inner,
            shared: Arc::new(Shared {
                requests: Arc::new(Semaphore::new(self.limits.max_concurrent_requests())),
                budget: self
                    .limits
                    .intake_budget()
                    .cloned()
                    .unwrap_or_else(|| IntakeBudget::new(IntakeBudget::DEFAULT_BYTES)),
                limits: self.limits.clone(),
                routes: self.routes,
            }),
        };
        Ok(BoundReceiver::http(
            listener,
            local_addr,
            self.limits,
            tls,
            handler,
        ))
    }
}

// === impl HttpHandler ===

impl<S> fmt::Debug for HttpHandler<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpHandler")
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}

impl<S> Handle for HttpHandler<S>
where
    S: Service<Batch, Response = ExportResponse> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Classify + fmt::Display + Send,
{
    type Body = Full<Bytes>;

    fn handle(
        &self,
        req: Request<Incoming>,
    ) -> impl Future<Output = HttpResponse> + Send + 'static + use<S> {
        let inner = self.inner.clone();
        let shared = self.shared.clone();
        async move { handle(inner, shared, req).await }
    }
}

async fn handle<S>(inner: S, shared: Arc<Shared>, req: Request<Incoming>) -> HttpResponse
where
    S: Service<Batch, Response = ExportResponse> + Send,
    S::Error: Classify + fmt::Display,
{
    let limits = &shared.limits;
    let format = request_format(&req);
    let answer_format = format.unwrap_or(Format::Protobuf);
    let path = req.uri().path();
    if req.method() == Method::GET
        && let Some(route) = shared.routes.iter().find(|r| r.path == path)
    {
        let mut resp = Response::new(Full::new(Bytes::from((route.handler)())));
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        return resp;
    }
    let Some(signal) = Signal::ALL.into_iter().find(|s| s.http_path() == path) else {
        let msg = format!("no OTLP endpoint at {path}: use /v1/traces, /v1/metrics or /v1/logs");
        return error(
            answer_format,
            StatusCode::NOT_FOUND,
            code::NOT_FOUND,
            &msg,
            None,
        );
    };
    if req.method() != Method::POST {
        let msg = format!(
            "method {} not allowed on {path}: OTLP/HTTP exports use POST",
            req.method()
        );
        let mut resp = error(
            answer_format,
            StatusCode::METHOD_NOT_ALLOWED,
            code::UNIMPLEMENTED,
            &msg,
            None,
        );
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return resp;
    }
    let Some(format) = format else {
        let got = req
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_else(|| "none".to_owned());
        let msg = format!(
            "unsupported content type '{got}': use {}",
            supported_types()
        );
        return error(
            Format::Protobuf,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code::INVALID_ARGUMENT,
            &msg,
            None,
        );
    };
    let encoding_header = req
        .headers()
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("(not ascii)"));
    let Some(encoding) = Encoding::parse(encoding_header) else {
        let msg = format!(
            "unsupported content encoding '{}': use {}",
            encoding_header.unwrap_or_default(),
            Encoding::supported()
        );
        return error(
            format,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code::INVALID_ARGUMENT,
            &msg,
            None,
        );
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_request_bytes() as u64) {
        let msg = format!(
            "request body of {} bytes is larger than the receiver's limit of {} bytes; send smaller batches",
            declared.unwrap_or_default(),
            limits.max_request_bytes()
        );
        return error(
            format,
            StatusCode::PAYLOAD_TOO_LARGE,
            code::RESOURCE_EXHAUSTED,
            &msg,
            None,
        );
    }
    // The body is read under the intake budget and the body read timeout,
    // before a request permit is taken: a stalled or slow body holds only
    // the bytes it sent, never a slot other senders need.
    let collect = Collect::new(
        shared.budget.reservation(),
        declared.and_then(|n| usize::try_from(n).ok()),
    );
    let (body, mut reservation) = match body::read_body(
        req.into_body(),
        limits.max_request_bytes(),
        collect,
        limits.body_read_timeout(),
    )
    .await
    {
        Ok(b) => b,
        Err(e) => return body_error(format, e, limits),
    };
    let Ok(_permit) = shared.requests.clone().try_acquire_owned() else {
        return refused(
            format,
            Refusal::Unavailable {
                retry_after: limits.retry_after(),
                message: format!(
                    "receiver busy: {} requests in flight; retry later",
                    limits.max_concurrent_requests()
                ),
            },
        );
    };
    // A protobuf request compressed the way the exporter compresses is kept
    // as received: forwarded alone, it goes upstream without recompressing.
    let received = match format {
        Format::Protobuf => encoding.wire_form().map(|form| (form, body.clone())),
        Format::Json => None,
    };
    let body = if encoding == Encoding::Identity {
        body
    } else {
        let limit = limits.max_decompressed_bytes();
        // Given back once decompressed, unless the batch keeps it.
        let wire = if received.is_some() { 0 } else { body.len() };
        // Off the async workers: inflating megabytes must not stall other
        // connections or the probes.
        let decoded = tokio::task::spawn_blocking(move || {
            let out = body::decode(encoding, body, limit, &mut reservation);
            (out, reservation)
        })
        .await;
        match decoded {
            Ok((Ok(b), mut r)) => {
                // The compressed body is gone (unless kept); its bytes go back.
                r.shrink(wire);
                reservation = r;
                b
            }
            Ok((Err(e), _)) => return body_error(format, e, limits),
            Err(e) => {
                let msg = format!("decompression task failed: {e}");
                return error(
                    format,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    code::INTERNAL,
                    &msg,
                    None,
                );
            }
        }
    };
    let batch = match format {
        // Validated before it is acknowledged: one bad request must never
        // reach a batch joined with other senders' data.
        Format::Protobuf => dispatch::received(signal, body).await,
        Format::Json => match json_batch(signal, body, reservation, limits).await {
            Ok((batch, r)) => {
                reservation = r;
                batch
            }
            Err(resp) => return resp,
        },
    };
    let batch = match batch {
        Ok(b) => match received {
            Some((form, wire)) => b.with_wire_form(form, wire),
            None => b,
        },
        Err(msg) => {
            return error(
                format,
                StatusCode::BAD_REQUEST,
                code::INVALID_ARGUMENT,
                &msg,
                None,
            );
        }
    };
    let answer = dispatch::export(inner, batch, limits).await;
    // Held until the pipeline took (or refused) the request.
    drop(reservation);
    match answer {
        Ok(resp) => {
            let (body, ct) = match format {
                Format::Protobuf => (dispatch::encode_response(signal, &resp), PROTOBUF),
                Format::Json => (dispatch::encode_response_json(signal, &resp), JSON),
            };
            respond(StatusCode::OK, ct, body)
        }
        Err(refusal) => refused(format, refusal),
    }
}

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

/// Decodes an OTLP/JSON body off the async workers, first taking what the
/// decoding's JSON tree and message may peak at from the intake budget (a
/// hostile JSON body must not push the agent past its memory limit), given
/// back once the batch is built. The outer error is the answer when the
/// budget is spent (503 or 413) or the task failed (500); the inner one the
/// client's 400.
#[cfg(feature = "http-json")]
async fn json_batch(
    signal: Signal,
    body: Bytes,
    mut reservation: Reservation,
    limits: &ReceiverLimits,
) -> Result<(Result<Batch, String>, Reservation), HttpResponse> {
    let scratch = body.len().saturating_mul(crate::json::DECODE_MEMORY_FACTOR);
    if let Err(spent) = reservation.grow(scratch) {
        return Err(body_error(Format::Json, spent.into(), limits));
    }
    let decoded = tokio::task::spawn_blocking(move || {
        let batch = crate::receive::json::to_batch(signal, &body);
        reservation.shrink(scratch);
        (batch, reservation)
    })
    .await;
    decoded.map_err(|e| {
        let msg = format!("OTLP/JSON decoding task failed: {e}");
        error(
            Format::Json,
            StatusCode::INTERNAL_SERVER_ERROR,
            code::INTERNAL,
            &msg,
            None,
        )
    })
}

#[cfg(not(feature = "http-json"))]
async fn json_batch(
    _signal: Signal,
    _body: Bytes,
    reservation: Reservation,
    _limits: &ReceiverLimits,
) -> Result<(Result<Batch, String>, Reservation), HttpResponse> {
    // Unreachable in practice: `request_format` only yields JSON with the feature.
    Ok((
        Err("OTLP/JSON is not supported by this build (feature 'http-json')".to_owned()),
        reservation,
    ))
}

fn supported_types() -> &'static str {
    if cfg!(feature = "http-json") {
        "application/x-protobuf or application/json"
    } else {
        "application/x-protobuf (this build has no 'http-json' feature)"
    }
}

/// The body format named by the `Content-Type` header, ignoring parameters.
fn request_format(req: &Request<Incoming>) -> Option<Format> {
    let ct = req.headers().get(header::CONTENT_TYPE)?.to_str().ok()?;
    let media = ct.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case(PROTOBUF) {
        Some(Format::Protobuf)
    } else if cfg!(feature = "http-json") && media.eq_ignore_ascii_case(JSON) {
        Some(Format::Json)
    } else {
        None
    }
}

fn respond(status: StatusCode, content_type: &'static str, body: Bytes) -> HttpResponse {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// An error answer with a `google.rpc.Status` body in `format`.
fn error(
    format: Format,
    status: StatusCode,
    grpc_code: i32,
    message: &str,
    retry: Option<Duration>,
) -> HttpResponse {
    tracing::debug!(%status, message, "refused OTLP/HTTP request");
    match format {
        Format::Protobuf => respond(
            status,
            PROTOBUF,
            google_rpc::encode_status(grpc_code, message, retry).into(),
        ),
        Format::Json => respond(
            status,
            JSON,
            google_rpc::status_json(grpc_code, message, retry).into(),
        ),
    }
}

fn body_error(format: Format, e: BodyError, limits: &ReceiverLimits) -> HttpResponse {
    match e {
        BodyError::Busy(message) => refused(
            format,
            Refusal::Unavailable {
                retry_after: limits.retry_after(),
                message,
            },
        ),
        BodyError::TimedOut(msg) => {
            let mut resp = error(
                format,
                StatusCode::REQUEST_TIMEOUT,
                code::DEADLINE_EXCEEDED,
                &msg,
                None,
            );
            // The rest of a stalled body may still come: close the connection.
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            resp
        }
        BodyError::TooLarge(msg) => error(
            format,
            StatusCode::PAYLOAD_TOO_LARGE,
            code::RESOURCE_EXHAUSTED,
            &msg,
            None,
        ),
        BodyError::Malformed(msg) => error(
            format,
            StatusCode::BAD_REQUEST,
            code::INVALID_ARGUMENT,
            &msg,
            None,
        ),
    }
}

fn refused(format: Format, refusal: Refusal) -> HttpResponse {
    match refusal {
        Refusal::Unavailable {
            retry_after,
            message,
        } => {
            let mut resp = error(
                format,
                StatusCode::SERVICE_UNAVAILABLE,
                code::UNAVAILABLE,
                &message,
                Some(retry_after),
            );
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs(retry_after)),
            );
            resp
        }
        Refusal::TooLarge(msg) => error(
            format,
            StatusCode::PAYLOAD_TOO_LARGE,
            code::RESOURCE_EXHAUSTED,
            &msg,
            None,
        ),
        Refusal::Failed(msg) => error(
            format,
            StatusCode::INTERNAL_SERVER_ERROR,
            code::INTERNAL,
            &msg,
            None,
        ),
    }
}

/// `Retry-After` carries whole seconds: round up so the client never retries early.
fn retry_after_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::ZERO), 0);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_secs(Duration::from_millis(2001)), 3);
    }
}
