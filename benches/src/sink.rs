//! The counting OTLP receiver behind the `count-sink` binary.
//!
//! It accepts OTLP over gRPC and HTTP/protobuf on one hyper server per
//! address and counts requests, items and bytes per signal. The request bytes
//! are never decoded into structs: gRPC goes through a pass-through codec and
//! items are counted by walking the wire format with
//! [`otlp_core::count_items`], so the receiver costs a fraction of what the
//! producers it measures cost and is never the bottleneck.

use std::{
    convert::Infallible,
    future::{Ready, ready},
    net::{Ipv4Addr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use bytes::{Buf, Bytes};
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::{body::Incoming, service::service_fn};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use otlp_core::{Signal, count_items};
use tokio::{net::TcpListener, sync::Notify, task::JoinHandle};
use tonic::{
    Status,
    body::Body,
    codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder},
    codegen::Service,
};

use crate::{BenchesError, args};

/// The largest request body accepted (64 MiB), far above what any producer sends.
pub const DEFAULT_MAX_BODY: usize = 64 << 20;

/// How count-sink is started: where to listen, and when to stop.
#[derive(Clone, Debug, PartialEq)]
pub struct SinkConfig {
    /// The gRPC listen address (port 0 picks a free port).
    pub grpc: SocketAddr,
    /// The HTTP listen address (port 0 picks a free port); also serves `GET /stats`.
    pub http: SocketAddr,
    /// Stop once this many items (all signals together) have arrived.
    pub expect: Option<u64>,
    /// Stop after this long whatever happens, so a stuck run never hangs.
    pub max_time: Duration,
    /// How long to keep serving after `expect` is reached, so the last
    /// responses reach the producer before the process exits.
    pub linger: Duration,
    /// The largest request body accepted, in bytes.
    pub max_body: usize,
}

/// The counts of one signal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SignalStats {
    /// Export requests accepted.
    pub requests: u64,
    /// Items (spans, log records, data points) in them.
    pub items: u64,
    /// Encoded request bytes (uncompressed protobuf).
    pub bytes: u64,
    /// Requests refused as malformed.
    pub errors: u64,
}

/// What the sink has received so far.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// Per signal, indexed by [`Signal::index`].
    pub signals: [SignalStats; Signal::COUNT],
    /// Seconds since start when the first item arrived.
    pub first_item_s: Option<f64>,
    /// Seconds since start when the last item arrived.
    pub last_item_s: Option<f64>,
    /// Seconds since start.
    pub uptime_s: f64,
}

/// A running count-sink: its listeners are bound and served by spawned tasks,
/// which stop when the `Sink` is dropped.
#[derive(Debug)]
pub struct Sink {
    state: Arc<State>,
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    items: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
}

#[derive(Debug)]
struct State {
    signals: [Counters; Signal::COUNT],
    total: AtomicU64,
    started: Instant,
    /// Nanoseconds since `started`, plus one (zero means "no item yet").
    first_item: AtomicU64,
    last_item: AtomicU64,
    expect: Option<u64>,
    reached: Notify,
    max_body: usize,
}

/// A gRPC codec that hands the request message over as raw bytes and sends
/// an empty response message (a valid empty `Export*ServiceResponse`).
#[derive(Clone, Copy, Debug, Default)]
struct RawCodec;

/// The gRPC export method of one signal.
#[derive(Clone, Debug)]
struct Export {
    signal: Signal,
    state: Arc<State>,
}

/// The CPU time (user + sys, seconds) this process has used so far, read from
/// `/proc/self/stat`; `None` where that file does not exist (not Linux).
///
/// count-sink reports it in its final line so the harness can show that the
/// receiver is not the bottleneck.
pub fn process_cpu_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces; the fields after its ')' are fixed:
    // utime and stime are the 12th and 13th, in clock ticks (USER_HZ, 100 on Linux).
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_whitespace().skip(11);
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

// === impl SinkConfig ===

impl Default for SinkConfig {
    fn default() -> Self {
        let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        Self {
            grpc: any,
            http: any,
            expect: None,
            max_time: Duration::from_secs(600),
            linger: Duration::from_millis(50),
            max_body: DEFAULT_MAX_BODY,
        }
    }
}

impl SinkConfig {
    /// The flags `count-sink` accepts, for `--help`.
    pub const USAGE: &'static str = "usage: count-sink [--grpc ADDR] [--http ADDR] [--expect ITEMS] [--max-secs S] [--max-body BYTES]

Counts OTLP requests, items and bytes per signal without decoding them.
Prints its bound addresses as one JSON line at start, and the final counts as
one JSON line on SIGTERM/SIGINT, after --expect items, or after --max-secs
(default 600). Addresses default to 127.0.0.1:0 (a free port).
GET /stats on the HTTP address returns the counts so far.";

