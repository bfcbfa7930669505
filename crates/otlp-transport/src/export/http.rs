//! OTLP/HTTP exporter: hyper 1 client with pooled keep-alive connections,
//! `POST /v1/<signal>`, protobuf (or JSON) bodies compressed once per batch.

use std::{
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{HeaderMap, HeaderValue, Method, Request, Uri, header};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use otlp_core::{Batch, ExportResponse, Signal};

use super::{
    Compression, ExporterConfig, Protocol,
    classify::{
        MAX_RESPONSE_BYTES, decode_partial_success, decode_partial_success_json, parse_retry_after,
        status_message_from_body,
    },
    compress::Compressor,
    connect::{Connector, chain_text, find_transport_error},
    parse_endpoint, port_hint, validate_headers,
};
use crate::{ConnectStep, TransportError};

/// The OTLP/HTTP exporter (protobuf, or JSON with feature `http-json`).
///
/// A `tower::Service<Batch>`; cheap to clone (clones share the connection pool).
#[derive(Clone, Debug)]
pub struct HttpExporter {
    client: Client<Connector, Full<Bytes>>,
    shared: Arc<Shared>,
}

struct Shared {
    endpoint: String,
    hint: &'static str,
    /// One URL per signal, indexed by `Signal::index`.
    urls: [Uri; Signal::COUNT],
    headers: HeaderMap,
    timeout: Duration,
    max_request_bytes: usize,
    compressor: Compressor,
    json: bool,
}

// === impl HttpExporter ===

impl HttpExporter {
    /// Builds the exporter for `config.endpoint`, a base URL to which
    /// `/v1/traces`, `/v1/metrics` and `/v1/logs` are appended.
    ///
    /// Must be called inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// An invalid endpoint, header or TLS file, or a compiled-out feature.
    pub fn new(config: &ExporterConfig) -> Result<Self, TransportError> {
        let uri = parse_endpoint(&config.endpoint, &config.tls)?;
        let compressor = Compressor::new(config.compression, config.compression_level)?;
        let json = match config.protocol {
            Protocol::HttpJson if cfg!(feature = "http-json") => true,
            Protocol::HttpJson => {
                return Err(TransportError::ProtocolDisabled {
                    protocol: "http/json",
                    feature: "http-json",
                });
            }
            Protocol::HttpProtobuf | Protocol::Grpc => false,
        };
        let mut headers = validate_headers(&config.headers)?;
        headers.insert(
            header::USER_AGENT,
            HeaderValue::from_static(super::USER_AGENT),
        );
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(if json {
                "application/json"
            } else {
                "application/x-protobuf"
            }),
        );
        if config.compression != Compression::None {
            headers.insert(
                header::CONTENT_ENCODING,
                HeaderValue::from_static(config.compression.as_str()),
            );
        }
        let base = uri.to_string();
        let base = base.trim_end_matches('/');
        let url = |s: Signal| -> Result<Uri, TransportError> {
            if !config.append_signal_path {
                return Ok(uri.clone());
            }
            format!("{base}{}", s.http_path()).parse().map_err(|e| {
                TransportError::InvalidEndpoint {
                    endpoint: config.endpoint.clone(),
                    reason: format!("cannot append {}: {e}", s.http_path()),
                }
            })
        };
        let mut urls: [Uri; Signal::COUNT] = Default::default();
        for s in Signal::ALL {
            urls[s.index()] = url(s)?;
        }
        let connector = Connector {
            connect_timeout: config.connect_timeout,
            keepalive: config.tcp_keepalive,
            nodelay: config.tcp_nodelay,
            #[cfg(feature = "tls")]
            tls: if uri.scheme_str() == Some("https") {
                Some(super::tls::client_config(&config.tls, &[b"http/1.1"])?)
            } else {
                None
            },
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(config.pool_idle_timeout)
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .build(connector);
        Ok(HttpExporter {
            client,
            shared: Arc::new(Shared {
                endpoint: config.endpoint.clone(),
                hint: port_hint(&uri, config.protocol),
                urls,
                headers,
                timeout: config.timeout,
                max_request_bytes: config.max_request_bytes,
                compressor,
                json,
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
        // Made once (by `prepare` or the first attempt), resent by the retries.
        let body = self.prepare(&batch)?;
        // The cap is on what is sent: OTLP/JSON can be twice the protobuf
        // (too large is split by the recovery layer).
        if shared.json && body.len() > shared.max_request_bytes {
            return Err(TransportError::RequestTooLarge {
                size: body.len(),
                max: shared.max_request_bytes,
            });
        }
        let url = shared.urls.get(signal.index()).cloned().unwrap_or_default();
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = url;
        *request.headers_mut() = shared.headers.clone();
        match tokio::time::timeout(shared.timeout, self.exchange(request)).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::Timeout {
                endpoint: shared.endpoint.clone(),
                after: shared.timeout,
            }),
        }
    }

    /// The body for `batch` as it goes on the wire (JSON and / or
    /// compressed if configured), made once and kept by the batch for its
    /// retries.
    pub(crate) fn prepare(&self, batch: &Batch) -> Result<Bytes, TransportError> {
        let compressor = self.shared.compressor;
        if self.shared.json {
            batch.wire_form(json_form(compressor.compression()), |_| {
                let json = encode_json(batch)?;
                match compressor.compression() {
                    Compression::None => Ok(json),
                    _ => compressor.bytes(&json),
                }
            })
        } else {
            compressor.batch(batch)
        }
    }

    async fn exchange(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<ExportResponse, TransportError> {
        let shared = &self.shared;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| shared.map_client_error(&e))?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    TransportError::ResponseTooLarge {
                        endpoint: shared.endpoint.clone(),
                        limit: MAX_RESPONSE_BYTES,
                    }
                } else {
                    TransportError::Protocol {
                        endpoint: shared.endpoint.clone(),
                        detail: format!(
                            "reading the response body failed: {}",
                            chain_text(e.as_ref())
                        ),
                        connection: true,
                    }
                }
            })?
            .to_bytes();
        let status = parts.status;
        let is_json = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if status.is_success() {
            return Ok(if is_json {
                decode_partial_success_json(&body)
            } else {
                decode_partial_success(&body)
            });
        }
        let retry_after = parts
            .headers
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let message = response_message(&body, is_json, &parts.headers);
        Err(TransportError::HttpStatus {
            endpoint: shared.endpoint.clone(),
            status: status.as_u16(),
            message,
            retry_after,
        })
    }
}

