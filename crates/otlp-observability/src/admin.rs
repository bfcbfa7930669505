//! The admin HTTP server: the status page `/` and `/status.json`, `/health`, `/health/live`, `/health/ready`,
//! `/metrics`, `/debug/logs` and `/debug/profile`.
//!
//! It runs on hyper 1 (HTTP/1.1 only), answers `GET` and `HEAD` and nothing
//! else, bounds header size and header read time, and caps its concurrent
//! connections, so a misbehaving scraper cannot exhaust the process.
//!
//! Probes must answer even when idle connections fill that cap (issue 16,
//! case 5): a new connection that finds every slot taken closes the open
//! connection that has been idle the longest (no request in flight) and takes
//! its slot, instead of waiting in the backlog behind it. Idle connections
//! also last at most the header read timeout
//! ([`DEFAULT_HEADER_READ_TIMEOUT`](AdminServer::DEFAULT_HEADER_READ_TIMEOUT),
//! 2 s), which hyper applies both to a new connection's first request and to
//! the wait between keep-alive requests.

use std::{
    collections::HashMap,
    convert::Infallible,
    future::Future,
    net::{Ipv4Addr, SocketAddr, SocketAddrV4},
    pin::Pin,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::{
    body::{Body, Frame, Incoming, SizeHint},
    server::conn::http1,
    service::service_fn,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    net::TcpListener,
    sync::{Notify, OwnedSemaphorePermit, Semaphore, watch},
    time::Instant,
};

use crate::{
    HealthChecker, HealthReport, LogRing, OPENMETRICS_CONTENT_TYPE, ObservabilityError,
    PROMETHEUS_TEXT_CONTENT_TYPE, SelfMetrics, StageProfiler, Status,
};

/// The status page's content type.
const HTML_CONTENT_TYPE: &str = "text/html; charset=utf-8";

/// What the admin server serves: the metrics, the health checks and,
/// optionally, the log ring and the stage profiler.
#[derive(Clone, Debug)]
pub struct AdminState {
    metrics: Arc<SelfMetrics>,
    health: Arc<HealthChecker>,
    logs: Option<LogRing>,
    profiler: Option<StageProfiler>,
}

/// The admin server's settings; [`bind`](AdminServer::bind) with the defaults
/// or [`listen`](AdminServer::listen) with these.
///
/// ```
/// use std::{net::SocketAddr, sync::Arc};
/// use otlp_observability::{AdminServer, AdminState, HealthChecker, SelfMetrics};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), otlp_observability::ObservabilityError> {
/// let state = AdminState::new(Arc::new(SelfMetrics::new()), HealthChecker::new());
/// let bound = AdminServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)), state).await?;
/// assert_ne!(bound.local_addr().port(), 0);
/// // Serve until the shutdown future completes (here: at once).
/// bound.serve(async {}).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct AdminServer {
    addr: SocketAddr,
    header_read_timeout: Duration,
    max_connections: usize,
    shutdown_grace: Duration,
}

/// An admin server bound to its port, ready to [`serve`](BoundAdmin::serve).
#[derive(Debug)]
pub struct BoundAdmin {
    listener: TcpListener,
    local_addr: SocketAddr,
    state: AdminState,
    config: AdminServer,
}

// === impl AdminState ===

impl AdminState {
    /// Serves `metrics` on `/metrics` and `health` on `/health*`.
    pub fn new(metrics: Arc<SelfMetrics>, health: HealthChecker) -> Self {
        Self {
            metrics,
            health: Arc::new(health),
            logs: None,
            profiler: None,
        }
    }

    /// Serves `ring` on `/debug/logs`.
    pub fn with_logs(mut self, ring: LogRing) -> Self {
        self.logs = Some(ring);
        self
    }

    /// Serves `profiler` on `/debug/profile`.
    pub fn with_profiler(mut self, profiler: StageProfiler) -> Self {
        self.profiler = Some(profiler);
        self
    }
}

// === impl AdminServer ===

