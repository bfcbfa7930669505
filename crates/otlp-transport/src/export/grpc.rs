//! OTLP/gRPC exporter: a tonic channel that sends the batch's encoded bytes
//! as they are, uncopied, or compressed once per batch by us (not by tonic's
//! codec, which would compress again on every attempt).

use std::{
    convert::Infallible,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::{Buf as _, BufMut as _, Bytes};
use futures_util::future::BoxFuture;
use http::{HeaderMap, HeaderValue, header};
use http_body::Frame;
use otlp_core::{Batch, ExportResponse, Signal};
use tonic::{
    Code, Status,
    codec::{DecodeBuf, Decoder, Streaming},
    metadata::MetadataMap,
    transport::{Channel, Endpoint},
};
use tower::{Service as _, ServiceExt as _};

use super::{
    Compression, ExporterConfig, Protocol,
    classify::{
        MAX_RESPONSE_BYTES, decode_partial_success, retry_info_from_status_details,
        retry_info_from_trailer,
    },
    compress::Compressor,
    connect::{Connector, chain_text, find_transport_error},
    parse_endpoint, port_hint, validate_headers,
};
use crate::{ConnectStep, TransportError};

/// The OTLP/gRPC exporter.
///
/// A `tower::Service<Batch>`; cheap to clone (clones share the HTTP/2 connection).
#[derive(Clone, Debug)]
pub struct GrpcExporter {
    channel: Channel,
    shared: Arc<Shared>,
}

struct Shared {
    endpoint: String,
    hint: &'static str,
    metadata: MetadataMap,
    /// The request headers of every call, made once: the configured
    /// metadata without gRPC's reserved names, `te`, `content-type`,
    /// `grpc-timeout` and, when compressing, `grpc-encoding` (the channel
    /// adds `user-agent`).
    headers: HeaderMap,
    timeout: Duration,
    max_request_bytes: usize,
    compressor: Compressor,
}

/// Decodes only the small export response.
#[derive(Clone, Copy, Debug, Default)]
struct ResponseDecoder;

/// The body of a unary call: the 5-byte gRPC message prefix, then the
/// message's own `Bytes` (the batch's, or its compressed form), which h2
/// writes to the socket from where they are (tonic's encoder would first
/// copy them into its buffer).
#[derive(Debug)]
struct UnaryBody {
    prefix: Option<Bytes>,
    message: Option<Bytes>,
}

// === impl GrpcExporter ===

impl GrpcExporter {
    /// Builds the exporter for `config.endpoint` (additional endpoints are
    /// ignored here; [`Exporter`](crate::Exporter) balances over them).
    /// The connection is made on first use.
    ///
    /// # Errors
    ///
    /// An invalid endpoint, header or TLS file, or a compiled-out feature.
    pub fn new(config: &ExporterConfig) -> Result<Self, TransportError> {
        let uri = parse_endpoint(&config.endpoint, &config.tls)?;
        let compressor = Compressor::new(config.compression, config.compression_level)?;
        let headers = validate_headers(&config.headers)?;
        let connector = Connector {
            connect_timeout: config.connect_timeout,
            keepalive: config.tcp_keepalive,
            nodelay: config.tcp_nodelay,
            #[cfg(feature = "tls")]
            tls: if uri.scheme_str() == Some("https") {
                Some(super::tls::client_config(&config.tls, &[b"h2"])?)
            } else {
                None
            },
        };
        let invalid = |e: tonic::transport::Error| TransportError::InvalidEndpoint {
            endpoint: config.endpoint.clone(),
            reason: format!("{e}"),
        };
        let endpoint = Endpoint::from_shared(uri.to_string())
            .map_err(invalid)?
            .user_agent(super::USER_AGENT)
            .map_err(invalid)?
            .tcp_nodelay(config.tcp_nodelay)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(false);
        let channel = endpoint.connect_with_connector_lazy(connector);
        let metadata = MetadataMap::from_headers(headers);
        Ok(GrpcExporter {
            channel,
            shared: Arc::new(Shared {
                endpoint: config.endpoint.clone(),
                hint: port_hint(&uri, Protocol::Grpc),
                headers: unary_headers(&metadata, config.timeout, config.compression),
                metadata,
                timeout: config.timeout,
                max_request_bytes: config.max_request_bytes,
                compressor,
            }),
        })
    }

    /// Sends one batch.
    ///
    /// # Errors
    ///
    /// A [`TransportError`] naming the failed step or the server's status.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future abandons the request.
    pub async fn send(&self, batch: Batch) -> Result<ExportResponse, TransportError> {
        let shared = &self.shared;
        if batch.byte_size() > shared.max_request_bytes {
            return Err(TransportError::RequestTooLarge {
                size: batch.byte_size(),
                max: shared.max_request_bytes,
            });
        }
        let signal = batch.signal();
        // Compressed once (by `prepare` or the first attempt), resent as
        // they are by the retries.
        let message = self.prepare(&batch)?;
        drop(batch);
        // The gRPC length prefix is 32 bits.
        let Ok(len) = u32::try_from(message.len()) else {
            return Err(TransportError::RequestTooLarge {
                size: message.len(),
                max: u32::MAX as usize,
            });
        };
        let compressed = shared.compressor.compression() != Compression::None;
        let call = self.unary(signal, message, len, compressed);
        match tokio::time::timeout(shared.timeout, call).await {
            Err(_) => Err(TransportError::Timeout {
                endpoint: shared.endpoint.clone(),
                after: shared.timeout,
            }),
            Ok(Ok(response)) => Ok(response),
            Ok(Err(status)) => Err(shared.map_status(&status)),
        }
    }

    /// The message for `batch` as it goes on the wire (compressed if
    /// configured), made once and kept by the batch for its retries.
    pub(crate) fn prepare(&self, batch: &Batch) -> Result<Bytes, TransportError> {
        self.shared.compressor.batch(batch)
    }

    /// One call: the request body hands `message` (`len` bytes) to h2 as
    /// it is, and the answer is read by tonic's decoder.
    async fn unary(
        &self,
        signal: Signal,
        message: Bytes,
        len: u32,
        compressed: bool,
    ) -> Result<ExportResponse, Status> {
        let body = UnaryBody::new(message, len, compressed);
        let mut request = http::Request::new(tonic::body::Body::new(body));
        *request.method_mut() = http::Method::POST;
        *request.version_mut() = http::Version::HTTP_2;
        *request.uri_mut() = http::Uri::from_static(signal.grpc_path());
        *request.headers_mut() = self.shared.headers.clone();
        let mut channel = self.channel.clone();
        channel
            .ready()
            .await
            .map_err(|e| Status::unavailable(chain_text(&e)))?;
        let response = channel
            .call(request)
            .await
            .map_err(|e| Status::from_error(e.into()))?;
        read_response(response).await
    }
}

/// The headers of every call, as tonic's client would write them:
/// `metadata` without the names gRPC reserves, `te: trailers`,
/// `content-type: application/grpc`, `grpc-timeout` and, when compressing,
/// `grpc-encoding`.
fn unary_headers(metadata: &MetadataMap, timeout: Duration, compression: Compression) -> HeaderMap {
    // tonic formats `grpc-timeout` (at most 8 digits, finest unit) here.
    let mut probe = tonic::Request::new(());
    *probe.metadata_mut() = metadata.clone();
    probe.set_timeout(timeout);
    let mut headers = probe.into_parts().0.into_headers();
    for reserved in [
        "te",
        "content-type",
        "grpc-message",
        "grpc-message-type",
        "grpc-status",
        "grpc-encoding",
        "grpc-accept-encoding",
    ] {
        headers.remove(reserved);
    }
    if compression != Compression::None {
        headers.insert(
            "grpc-encoding",
            HeaderValue::from_static(compression.as_str()),
        );
    }
    headers.insert(header::TE, HeaderValue::from_static("trailers"));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers
}

/// The answer had status OK but no message: not an OTLP collector's behaviour.
const NO_RESPONSE_MESSAGE: &str = "the server answered OK without an export response message; check that the endpoint is an OTLP/gRPC collector and not a proxy or another gRPC service";

/// Reads a unary answer as tonic's client does: a `grpc-status` in the
/// headers is a trailers-only answer; otherwise one message (at most
/// [`MAX_RESPONSE_BYTES`]) and the status from the trailers (or, without
/// one, from the HTTP status).
async fn read_response(
    response: http::Response<tonic::body::Body>,
) -> Result<ExportResponse, Status> {
    let (parts, body) = response.into_parts();
    if let Some(status) = Status::from_header_map(&parts.headers) {
        return Err(if status.code() == Code::Ok {
            Status::internal(NO_RESPONSE_MESSAGE)
        } else {
            status
        });
    }
    // Not advertising `grpc-accept-encoding`, we accept no compressed answer.
    let mut stream = Streaming::new_response(
        ResponseDecoder,
        body,
        parts.status,
        None,
        Some(MAX_RESPONSE_BYTES),
    );
    let message = stream
        .message()
        .await?
        .ok_or_else(|| Status::internal(NO_RESPONSE_MESSAGE))?;
    // Drains the body: a non-OK `grpc-status` in the trailers is the answer.
    stream.trailers().await?;
    Ok(message)
}

impl tower_service::Service<Batch> for GrpcExporter {
    type Response = ExportResponse;
    type Error = TransportError;
    type Future = BoxFuture<'static, Result<ExportResponse, TransportError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The channel's readiness is awaited inside the call, under the timeout.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, batch: Batch) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.send(batch).await })
    }
}

