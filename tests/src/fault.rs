//! A scriptable fault receiver: an OTLP/gRPC + OTLP/HTTP server on one port
//! whose answer to each request follows a script.
//!
//! It is written on raw hyper (HTTP/1.1 and HTTP/2 on the same socket) rather
//! than on our receivers, because it must say things our receivers never say:
//! `RESOURCE_EXHAUSTED` with `RetryInfo`, `429` with `Retry-After` seconds,
//! `503` with an HTTP-date `Retry-After`, a reset connection, a response that
//! stops mid-body, or no answer at all. Every accepted item is counted, and
//! trace span ids are recorded so that duplicates can be counted.

use std::{
    collections::{HashSet, VecDeque},
    convert::Infallible,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use bytes::{Buf, Bytes};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use otlp_core::{Signal, count_items};
use otlp_transport::google_rpc;
use prost::Message;
use tokio::{
    net::{TcpListener, TcpSocket},
    sync::watch,
};

use crate::E2eError;

/// The largest request body the fault receiver reads (64 MiB).
const MAX_BODY: usize = 64 << 20;
/// The most span ids recorded for duplicate counting.
const MAX_IDS: usize = 4 << 20;
/// The most requests kept in the request log.
const MAX_LOG: usize = 100_000;

/// What the fault receiver does with one request.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Accept every item (gRPC `OK`, HTTP 200).
    Accept,
    /// gRPC `UNAVAILABLE` / HTTP 503, with no retry hint.
    Unavailable,
    /// gRPC `RESOURCE_EXHAUSTED` with a `RetryInfo` of this delay / HTTP 429
    /// with `Retry-After` in whole seconds (rounded up).
    Throttle(Duration),
    /// HTTP 503 with `Retry-After` as an HTTP-date this far in the future /
    /// gRPC `UNAVAILABLE` with a `RetryInfo` of this delay.
    UnavailableUntil(Duration),
    /// gRPC `INVALID_ARGUMENT` / HTTP 400.
    BadRequest,
    /// Requests above this many body bytes get gRPC `RESOURCE_EXHAUSTED`
    /// ("message larger than max") / HTTP 413; smaller ones are accepted.
    TooLargeAbove(usize),
    /// Accept the request but reject this many of its items (partial success).
    PartialReject(u64),
    /// Reset the connection (TCP RST) without answering.
    Reset,
    /// Read the request and never answer (until the connection is killed).
    Hang,
    /// Start a successful-looking answer and close the connection mid-body.
    CloseMidBody,
}

/// How long a script step lasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Until {
    /// For this many requests.
    Requests(u32),
    /// For this long after the step's first request.
    For(Duration),
    /// For the rest of the script (the last step).
    Forever,
}

/// One step of a script: a fault and how long it lasts.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// What to do.
    pub fault: Fault,
    /// For how long.
    pub until: Until,
}

/// A per-request script: steps in order, then [`Fault::Accept`] forever.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Script {
    steps: VecDeque<Step>,
}

/// What the fault receiver saw and did, so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Requests received (all protocols and faults).
    pub requests: u64,
    /// Items in requests answered with success (partial rejections excluded).
    pub items_accepted: u64,
    /// Items rejected by partial success.
    pub items_rejected: u64,
    /// Distinct span ids among accepted trace items.
    pub unique_spans: u64,
    /// Accepted trace items whose span id had been accepted before.
    pub duplicate_spans: u64,
    /// Requests answered with each fault (by [`Fault`] name).
    pub by_fault: Vec<(&'static str, u64)>,
    /// Connections accepted.
    pub connections: u64,
}

/// One request, as the fault receiver logged it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logged {
    /// When it arrived, since the server started.
    pub at: Duration,
    /// What was done with it.
    pub fault: &'static str,
    /// Body bytes.
    pub bytes: usize,
}

/// The scriptable fault receiver.
///
/// Serves until dropped (or until [`FaultServer::go_down`] takes it down for a while).
#[derive(Debug)]
pub struct FaultServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