impl AdminServer {
    /// The default address, `127.0.0.1:8080`: loopback only, so exposing it
    /// is an explicit choice.
    pub const DEFAULT_ADDR: SocketAddr =
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 1), 8080));
    /// Default time a client has to send its request headers: 2 s, counted
    /// from the connection's start and, on a keep-alive connection, from the
    /// end of the previous response, so it is also how long a connection may
    /// sit idle. A kubelet probe or a Prometheus scrape sends its request at
    /// once; a scraper that keeps its connection between scrapes reconnects.
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(2);
    /// Default cap on concurrent connections: 64. When all are open, a new
    /// connection closes the one idle the longest and takes its slot; only
    /// when every connection has a request in flight does it wait (up to the
    /// header read timeout, then it is closed).
    pub const DEFAULT_MAX_CONNECTIONS: usize = 64;
    /// The largest accepted [`with_max_connections`](Self::with_max_connections).
    pub const MAX_CONNECTIONS_CAP: usize = 1 << 16;
    /// Default time open connections get to finish at shutdown.
    pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
    /// The largest request head accepted, in bytes.
    pub const MAX_REQUEST_HEAD: usize = 16 * 1024;

    /// Settings for `addr`, with the defaults otherwise.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            header_read_timeout: Self::DEFAULT_HEADER_READ_TIMEOUT,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            shutdown_grace: Self::DEFAULT_SHUTDOWN_GRACE,
        }
    }

    /// Sets the time a client has to send its request headers (at least 1 ms).
    pub fn with_header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Caps concurrent connections (at least 1, at most
    /// [`MAX_CONNECTIONS_CAP`](Self::MAX_CONNECTIONS_CAP)). At the cap, a new
    /// connection closes the longest-idle open one to take its slot.
    pub fn with_max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.clamp(1, Self::MAX_CONNECTIONS_CAP);
        self
    }

    /// Sets the time open connections get to finish at shutdown.
    pub fn with_shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Binds `addr` with the default settings.
    ///
    /// # Errors
    ///
    /// [`ObservabilityError::Bind`] when the address is taken or not local.
    pub async fn bind(
        addr: SocketAddr,
        state: AdminState,
    ) -> Result<BoundAdmin, ObservabilityError> {
        Self::new(addr).listen(state).await
    }

    /// Binds the configured address.
    ///
    /// # Errors
    ///
    /// [`ObservabilityError::Bind`] when the address is taken or not local.
    pub async fn listen(self, state: AdminState) -> Result<BoundAdmin, ObservabilityError> {
        let addr = self.addr;
        let bind_error = |source| ObservabilityError::Bind { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        Ok(BoundAdmin {
            listener,
            local_addr,
            state,
            config: self,
        })
    }
}

impl Default for AdminServer {
    fn default() -> Self {
        Self::new(Self::DEFAULT_ADDR)
    }
}

// === impl BoundAdmin ===

impl BoundAdmin {
    /// The address actually bound (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then stops accepting, lets open
    /// connections finish their current request within the shutdown grace,
    /// and returns.
    ///
    /// When all `max_connections` slots are taken, a new connection closes
    /// the open connection idle the longest (none of its requests in flight)
    /// and takes its slot; if every connection is busy it waits for a slot
    /// for up to the header read timeout and is closed after that.
    ///
    /// Accept errors (such as running out of file descriptors) are logged and
    /// retried after a short pause rather than ending the server.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future closes the listener and asks open connections to
    /// close once their current request is answered.
    ///
    /// # Errors
    ///
    /// None today; the `Result` leaves room for fatal listener errors.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<(), ObservabilityError> {
        let Self {
            listener,
            local_addr,
            state,
            config,
        } = self;
        let limit = Arc::new(Semaphore::new(config.max_connections));
        let registry = Arc::new(Registry::default());
        let (stop_tx, stop_rx) = watch::channel(false);
        tokio::pin!(shutdown);
        tracing::info!(addr = %local_addr, "admin server listening");
        loop {
            let (stream, peer) = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(addr = %local_addr, error = %e, "admin server: accept failed, retrying");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let permit = tokio::select! {
                () = &mut shutdown => break,
                permit = admit(&limit, &registry, config.header_read_timeout) => permit,
            };
            let Some(permit) = permit else {
                tracing::warn!(
                    addr = %local_addr,
                    %peer,
                    max_connections = config.max_connections,
                    waited = ?config.header_read_timeout,
                    "admin server: every connection slot is busy with a request; closed a new connection. Raise the admin server's max_connections if this many scrapers are expected"
                );
                continue;
            };
            let slot = registry.open();
            let service = {
                let state = state.clone();
                let slot = slot.clone();
                service_fn(move |req| {
                    let state = state.clone();
                    // In flight until hyper drops the response body, that is
                    // once it is written (or the connection is gone).
                    let guard = InFlight::begin(&slot);
                    async move {
                        let resp = route(&state, &req).await.map(|body| Tracked {
                            body,
                            _in_flight: guard,
                        });
                        Ok::<_, Infallible>(resp)
                    }
                })
            };
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(config.header_read_timeout)
                .max_buf_size(AdminServer::MAX_REQUEST_HEAD);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            let mut stop = stop_rx.clone();
            let registry = registry.clone();
            tokio::spawn(async move {
                tokio::pin!(conn);
                let mut closing = false;
                loop {
                    tokio::select! {
                        res = conn.as_mut() => {
                            if let Err(e) = res {
                                tracing::debug!(%peer, error = %e, "admin connection ended with an error");
                            }
                            break;
                        }
                        () = slot.close.notified(), if !closing => {
                            if slot.in_flight.load(Ordering::Acquire) == 0 {
                                tracing::debug!(%peer, "admin server: closing the longest-idle connection to make room for a new one");
                                break;
                            }
                            // A request began since it was picked: answer it, then close.
                            closing = true;
                            conn.as_mut().graceful_shutdown();
                        }
                        _ = stop.changed(), if !closing => {
                            closing = true;
                            conn.as_mut().graceful_shutdown();
                        }
                    }
                }
                registry.close(slot.id);
                drop(permit);
            });
        }
        drop(listener);
        let _ = stop_tx.send(true);
        let all = u32::try_from(config.max_connections).unwrap_or(u32::MAX);
        if tokio::time::timeout(config.shutdown_grace, limit.acquire_many(all))
            .await
            .is_err()
        {
            tracing::warn!(addr = %local_addr, grace = ?config.shutdown_grace, "admin server: connections still open after the shutdown grace");
        }
        Ok(())
    }
}