    /// Reads the flags of `count-sink` (without the program name).
    ///
    /// # Errors
    ///
    /// Returns [`BenchesError::Arg`] for an unknown flag or a bad value.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Self, BenchesError> {
        let mut cfg = Self::default();
        let mut it = args.into_iter();
        while let Some(flag) = it.next() {
            match flag.as_str() {
                "--grpc" => cfg.grpc = args::value(&mut it, &flag)?,
                "--http" => cfg.http = args::value(&mut it, &flag)?,
                "--expect" => cfg.expect = Some(args::value(&mut it, &flag)?),
                "--max-secs" => {
                    cfg.max_time = Duration::from_secs_f64(args::value(&mut it, &flag)?)
                }
                "--max-body" => cfg.max_body = args::value(&mut it, &flag)?,
                _ => return Err(args::unknown(&flag)),
            }
        }
        Ok(cfg)
    }
}

// === impl Snapshot ===

impl Snapshot {
    /// Items of every signal together.
    pub fn items(&self) -> u64 {
        self.signals.iter().map(|s| s.items).sum()
    }

    /// The counts of one signal.
    pub fn signal(&self, signal: Signal) -> SignalStats {
        self.signals[signal.index()]
    }

    /// The counts as a flat JSON object: `<signal>_<count>` keys
    /// (`traces_items`, `logs_bytes`, ...), `items`, `uptime_s`,
    /// `first_item_s` and `last_item_s` (null before any item).
    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        for s in Signal::ALL {
            let c = self.signal(s);
            for (k, v) in [
                ("requests", c.requests),
                ("items", c.items),
                ("bytes", c.bytes),
                ("errors", c.errors),
            ] {
                m.insert(format!("{s}_{k}"), v.into());
            }
        }
        m.insert("items".into(), self.items().into());
        m.insert("uptime_s".into(), self.uptime_s.into());
        m.insert("first_item_s".into(), self.first_item_s.into());
        m.insert("last_item_s".into(), self.last_item_s.into());
        m
    }
}

// === impl Sink ===