impl tower_service::Service<Batch> for HttpExporter {
    type Response = ExportResponse;
    type Error = TransportError;
    type Future = BoxFuture<'static, Result<ExportResponse, TransportError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The pool makes or reuses a connection per request.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, batch: Batch) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.send(batch).await })
    }
}

/// The human-readable message of an error response: a `google.rpc.Status`
/// (protobuf or JSON) when present, else the start of the body as text.
fn response_message(body: &[u8], is_json: bool, headers: &HeaderMap) -> String {
    if is_json {
        if let Some(m) = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        {
            return m;
        }
    } else if headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("protobuf"))
        && let Some(m) = status_message_from_body(body)
    {
        return m;
    }
    let text = String::from_utf8_lossy(body.get(..body.len().min(256)).unwrap_or_default());
    let text = text.trim();
    if text.is_empty() {
        "(empty body)".into()
    } else {
        text.to_owned()
    }
}

#[cfg(feature = "http-json")]
fn encode_json(batch: &Batch) -> Result<Bytes, TransportError> {
    super::json::to_json(batch.signal(), batch.bytes()).map(Bytes::from)
}

#[cfg(not(feature = "http-json"))]
fn encode_json(batch: &Batch) -> Result<Bytes, TransportError> {
    // Unreachable in practice: `new` refuses HttpJson without the feature.
    let _ = batch;
    Err(TransportError::ProtocolDisabled {
        protocol: "http/json",
        feature: "http-json",
    })
}

/// The name of the JSON wire form with `compression`.
fn json_form(compression: Compression) -> &'static str {
    match compression {
        Compression::None => "json",
        Compression::Gzip => "json+gzip",
        Compression::Zstd => "json+zstd",
    }
}

// === impl Shared ===

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Header values are credentials: only their names are shown.
        let names: Vec<&str> = self.headers.keys().map(|k| k.as_str()).collect();
        f.debug_struct("HttpExporter")
            .field("endpoint", &self.endpoint)
            .field("headers", &names)
            .field("timeout", &self.timeout)
            .field("max_request_bytes", &self.max_request_bytes)
            .field("compressor", &self.compressor)
            .field("json", &self.json)
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn map_client_error(&self, err: &hyper_util::client::legacy::Error) -> TransportError {
        let endpoint = self.endpoint.clone();
        if let Some(own) = find_transport_error(err) {
            return match own {
                TransportError::Connect {
                    endpoint,
                    step,
                    detail,
                } => TransportError::Connect {
                    endpoint: endpoint.clone(),
                    step: *step,
                    detail: detail.clone(),
                },
                other => TransportError::Protocol {
                    endpoint,
                    detail: other.to_string(),
                    connection: true,
                },
            };
        }
        let text = chain_text(err);
        let lower = text.to_ascii_lowercase();
        let mismatch = lower.contains("invalid http version")
            || lower.contains("invalid status")
            || lower.contains("parse")
            // An HTTP/2-only server sends its SETTINGS frame before any request.
            || lower.contains("unexpected message from connection")
            || (lower.contains("connection closed before message completed") && !self.hint.is_empty());
        if mismatch {
            return TransportError::Connect {
                endpoint,
                step: ConnectStep::ProtocolMismatch,
                detail: format!(
                    "the peer did not answer HTTP/1.1 ({text}); it is probably an OTLP/gRPC port: use port 4318 for OTLP/HTTP or protocol grpc{}",
                    self.hint
                ),
            };
        }
        TransportError::Protocol {
            endpoint,
            detail: format!("{text}{}", self.hint),
            connection: true,
        }
    }
}