/// How often a new connection that found every slot busy with requests
/// looks again for a connection that has become idle.
const ADMIT_POLL: Duration = Duration::from_millis(10);

/// How long a connection is safe from being closed to make room: a new
/// connection gets this long to send its request, even while others keep
/// arriving. It is also the longest a new connection waits for room while
/// every other connection is idle, so it stays well below probe timeouts.
const EVICT_MIN_IDLE: Duration = Duration::from_millis(20);

/// A connection slot for a new connection: a free one, else the slot of the
/// longest-idle connection (closed to make room once it has been idle for
/// [`EVICT_MIN_IDLE`]), else the first slot freed within `wait`. `None` when
/// none came in time.
async fn admit(
    limit: &Arc<Semaphore>,
    registry: &Registry,
    wait: Duration,
) -> Option<OwnedSemaphorePermit> {
    let deadline = Instant::now() + wait;
    loop {
        if let Ok(permit) = limit.clone().try_acquire_owned() {
            return Some(permit);
        }
        let pause = match registry.evict_longest_idle(EVICT_MIN_IDLE) {
            // Closed one: its slot comes back as soon as its task ends.
            Evict::Closed | Evict::AllBusy => ADMIT_POLL,
            Evict::NotYet(left) => left,
        };
        let poll = (Instant::now() + pause).min(deadline);
        match tokio::time::timeout_at(poll, limit.clone().acquire_owned()).await {
            Ok(Ok(permit)) => return Some(permit),
            Ok(Err(_closed)) => return None,
            Err(_elapsed) if Instant::now() >= deadline => return None,
            Err(_elapsed) => {}
        }
    }
}

/// What [`Registry::evict_longest_idle`] did.
#[derive(Debug)]
enum Evict {
    /// Asked the longest-idle connection to close.
    Closed,
    /// The longest-idle connection may be closed after this long.
    NotYet(Duration),
    /// Every connection has a request in flight or is already closing.
    AllBusy,
}

/// The open connections, so that a new one can close the longest-idle one
/// when every slot is taken. Holds at most `max_connections` entries: one per
/// permit.
#[derive(Debug)]
struct Registry {
    epoch: Instant,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Slot>>>,
}

/// One open connection as the registry sees it.
#[derive(Debug)]
struct Slot {
    id: u64,
    /// The registry's epoch.
    epoch: Instant,
    /// Requests read and not yet answered (response body not yet dropped).
    in_flight: AtomicUsize,
    /// When it last became idle, in ms since the registry's epoch.
    idle_since_ms: AtomicU64,
    /// Picked to close; not picked again.
    evicted: AtomicBool,
    close: Notify,
}

/// Counts one request as in flight until dropped.
#[derive(Debug)]
struct InFlight(Arc<Slot>);

/// A response body that keeps its request in flight until hyper drops it,
/// that is once it is written out (or the connection is gone).
#[derive(Debug)]
struct Tracked {
    body: Full<Bytes>,
    _in_flight: InFlight,
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            next_id: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
        }
    }
}