impl Sink {
    /// Binds both listeners and starts serving them on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// Returns [`BenchesError::Bind`] when an address cannot be bound.
    pub async fn bind(config: &SinkConfig) -> Result<Sink, BenchesError> {
        let state = Arc::new(State {
            signals: Default::default(),
            total: AtomicU64::new(0),
            started: Instant::now(),
            first_item: AtomicU64::new(0),
            last_item: AtomicU64::new(0),
            expect: config.expect,
            reached: Notify::new(),
            max_body: config.max_body,
        });
        let mut tasks = Vec::with_capacity(2);
        let mut addrs = Vec::with_capacity(2);
        for addr in [config.grpc, config.http] {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| BenchesError::Bind { addr, source })?;
            let local = listener
                .local_addr()
                .map_err(|source| BenchesError::Bind { addr, source })?;
            addrs.push(local);
            tasks.push(tokio::spawn(accept_loop(listener, state.clone())));
        }
        Ok(Sink {
            state,
            grpc_addr: addrs[0],
            http_addr: addrs[1],
            tasks,
        })
    }

    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// The bound HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The bound addresses as the one JSON line count-sink prints at start.
    pub fn addresses_json(&self) -> String {
        serde_json::json!({
            "event": "listening",
            "grpc": self.grpc_addr.to_string(),
            "http": self.http_addr.to_string(),
        })
        .to_string()
    }

    /// The counts so far.
    pub fn snapshot(&self) -> Snapshot {
        self.state.snapshot()
    }

    /// Resolves once the expected number of items has arrived; never resolves
    /// when no number was expected.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the notification is kept until a later call observes it.
    pub async fn expected(&self) {
        match self.state.expect {
            Some(n) if self.state.total.load(Ordering::Acquire) >= n => {}
            Some(_) => self.state.reached.notified().await,
            None => std::future::pending().await,
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

// === impl State ===

impl State {
    fn since_start(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_nanos())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }

    fn record(&self, signal: Signal, items: u64, bytes: usize) {
        let c = &self.signals[signal.index()];
        c.requests.fetch_add(1, Ordering::Relaxed);
        c.items.fetch_add(items, Ordering::Relaxed);
        c.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        if items > 0 {
            let now = self.since_start();
            let _ = self
                .first_item
                .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
            self.last_item.fetch_max(now, Ordering::Relaxed);
        }
        let before = self.total.fetch_add(items, Ordering::AcqRel);
        if let Some(n) = self.expect
            && before < n
            && before + items >= n
        {
            self.reached.notify_one();
        }
    }

    fn error(&self, signal: Signal) {
        self.signals[signal.index()]
            .errors
            .fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> Snapshot {
        let secs = |v: u64| (v > 0).then(|| (v - 1) as f64 / 1e9);
        Snapshot {
            signals: std::array::from_fn(|i| {
                let c = &self.signals[i];
                SignalStats {
                    requests: c.requests.load(Ordering::Relaxed),
                    items: c.items.load(Ordering::Relaxed),
                    bytes: c.bytes.load(Ordering::Relaxed),
                    errors: c.errors.load(Ordering::Relaxed),
                }
            }),
            first_item_s: secs(self.first_item.load(Ordering::Relaxed)),
            last_item_s: secs(self.last_item.load(Ordering::Relaxed)),
            uptime_s: self.started.elapsed().as_secs_f64(),
        }
    }
}

// === impl RawCodec ===

impl Codec for RawCodec {
    type Encode = ();
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = ();
    type Error = Status;

    fn encode(&mut self, (): (), _dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        let len = src.remaining();
        Ok(Some(src.copy_to_bytes(len)))
    }
}

// === impl Export ===

impl Service<tonic::Request<Bytes>> for Export {
    type Response = tonic::Response<()>;
    type Error = Status;
    type Future = Ready<Result<tonic::Response<()>, Status>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: tonic::Request<Bytes>) -> Self::Future {
        let bytes = req.into_inner();
        ready(match count_items(self.signal, &bytes) {
            Ok(items) => {
                self.state.record(self.signal, items, bytes.len());
                Ok(tonic::Response::new(()))
            }
            Err(e) => {
                self.state.error(self.signal);
                Err(Status::invalid_argument(e.to_string()))
            }
        })
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    // Runs for the life of the sink; the tasks are aborted when it is dropped.
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of file descriptors or a reset before accept: back off briefly.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(req, state.clone()));
            // A connection error only ends that connection.
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut res = Response::new(Body::new(Full::new(Bytes::from(body))));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

async fn handle(req: Request<Incoming>, state: Arc<State>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path();
    if let Some(signal) = Signal::ALL.into_iter().find(|s| s.grpc_path() == path) {
        let mut grpc = tonic::server::Grpc::new(RawCodec)
            .max_decoding_message_size(state.max_body)
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd);
        return Ok(grpc.unary(Export { signal, state }, req).await);
    }
    if path == "/stats" {
        if req.method() != Method::GET {
            return Ok(text(
                StatusCode::METHOD_NOT_ALLOWED,
                "use GET /stats\n".into(),
            ));
        }
        let json = serde_json::Value::Object(state.snapshot().to_json()).to_string();
        let mut res = Response::new(Body::new(Full::new(Bytes::from(json))));
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        return Ok(res);
    }
    let Some(signal) = Signal::ALL.into_iter().find(|s| s.http_path() == path) else {
        return Ok(text(
            StatusCode::NOT_FOUND,
            format!(
                "no route for '{path}': POST /v1/traces, /v1/logs or /v1/metrics, or GET /stats\n"
            ),
        ));
    };
    Ok(http_export(req, signal, &state).await)
}

async fn http_export(req: Request<Incoming>, signal: Signal, state: &State) -> Response<Body> {
    if req.method() != Method::POST {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("use POST {}\n", signal.http_path()),
        );
    }
    let encoding = match req
        .headers()
        .get(header::CONTENT_ENCODING)
        .map(|v| v.as_bytes())
    {
        None | Some(b"identity") => None,
        Some(b"gzip") => Some("gzip"),
        Some(b"zstd") => Some("zstd"),
        Some(other) => {
            state.error(signal);
            return text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "content-encoding {:?} is not supported: count-sink takes identity, gzip or zstd\n",
                    String::from_utf8_lossy(other)
                ),
            );
        }
    };
    let body = match Limited::new(req.into_body(), state.max_body)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            state.error(signal);
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "reading the request body failed (limit {} bytes): {e}\n",
                    state.max_body
                ),
            );
        }
    };
    let body = match encoding.map(|e| decompress(e, &body, state.max_body)) {
        None => body,
        Some(Ok(plain)) => plain,
        Some(Err(e)) => {
            state.error(signal);
            return text(
                StatusCode::BAD_REQUEST,
                format!(
                    "the {} body could not be decompressed: {e}\n",
                    encoding.unwrap_or("")
                ),
            );
        }
    };
    match count_items(signal, &body) {
        Ok(items) => {
            state.record(signal, items, body.len());
            let mut res = Response::new(Body::empty());
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/x-protobuf"),
            );
            res
        }
        Err(e) => {
            state.error(signal);
            text(StatusCode::BAD_REQUEST, format!("{e}\n"))
        }
    }
}

/// `body` decompressed from `encoding` (`gzip` or `zstd`), at most `max` bytes.
fn decompress(encoding: &str, body: &[u8], max: usize) -> std::io::Result<Bytes> {
    use std::io::Read as _;
    let mut out = Vec::with_capacity(body.len() * 8);
    let limit = u64::try_from(max).unwrap_or(u64::MAX) + 1;
    match encoding {
        "gzip" => flate2::read::MultiGzDecoder::new(body)
            .take(limit)
            .read_to_end(&mut out)?,
        _ => zstd::stream::read::Decoder::new(body)?
            .take(limit)
            .read_to_end(&mut out)?,
    };
    if out.len() > max {
        return Err(std::io::Error::other(format!(
            "decompressed body over the {max}-byte limit"
        )));
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests;
