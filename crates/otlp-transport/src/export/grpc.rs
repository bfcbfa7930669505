//! OTLP/gRPC exporter: a tonic channel and a pass-through codec that sends the
//! batch's encoded bytes as they are.

use std::{
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::{Buf as _, BufMut as _, Bytes};
use futures_util::future::BoxFuture;
use otlp_core::{Batch, ExportResponse};
use tonic::{
    Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    metadata::MetadataMap,
    transport::{Channel, Endpoint},
};

use super::{
    Compression, ExporterConfig, Protocol,
    classify::{
        MAX_RESPONSE_BYTES, decode_partial_success, retry_info_from_status_details,
        retry_info_from_trailer,
    },
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
    timeout: Duration,
    max_request_bytes: usize,
    compression: Compression,
}

/// Sends `Bytes` unchanged and decodes only the small export response.
#[derive(Clone, Copy, Debug, Default)]
struct PassThroughCodec;

#[derive(Clone, Copy, Debug, Default)]
struct BytesEncoder;

#[derive(Clone, Copy, Debug, Default)]
struct ResponseDecoder;

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
        super::check_compression(config.compression)?;
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
        Ok(GrpcExporter {
            channel,
            shared: Arc::new(Shared {
                endpoint: config.endpoint.clone(),
                hint: port_hint(&uri, Protocol::Grpc),
                metadata: MetadataMap::from_headers(headers),
                timeout: config.timeout,
                max_request_bytes: config.max_request_bytes,
                compression: config.compression,
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
        let mut grpc = tonic::client::Grpc::new(self.channel.clone())
            .max_decoding_message_size(MAX_RESPONSE_BYTES)
            .max_encoding_message_size(usize::MAX);
        match shared.compression {
            #[cfg(feature = "gzip")]
            Compression::Gzip => {
                grpc = grpc.send_compressed(tonic::codec::CompressionEncoding::Gzip)
            }
            #[cfg(feature = "zstd")]
            Compression::Zstd => {
                grpc = grpc.send_compressed(tonic::codec::CompressionEncoding::Zstd)
            }
            _ => {}
        }
        let mut request = tonic::Request::new(batch.into_bytes());
        *request.metadata_mut() = shared.metadata.clone();
        request.set_timeout(shared.timeout);
        let path = http::uri::PathAndQuery::from_static(signal.grpc_path());
        let call = async {
            grpc.ready()
                .await
                .map_err(|e| Status::unavailable(chain_text(&e)))?;
            grpc.unary(request, path, PassThroughCodec).await
        };
        match tokio::time::timeout(shared.timeout, call).await {
            Err(_) => Err(TransportError::Timeout {
                endpoint: shared.endpoint.clone(),
                after: shared.timeout,
            }),
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(shared.map_status(&status)),
        }
    }
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
            .field("compression", &self.compression)
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

// === impl PassThroughCodec ===

impl Codec for PassThroughCodec {
    type Encode = Bytes;
    type Decode = ExportResponse;
    type Encoder = BytesEncoder;
    type Decoder = ResponseDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        BytesEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        ResponseDecoder
    }
}

impl Encoder for BytesEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for ResponseDecoder {
    type Item = ExportResponse;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<ExportResponse>, Status> {
        let body = src.copy_to_bytes(src.remaining());
        Ok(Some(decode_partial_success(&body)))
    }
}