// === impl Shared ===

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Header values are credentials: only their names are shown.
        let names: Vec<String> = self.metadata.keys().map(|k| format!("{k:?}")).collect();
        f.debug_struct("GrpcExporter")
            .field("endpoint", &self.endpoint)
            .field("headers", &names)
            .field("timeout", &self.timeout)
            .field("max_request_bytes", &self.max_request_bytes)
            .field("compressor", &self.compressor)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Maps a tonic status (from the server, or made by tonic for a transport
    /// failure) to our error.
    fn map_status(&self, status: &Status) -> TransportError {
        let endpoint = self.endpoint.clone();
        if let Some(source) = std::error::Error::source(status) {
            if let Some(own) = find_transport_error(source) {
                return clone_connect_error(own, &endpoint);
            }
            let text = chain_text(source);
            let lower = text.to_ascii_lowercase();
            // An HTTP/1-only peer either answers the HTTP/2 preface with an
            // HTTP/1 response (a frame error for us) or closes the connection
            // while we still write the preface (a broken pipe).
            let h2_rejected = lower.contains("frame")
                || lower.contains("http2")
                || lower.contains("h2 protocol")
                || lower.contains("preface")
                || (lower.contains("connection error") && lower.contains("broken pipe"));
            if h2_rejected {
                return TransportError::Connect {
                    endpoint,
                    step: ConnectStep::ProtocolMismatch,
                    detail: format!(
                        "the peer does not speak HTTP/2 gRPC ({text}); it may be an OTLP/HTTP port, use port 4317 or protocol http/protobuf{}",
                        self.hint
                    ),
                };
            }
            return TransportError::Protocol {
                endpoint,
                detail: format!("{text}{}", self.hint),
                connection: true,
            };
        }
        let message = status.message();
        if message.contains("decoded message length too large") {
            return TransportError::ResponseTooLarge {
                endpoint,
                limit: MAX_RESPONSE_BYTES,
            };
        }
        if message.contains("grpc-status header missing")
            || message.contains("invalid content-type")
        {
            return TransportError::Connect {
                endpoint,
                step: ConnectStep::ProtocolMismatch,
                detail: format!(
                    "the peer answered plain HTTP, not gRPC ({message}); it is probably an OTLP/HTTP endpoint: use protocol http/protobuf or the gRPC port 4317{}",
                    self.hint
                ),
            };
        }
        let retry_after = retry_info_from_status_details(status.details()).or_else(|| {
            status
                .metadata()
                .get_bin("google.rpc.retryinfo-bin")
                .and_then(|v| v.to_bytes().ok())
                .and_then(|b| retry_info_from_trailer(&b))
        });
        TransportError::GrpcStatus {
            endpoint,
            code: status.code() as i32,
            message: message.to_owned(),
            retry_after,
        }
    }
}

