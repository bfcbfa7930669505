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

mod answer;
mod server;
#[cfg(test)]
mod tests;

pub use self::answer::{base64, http_date};
use self::{answer::*, server::*};

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
