//! Wire pieces of the answers: gRPC framing, gzip, OTLP responses, trailers-only errors, span ids, base64 and HTTP-dates.

use super::*;

pub(super) fn signal_of(path: &str) -> Option<Signal> {
    if path.contains("trace") {
        Some(Signal::Traces)
    } else if path.contains("metrics") {
        Some(Signal::Metrics)
    } else if path.contains("logs") {
        Some(Signal::Logs)
    } else {
        None
    }
}

/// The message inside a gRPC frame (5-byte header), uncompressed frames only.
/// The request message of a gRPC body, gunzipped when its flag says it is
/// compressed (the only encoding the agent's exporters use here).
pub(super) fn grpc_message(body: &Bytes) -> Bytes {
    let mut b = body.clone();
    if b.len() < 5 || b[0] > 1 {
        return Bytes::new();
    }
    let compressed = b[0] == 1;
    b.advance(1);
    let len = b.get_u32() as usize;
    let message = b.slice(..len.min(b.len()));
    if compressed {
        gunzip(&message)
    } else {
        message
    }
}

/// `data` gunzipped; empty when it is not gzip (the sink then counts nothing).
pub(super) fn gunzip(data: &[u8]) -> Bytes {
    let mut out = Vec::new();
    match std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(data), &mut out) {
        Ok(_) => Bytes::from(out),
        Err(_) => Bytes::new(),
    }
}

pub(super) fn grpc_frame(message: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(5 + message.len());
    out.push(0);
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    Bytes::from(out)
}

pub(super) fn ok(grpc: bool, rejected: Option<u64>) -> Response<Frames> {
    let msg = ExportResponseProto {
        partial_success: rejected.map(|k| PartialSuccess {
            rejected: i64::try_from(k).unwrap_or(i64::MAX),
            error_message: format!("{k} items rejected by script"),
        }),
    }
    .encode_to_vec();
    if grpc {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        let body = Frames {
            frames: VecDeque::from([Frame::data(grpc_frame(&msg)), Frame::trailers(trailers)]),
            fail_at_end: false,
        };
        let mut r = Response::new(body);
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        r
    } else {
        let mut r = Response::new(Frames::full(Bytes::from(msg)));
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        r
    }
}

pub(super) fn status_only(status: StatusCode) -> Response<Frames> {
    let mut r = Response::new(Frames::full(Bytes::from(format!(
        "{} by fault script",
        status.as_u16()
    ))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain"),
    );
    r
}

pub(super) fn with_header(
    mut r: Response<Frames>,
    name: http::HeaderName,
    value: &str,
) -> Response<Frames> {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
    r
}

/// A trailers-only gRPC error, with `RetryInfo` when `retry` is set.
pub(super) fn grpc_error(code: i32, message: &str, retry: Option<Duration>) -> Response<Frames> {
    let mut r = Response::new(Frames::empty());
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    h.insert("grpc-status", HeaderValue::from(code));
    if let Ok(v) = HeaderValue::from_str(&message.replace('%', "%25")) {
        h.insert("grpc-message", v);
    }
    if let Some(d) = retry {
        let status = google_rpc::encode_status(code, message, Some(d));
        if let Ok(v) = HeaderValue::from_str(&base64(&status)) {
            h.insert("grpc-status-details-bin", v);
        }
    }
    r
}

pub(super) fn span_ids(body: &[u8]) -> Vec<u64> {
    let Ok(req) = TraceRequest::decode(body) else {
        return Vec::new();
    };
    req.resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .filter_map(|s| <[u8; 8]>::try_from(s.span_id.as_slice()).ok())
        .map(u64::from_be_bytes)
        .collect()
}

/// Standard base64 without padding (gRPC binary headers).
pub fn base64(data: &[u8]) -> String {
    pub(super) const T: &[u8; 64] =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(char::from(T[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), rounded up to the next second.
pub fn http_date(t: SystemTime) -> String {
    let rounded = match t.duration_since(UNIX_EPOCH) {
        Ok(d) if d.subsec_nanos() > 0 => {
            t + Duration::from_nanos(u64::from(1_000_000_000 - d.subsec_nanos()))
        }
        _ => t,
    };
    httpdate::fmt_http_date(rounded)
}