#[derive(Debug)]
struct Shared {
    started: Instant,
    state: Mutex<State>,
    requests: AtomicU64,
    connections: AtomicU64,
    /// Bumped to kill every open connection; `up` false means the listener is closed.
    life: watch::Sender<Life>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Life {
    generation: u64,
    up: bool,
    closed: bool,
}

#[derive(Debug, Default)]
struct State {
    script: Script,
    /// When the current step started (for [`Until::For`]).
    step_started: Option<Instant>,
    /// Requests served by the current step (for [`Until::Requests`]).
    step_served: u32,
    items_accepted: u64,
    items_rejected: u64,
    spans: HashSet<u64>,
    duplicate_spans: u64,
    by_fault: Vec<(&'static str, u64)>,
    log: Vec<Logged>,
}

/// The body of an answer: a queue of frames, or an error after the frames
/// (which makes hyper abort the stream: "close mid-body").
#[derive(Debug)]
struct Frames {
    frames: VecDeque<Frame<Bytes>>,
    fail_at_end: bool,
}

/// An `Export*ServiceResponse` (the three signals share the layout: field 1
/// is the partial success, whose field 1 counts rejected items and field 2
/// holds the message).
#[derive(Clone, PartialEq, Message)]
struct ExportResponseProto {
    #[prost(message, optional, tag = "1")]
    partial_success: Option<PartialSuccess>,
}

#[derive(Clone, PartialEq, Message)]
struct PartialSuccess {
    #[prost(int64, tag = "1")]
    rejected: i64,
    #[prost(string, tag = "2")]
    error_message: String,
}

/// Just enough of `ExportTraceServiceRequest` to read span ids.
#[derive(Clone, PartialEq, Message)]
struct TraceRequest {
    #[prost(message, repeated, tag = "1")]
    resource_spans: Vec<ResourceSpans>,
}

#[derive(Clone, PartialEq, Message)]
struct ResourceSpans {
    #[prost(message, repeated, tag = "2")]
    scope_spans: Vec<ScopeSpans>,
}

#[derive(Clone, PartialEq, Message)]
struct ScopeSpans {
    #[prost(message, repeated, tag = "2")]
    spans: Vec<SpanId>,
}

#[derive(Clone, PartialEq, Message)]
struct SpanId {
    #[prost(bytes = "vec", tag = "2")]
    span_id: Vec<u8>,
}

// === impl Fault ===

impl Fault {
    /// A short name, for logs and stats.
    pub fn name(&self) -> &'static str {
        match self {
            Fault::Accept => "accept",
            Fault::Unavailable => "unavailable",
            Fault::Throttle(_) => "throttle",
            Fault::UnavailableUntil(_) => "unavailable_until",
            Fault::BadRequest => "bad_request",
            Fault::TooLargeAbove(_) => "too_large_above",
            Fault::PartialReject(_) => "partial_reject",
            Fault::Reset => "reset",
            Fault::Hang => "hang",
            Fault::CloseMidBody => "close_mid_body",
        }
    }
}

// === impl Script ===

impl Script {
    /// An empty script: accept everything.
    pub fn accept() -> Self {
        Self::default()
    }

    /// Adds a step answering `n` requests with `fault`.
    pub fn then_n(mut self, fault: Fault, n: u32) -> Self {
        self.steps.push_back(Step {
            fault,
            until: Until::Requests(n),
        });
        self
    }

    /// Adds a step answering with `fault` for `d` from its first request.
    pub fn then_for(mut self, fault: Fault, d: Duration) -> Self {
        self.steps.push_back(Step {
            fault,
            until: Until::For(d),
        });
        self
    }

