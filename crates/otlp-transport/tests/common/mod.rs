//! A tiny in-test OTLP peer on 127.0.0.1: records each request and answers
//! what the test tells it to, over HTTP/1.1 or HTTP/2 (gRPC framing).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use bytes::{BufMut as _, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use otlp_core::{Batch, Signal};
use prost::Message as _;
use tokio::{net::TcpListener, sync::mpsc};

#[cfg(feature = "tls")]
pub mod tls;

/// One request as the peer saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// What the peer answers.
#[derive(Debug, Clone)]
pub enum Reply {
    /// gRPC OK with this encoded response message.
    GrpcOk(Bytes),
    /// gRPC error status, optionally with status details and a retryinfo trailer.
    GrpcStatus {
        code: i32,
        message: &'static str,
        details: Option<Bytes>,
        retryinfo_trailer: Option<Bytes>,
    },
    /// A plain HTTP response.
    Http {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Bytes,
    },
}

pub type Responder = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

/// Serves on 127.0.0.1:0; `h2` = HTTP/2 only (gRPC), otherwise HTTP/1.1 only.
pub async fn serve(h2: bool, responder: Responder) -> (SocketAddr, mpsc::Receiver<Recorded>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            let responder = responder.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let tx = tx.clone();
                    let responder = responder.clone();
                    async move { Ok::<_, Infallible>(handle(req, tx, responder).await) }
                });
                let mut builder = auto::Builder::new(TokioExecutor::new());
                builder = if h2 {
                    builder.http2_only()
                } else {
                    builder.http1_only()
                };
                let _ = builder.serve_connection(TokioIo::new(tcp), svc).await;
            });
        }
    });
    (addr, rx)
}

async fn handle(
    req: Request<Incoming>,
    tx: mpsc::Sender<Recorded>,
    responder: Responder,
) -> Response<BoxBody<Bytes, Infallible>> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let rec = Recorded {
        path: parts.uri.path().to_owned(),
        headers: parts.headers,
        body,
    };
    let reply = responder(&rec);
    let _ = tx.send(rec).await;
    match reply {
        Reply::GrpcOk(msg) => grpc_response(Some(msg), 0, "", None, None),
        Reply::GrpcStatus {
            code,
            message,
            details,
            retryinfo_trailer,
        } => grpc_response(None, code, message, details, retryinfo_trailer),
        Reply::Http {
            status,
            headers,
            body,
        } => {
            let mut resp = Response::new(full(body));
            *resp.status_mut() = StatusCode::from_u16(status).unwrap();
            for (k, v) in headers {
                resp.headers_mut()
                    .insert(k, HeaderValue::from_str(&v).unwrap());
            }
            resp
        }
    }
}

fn full(body: Bytes) -> BoxBody<Bytes, Infallible> {
    http_body_util::Full::new(body).boxed()
}

fn b64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn grpc_response(
    msg: Option<Bytes>,
    code: i32,
    message: &str,
    details: Option<Bytes>,
    retryinfo_trailer: Option<Bytes>,
) -> Response<BoxBody<Bytes, Infallible>> {
    let mut trailers = HeaderMap::new();
    trailers.insert(
        "grpc-status",
        HeaderValue::from_str(&code.to_string()).unwrap(),
    );
    if !message.is_empty() {
        trailers.insert("grpc-message", HeaderValue::from_str(message).unwrap());
    }
    if let Some(d) = details {
        trailers.insert(
            "grpc-status-details-bin",
            HeaderValue::from_str(&b64(&d)).unwrap(),
        );
    }
    if let Some(t) = retryinfo_trailer {
        trailers.insert(
            "google.rpc.retryinfo-bin",
            HeaderValue::from_str(&b64(&t)).unwrap(),
        );
    }
    let mut frames: Vec<Result<Frame<Bytes>, Infallible>> = Vec::new();
    if let Some(msg) = msg {
        let mut buf = BytesMut::with_capacity(5 + msg.len());
        buf.put_u8(0);
        buf.put_u32(msg.len() as u32);
        buf.put(msg);
        frames.push(Ok(Frame::data(buf.freeze())));
    }
    frames.push(Ok(Frame::trailers(trailers)));
    let body = StreamBody::new(futures_util::stream::iter(frames)).boxed();
    let mut resp = Response::new(body);
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/grpc"));
    resp
}

/// Strips the 5-byte gRPC frame header; returns (compressed flag, message).
pub fn grpc_unframe(body: &Bytes) -> (u8, Bytes) {
    assert!(body.len() >= 5, "grpc body too short: {}", body.len());
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    assert_eq!(body.len(), 5 + len, "one grpc frame");
    (body[0], body.slice(5..))
}

/// A trace batch with `n` spans.
pub fn trace_batch(n: usize) -> Batch {
    use opentelemetry_proto::tonic::{
        collector::trace::v1::ExportTraceServiceRequest,
        common::v1::{AnyValue, KeyValue, any_value},
        trace::v1::{ResourceSpans, ScopeSpans, Span},
    };
    let spans = (0..n)
        .map(|i| Span {
            trace_id: vec![7; 16],
            span_id: (i as u64 + 1).to_be_bytes().to_vec(),
            name: format!("span-{i}"),
            kind: 2,
            start_time_unix_nano: 1_700_000_000_000_000_000 + i as u64,
            end_time_unix_nano: 1_700_000_000_000_100_000 + i as u64,
            attributes: vec![KeyValue {
                key: "i".into(),
                key_strindex: 0,
                value: Some(AnyValue {
                    value: Some(any_value::Value::IntValue(i as i64)),
                }),
            }],
            ..Default::default()
        })
        .collect();
    let req = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    Batch::from_encoded(Signal::Traces, Bytes::from(req.encode_to_vec())).unwrap()
}

/// An encoded export response with partial success.
pub fn partial_response(rejected: i64, message: &str) -> Bytes {
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTracePartialSuccess, ExportTraceServiceResponse,
    };
    Bytes::from(
        ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: rejected,
                error_message: message.into(),
            }),
        }
        .encode_to_vec(),
    )
}

/// Encoded `google.rpc.RetryInfo` with the given delay.
pub fn retry_info(secs: i64) -> Bytes {
    // RetryInfo { retry_delay (1): Duration { seconds (1) } }
    let mut d = Vec::new();
    d.push(0x08);
    prost::encoding::encode_varint(secs as u64, &mut d);
    let mut out = vec![0x0a];
    prost::encoding::encode_varint(d.len() as u64, &mut out);
    out.extend(d);
    Bytes::from(out)
}

/// Encoded `google.rpc.Status` carrying a RetryInfo detail.
pub fn status_with_retry_info(code: i32, secs: i64) -> Bytes {
    let info = retry_info(secs);
    let mut any = Vec::new();
    let url = b"type.googleapis.com/google.rpc.RetryInfo";
    any.push(0x0a);
    prost::encoding::encode_varint(url.len() as u64, &mut any);
    any.extend_from_slice(url);
    any.push(0x12);
    prost::encoding::encode_varint(info.len() as u64, &mut any);
    any.extend_from_slice(&info);
    let mut out = vec![0x08];
    prost::encoding::encode_varint(code as u64, &mut out);
    out.push(0x1a);
    prost::encoding::encode_varint(any.len() as u64, &mut out);
    out.extend(any);
    Bytes::from(out)
}

/// Receives the next recorded request within 5 s.
pub async fn next(rx: &mut mpsc::Receiver<Recorded>) -> Recorded {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap()
}

/// A port with nothing listening on it.
pub async fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    addr
}