impl Registry {
    /// Registers a new connection, idle since now.
    fn open(&self) -> Arc<Slot> {
        let slot = Arc::new(Slot {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            epoch: self.epoch,
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(ms_since(self.epoch)),
            evicted: AtomicBool::new(false),
            close: Notify::new(),
        });
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(slot.id, slot.clone());
        slot
    }

    fn close(&self, id: u64) {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }

    /// Asks the connection idle the longest to close, if it has been idle
    /// for at least `min_idle`.
    fn evict_longest_idle(&self, min_idle: Duration) -> Evict {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let oldest = open
            .values()
            .filter(|s| {
                s.in_flight.load(Ordering::Acquire) == 0 && !s.evicted.load(Ordering::Relaxed)
            })
            .min_by_key(|s| s.idle_since_ms.load(Ordering::Relaxed));
        let Some(slot) = oldest else {
            return Evict::AllBusy;
        };
        let idle = Duration::from_millis(
            ms_since(self.epoch).saturating_sub(slot.idle_since_ms.load(Ordering::Relaxed)),
        );
        if idle < min_idle {
            return Evict::NotYet(min_idle - idle);
        }
        slot.evicted.store(true, Ordering::Relaxed);
        slot.close.notify_one();
        Evict::Closed
    }
}

impl InFlight {
    fn begin(slot: &Arc<Slot>) -> Self {
        slot.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(slot.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let slot = &self.0;
        slot.idle_since_ms
            .fetch_max(ms_since(slot.epoch), Ordering::Relaxed);
        slot.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

fn ms_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

async fn route(state: &AdminState, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut resp = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed: use GET\n",
        );
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return resp;
    }
    let query = req.uri().query().unwrap_or("");
    match req.uri().path() {
        "/health" => health(state.health.check_all().await),
        "/health/live" => health(state.health.check_liveness().await),
        "/health/ready" => health(state.health.check_readiness().await),
        "/metrics" => metrics(state, req),
        "/debug/logs" => match &state.logs {
            Some(ring) => {
                let limit = query_param(query, "limit")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(ring.capacity());
                json(StatusCode::OK, ring.to_json(limit))
            }
            None => text(StatusCode::NOT_FOUND, "the log ring is not enabled\n"),
        },
        "/debug/losses" => json(StatusCode::OK, state.metrics.losses().to_json()),
        "/debug/profile" => match &state.profiler {
            Some(profiler) => {
                let report = profiler.report();
                if query_param(query, "format") == Some("text") {
                    text(StatusCode::OK, report.to_text())
                } else {
                    json(StatusCode::OK, report.to_json())
                }
            }
            None => text(StatusCode::NOT_FOUND, "the stage profiler is not enabled\n"),
        },
        "/" => match status(state).await {
            Ok(s) => respond(StatusCode::OK, HTML_CONTENT_TYPE, s.to_html()),
            Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
        },
        "/status.json" => match status(state).await {
            Ok(s) => json(StatusCode::OK, s.to_json()),
            Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            "not found; see / for the endpoints\n",
        ),
    }
}

/// The snapshot behind `/` and `/status.json`.
async fn status(state: &AdminState) -> Result<Status, ObservabilityError> {
    let exposition = state.metrics.encode_text()?;
    let health = state.health.check_all().await;
    let unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Ok(Status::new(
        &exposition,
        health,
        state.metrics.losses().recent(),
        unix_ms,
    ))
}

fn health(report: HealthReport) -> Response<Full<Bytes>> {
    // The report decides 200 or 503 (`HealthReport::http_status`); both are valid codes.
    let status =
        StatusCode::from_u16(report.http_status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    json(status, report.to_json())
}

fn metrics(state: &AdminState, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let openmetrics = req
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let (encoded, content_type) = if openmetrics {
        (state.metrics.encode_openmetrics(), OPENMETRICS_CONTENT_TYPE)
    } else {
        (state.metrics.encode_text(), PROMETHEUS_TEXT_CONTENT_TYPE)
    };
    match encoded {
        Ok(body) => respond(StatusCode::OK, content_type, body),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

fn json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    respond(status, "application/json", body)
}

fn text(status: StatusCode, body: impl Into<String>) -> Response<Full<Bytes>> {
    respond(status, "text/plain; charset=utf-8", body.into())
}

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_are_found_by_key() {
        assert_eq!(query_param("limit=5&format=text", "format"), Some("text"));
        assert_eq!(query_param("limit=5", "format"), None);
        assert_eq!(query_param("", "limit"), None);
    }

    #[test]
    fn default_address_is_loopback_8080() {
        assert_eq!(AdminServer::DEFAULT_ADDR.to_string(), "127.0.0.1:8080");
    }
}