/// Rebuilds a connector error found by reference in a source chain.
fn clone_connect_error(err: &TransportError, endpoint: &str) -> TransportError {
    match err {
        TransportError::Connect {
            endpoint,
            step,
            detail,
        } => TransportError::Connect {
            endpoint: endpoint.clone(),
            step: *step,
            detail: detail.clone(),
        },
        TransportError::TlsFeatureDisabled { endpoint } => TransportError::TlsFeatureDisabled {
            endpoint: endpoint.clone(),
        },
        other => TransportError::Protocol {
            endpoint: endpoint.to_owned(),
            detail: other.to_string(),
            connection: true,
        },
    }
}

// === impl UnaryBody ===

impl UnaryBody {
    /// `len` is `message.len()`, which the caller checked to fit 32 bits.
    fn new(message: Bytes, len: u32, compressed: bool) -> Self {
        let mut prefix = Vec::with_capacity(5);
        // The compressed flag, then the length.
        prefix.put_u8(u8::from(compressed));
        prefix.put_u32(len);
        Self {
            prefix: Some(Bytes::from(prefix)),
            message: Some(message),
        }
    }
}

impl http_body::Body for UnaryBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let next = self.prefix.take().or_else(|| self.message.take());
        Poll::Ready(next.map(|data| Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_none() && self.message.is_none()
    }
}

// === impl ResponseDecoder ===

impl Decoder for ResponseDecoder {
    type Item = ExportResponse;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<ExportResponse>, Status> {
        let body = src.copy_to_bytes(src.remaining());
        Ok(Some(decode_partial_success(&body)))
    }
}