    /// Adds a last step answering every further request with `fault`.
    pub fn then_always(mut self, fault: Fault) -> Self {
        self.steps.push_back(Step {
            fault,
            until: Until::Forever,
        });
        self
    }
}

// === impl FaultServer ===

impl FaultServer {
    /// Starts a fault receiver on 127.0.0.1 (a free port) with this script.
    ///
    /// # Errors
    ///
    /// [`E2eError::Io`] when no port can be bound.
    pub async fn start(script: Script) -> Result<Self, E2eError> {
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let addr = listener.local_addr().map_err(|source| E2eError::Io {
            what: "local_addr",
            source,
        })?;
        let (life, _) = watch::channel(Life {
            generation: 0,
            up: true,
            closed: false,
        });
        let shared = Arc::new(Shared {
            started: Instant::now(),
            state: Mutex::new(State {
                script,
                ..State::default()
            }),
            requests: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            life,
        });
        tokio::spawn(accept_loop(shared.clone(), listener, addr));
        Ok(Self { shared, addr })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The gRPC endpoint (`http://127.0.0.1:port`).
    pub fn grpc_endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The HTTP endpoint of a signal (`http://127.0.0.1:port/v1/traces`).
    pub fn http_endpoint(&self, signal: Signal) -> String {
        format!("http://{}{}", self.addr, signal.http_path())
    }

    /// Replaces the script (the current step restarts).
    pub fn set_script(&self, script: Script) {
        let mut st = lock(&self.shared.state);
        st.script = script;
        st.step_started = None;
        st.step_served = 0;
    }

    /// Kills every open connection (TCP reset) and stops accepting for `d`,
    /// then listens on the same port again. Returns at once.
    pub fn go_down(&self, d: Duration) {
        go_down(&self.shared, d);
    }

    /// What the receiver saw so far.
    pub fn stats(&self) -> FaultStats {
        let st = lock(&self.shared.state);
        FaultStats {
            requests: self.shared.requests.load(Ordering::Relaxed),
            items_accepted: st.items_accepted,
            items_rejected: st.items_rejected,
            unique_spans: st.spans.len() as u64,
            duplicate_spans: st.duplicate_spans,
            by_fault: st.by_fault.clone(),
            connections: self.shared.connections.load(Ordering::Relaxed),
        }
    }

    /// The span ids of every accepted trace item (at most 4 Mi of them).
    pub fn span_ids(&self) -> HashSet<u64> {
        lock(&self.shared.state).spans.clone()
    }

    /// The request log (at most 100 000 entries).
    pub fn log(&self) -> Vec<Logged> {
        lock(&self.shared.state).log.clone()
    }

    /// Waits until `items` items were accepted, checking every 10 ms, for at most `limit`.
    /// Returns whether they were.
    pub async fn wait_for_items(&self, items: u64, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if lock(&self.shared.state).items_accepted >= items {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.shared.life.send_modify(|l| {
            l.generation += 1;
            l.up = false;
            l.closed = true;
        });
    }
}

// === impl Shared ===

impl Shared {
    /// Picks the fault for the next request and advances the script.
    fn next_fault(&self, body_len: usize) -> Fault {
        let now = Instant::now();
        let mut st = lock(&self.state);
        let st = &mut *st;
        loop {
            let Some(step) = st.script.steps.front() else {
                return Fault::Accept;
            };
            let started = *st.step_started.get_or_insert(now);
            let done = match step.until {
                Until::Requests(n) => st.step_served >= n,
                Until::For(d) => now.duration_since(started) >= d,
                Until::Forever => false,
            };
            if done {
                st.script.steps.pop_front();
                st.step_started = None;
                st.step_served = 0;
                continue;
            }
            st.step_served += 1;
            let fault = step.fault.clone();
            return match fault {
                Fault::TooLargeAbove(n) if body_len <= n => Fault::Accept,
                f => f,
            };
        }
    }

    fn record(&self, fault: &Fault, bytes: usize) {
        let mut st = lock(&self.state);
        let name = fault.name();
        match st.by_fault.iter_mut().find(|(n, _)| *n == name) {
            Some((_, c)) => *c += 1,
            None => st.by_fault.push((name, 1)),
        }
        if st.log.len() < MAX_LOG {
            let at = self.started.elapsed();
            st.log.push(Logged {
                at,
                fault: name,
                bytes,
            });
        }
    }

    /// Counts the accepted items of a request (and its span ids, for traces).
    fn accept(&self, signal: Signal, body: &[u8], rejected: u64) {
        let items = count_items(signal, body).unwrap_or(0);
        let rejected = rejected.min(items);
        let ids = if signal == Signal::Traces && rejected == 0 {
            span_ids(body)
        } else {
            Vec::new()
        };
        let mut st = lock(&self.state);
        st.items_accepted += items - rejected;
        st.items_rejected += rejected;
        for id in ids {
            if st.spans.len() >= MAX_IDS {
                break;
            }
            if !st.spans.insert(id) {
                st.duplicate_spans += 1;
            }
        }
    }
}

// === impl Frames ===

impl Frames {
    fn full(bytes: Bytes) -> Self {
        Self {
            frames: VecDeque::from([Frame::data(bytes)]),
            fail_at_end: false,
        }
    }

    fn empty() -> Self {
        Self {
            frames: VecDeque::new(),
            fail_at_end: false,
        }
    }
}

impl Body for Frames {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.frames.pop_front() {
            Some(f) => Poll::Ready(Some(Ok(f))),
            None if self.fail_at_end => {
                self.fail_at_end = false;
                Poll::Ready(Some(Err(std::io::Error::other(
                    "closed mid-body by script",
                ))))
            }
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty() && !self.fail_at_end
    }
}

// === the server ===

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    // A panic while holding the lock can only come from a bug in this file;
    // the counters are still usable, so recover the guard.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn bind(addr: SocketAddr) -> Result<TcpListener, E2eError> {
    let io = |what| move |source| E2eError::Io { what, source };
    let socket = TcpSocket::new_v4().map_err(io("socket"))?;
    // Coming back up on the same port must not wait for TIME_WAIT.
    socket.set_reuseaddr(true).map_err(io("set_reuseaddr"))?;
    socket.bind(addr).map_err(io("bind"))?;
    socket.listen(1024).map_err(io("listen"))
}

fn go_down(shared: &Arc<Shared>, d: Duration) {
    shared.life.send_modify(|l| {
        l.generation += 1;
        l.up = false;
    });
    let shared = shared.clone();
    tokio::spawn(async move {
        tokio::time::sleep(d).await;
        shared.life.send_modify(|l| {
            if !l.closed {
                l.up = true;
            }
        });
    });
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, addr: SocketAddr) {
    let mut life = shared.life.subscribe();
    let mut listener = Some(listener);
    loop {
        let now = *life.borrow_and_update();
        if now.closed {
            return;
        }
        match (&listener, now.up) {
            (Some(l), true) => {
                tokio::select! {
                    res = l.accept() => {
                        if let Ok((stream, _)) = res {
                            shared.connections.fetch_add(1, Ordering::Relaxed);
                            // Every server-side close is abrupt (RST): that is
                            // what "reset", "go down" and a crash look like.
                            let _ = stream.set_zero_linger();
                            let _ = stream.set_nodelay(true);
                            tokio::spawn(serve_conn(shared.clone(), stream, now.generation));
                        }
                    }
                    changed = life.changed() => if changed.is_err() { return },
                }
            }
            (Some(_), false) => listener = None,
            (None, true) => match bind(addr) {
                Ok(l) => listener = Some(l),
                // The port may still be in use for a moment: try again shortly.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
            (None, false) => {
                if life.changed().await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn serve_conn(shared: Arc<Shared>, stream: tokio::net::TcpStream, generation: u64) {
    let mut life = shared.life.subscribe();
    let (kill_tx, mut kill_rx) = watch::channel(false);
    let kill_tx = Arc::new(kill_tx);
    let svc_shared = shared.clone();
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        let shared = svc_shared.clone();
        let kill = kill_tx.clone();
        async move { Ok::<_, Infallible>(handle(shared, kill, req).await) }
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection(TokioIo::new(stream), svc);
    tokio::select! {
        _ = conn => {}
        _ = kill_rx.wait_for(|k| *k) => {}
        _ = life.wait_for(|l| l.generation != generation) => {}
    }
}

async fn handle(
    shared: Arc<Shared>,
    kill: Arc<watch::Sender<bool>>,
    req: Request<Incoming>,
) -> Response<Frames> {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let grpc = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    let gzip = req
        .headers()
        .get(http::header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes() == b"gzip");
    let signal = signal_of(req.uri().path());
    let body = match http_body_util::Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(_) => return status_only(StatusCode::BAD_REQUEST),
    };
    let message = if grpc {
        grpc_message(&body)
    } else if gzip {
        gunzip(&body)
    } else {
        body.clone()
    };
    let fault = shared.next_fault(body.len());
    shared.record(&fault, body.len());
    match fault {
        Fault::Accept => {
            if let Some(s) = signal {
                shared.accept(s, &message, 0);
            }
            ok(grpc, None)
        }
        Fault::PartialReject(k) => {
            if let Some(s) = signal {
                shared.accept(s, &message, k);
            }
            ok(grpc, Some(k))
        }
        Fault::Unavailable if grpc => grpc_error(14, "unavailable by script", None),
        Fault::Unavailable => status_only(StatusCode::SERVICE_UNAVAILABLE),
        Fault::Throttle(d) if grpc => grpc_error(8, "throttled by script", Some(d)),
        Fault::Throttle(d) => {
            let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
            with_header(
                status_only(StatusCode::TOO_MANY_REQUESTS),
                http::header::RETRY_AFTER,
                &secs.to_string(),
            )
        }
        Fault::UnavailableUntil(d) if grpc => grpc_error(14, "down for maintenance", Some(d)),
        Fault::UnavailableUntil(d) => with_header(
            status_only(StatusCode::SERVICE_UNAVAILABLE),
            http::header::RETRY_AFTER,
            &http_date(SystemTime::now() + d),
        ),
        Fault::BadRequest if grpc => grpc_error(3, "invalid argument by script", None),
        Fault::BadRequest => status_only(StatusCode::BAD_REQUEST),
        Fault::TooLargeAbove(n) if grpc => grpc_error(
            8,
            &format!("message larger than max ({} vs. {n})", body.len()),
            None,
        ),
        Fault::TooLargeAbove(_) => status_only(StatusCode::PAYLOAD_TOO_LARGE),
        Fault::Reset => {
            let _ = kill.send(true);
            std::future::pending().await
        }
        Fault::Hang => std::future::pending().await,
        Fault::CloseMidBody => {
            let mut r = ok(grpc, None);
            // Announce a long body, send a piece of it, then fail the stream.
            if !grpc {
                r.headers_mut().insert(
                    http::header::CONTENT_LENGTH,
                    HeaderValue::from_static("4096"),
                );
            }
            let body = r.body_mut();
            body.frames = VecDeque::from([Frame::data(Bytes::from_static(&[0, 0, 0, 0, 10]))]);
            body.fail_at_end = true;
            r
        }
    }
}

fn signal_of(path: &str) -> Option<Signal> {
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
fn grpc_message(body: &Bytes) -> Bytes {
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
fn gunzip(data: &[u8]) -> Bytes {
    let mut out = Vec::new();
    match std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(data), &mut out) {
        Ok(_) => Bytes::from(out),
        Err(_) => Bytes::new(),
    }
}

fn grpc_frame(message: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(5 + message.len());
    out.push(0);
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    Bytes::from(out)
}

fn ok(grpc: bool, rejected: Option<u64>) -> Response<Frames> {
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

fn status_only(status: StatusCode) -> Response<Frames> {
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

fn with_header(mut r: Response<Frames>, name: http::HeaderName, value: &str) -> Response<Frames> {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
    r
}

/// A trailers-only gRPC error, with `RetryInfo` when `retry` is set.
fn grpc_error(code: i32, message: &str, retry: Option<Duration>) -> Response<Frames> {
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

fn span_ids(body: &[u8]) -> Vec<u64> {
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
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_date_formats_known_instants() {
        let t = UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
        // A fraction of a second rounds up, so the date is never before `t`.
        assert_eq!(
            http_date(t + Duration::from_millis(1)),
            "Sun, 06 Nov 1994 08:49:38 GMT"
        );
    }

    #[test]
    fn base64_matches_rfc4648_vectors_without_padding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg");
        assert_eq!(base64(b"fo"), "Zm8");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn script_steps_advance_by_count_then_accept() {
        let (life, _) = watch::channel(Life {
            generation: 0,
            up: true,
            closed: false,
        });
        let shared = Shared {
            started: Instant::now(),
            state: Mutex::new(State {
                script: Script::accept()
                    .then_n(Fault::Unavailable, 2)
                    .then_n(Fault::TooLargeAbove(10), 2),
                ..State::default()
            }),
            requests: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            life,
        };
        assert_eq!(shared.next_fault(1), Fault::Unavailable);
        assert_eq!(shared.next_fault(1), Fault::Unavailable);
        assert_eq!(shared.next_fault(100), Fault::TooLargeAbove(10));
        assert_eq!(shared.next_fault(5), Fault::Accept);
        assert_eq!(shared.next_fault(100), Fault::Accept);
    }
}
