//! The accept loop both receivers share: connection limit, TLS handshake
//! (on the connection's task, bounded), first-request deadline, HTTP/1
//! header read timeout, idle timeout, and graceful shutdown.

use std::{
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use hyper::{Request, Response, body::Incoming};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
    task::JoinSet,
};

use crate::receive::{ReceiveError, ReceiverLimits, tls::Acceptor};

/// A request handler served on each connection (the gRPC router or the HTTP handler).
pub(crate) trait Handle: Clone + Send + 'static {
    /// The response body.
    type Body: http_body::Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
        + Send
        + 'static;

    /// Answers one request; never fails (errors are answers).
    fn handle(
        &self,
        req: Request<Incoming>,
    ) -> impl Future<Output = Response<Self::Body>> + Send + 'static + use<Self>;

    /// Called once when shutdown begins, before connections drain.
    fn shutting_down(&self) -> impl Future<Output = ()> + Send + 'static + use<Self> {
        async {}
    }
}

/// The HTTP/2 `SETTINGS_MAX_FRAME_SIZE` the receivers advertise (1 MiB, the
/// stream window hyper's server grants by default).
const MAX_FRAME_SIZE: u32 = 1 << 20;

/// The HTTP/2 connection window the receivers grant (4 MiB; hyper's default
/// is 1 MiB, the size of one stream's window): with several requests in
/// flight on one connection, a request's frame is then rarely cut short by
/// the shared window, so it still arrives whole.
const CONNECTION_WINDOW: u32 = 4 << 20;

/// First pause after a failed `accept` (for example too many open files);
/// it doubles on each further failure up to [`ACCEPT_BACKOFF_MAX`] and
/// starts over at the next accepted connection.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(50);
/// Longest pause between two accept attempts while they keep failing.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// At most one WARN per this period while accepts keep failing; the lines in
/// between are counted and reported with the next one.
const ACCEPT_WARN_EVERY: Duration = Duration::from_secs(10);

/// Backoff and rate-limited logging for a failing `accept`: when descriptors
/// run out (EMFILE), retrying every few milliseconds burns CPU and floods the
/// log without freeing anything.
struct AcceptErrors {
    backoff: Duration,
    last_warn: Option<tokio::time::Instant>,
    suppressed: u64,
}

impl AcceptErrors {
    fn new() -> Self {
        Self {
            backoff: ACCEPT_BACKOFF_MIN,
            last_warn: None,
            suppressed: 0,
        }
    }

    /// Records a failure; returns how long to pause before the next accept.
    fn failed(&mut self, error: &std::io::Error, max_connections: usize) -> Duration {
        let now = tokio::time::Instant::now();
        let due = self
            .last_warn
            .is_none_or(|at| now.duration_since(at) >= ACCEPT_WARN_EVERY);
        if due {
            let hint = match error.raw_os_error() {
                // EMFILE / ENFILE on Linux and the BSDs.
                Some(23 | 24) => format!(
                    "too many open files: raise the descriptor limit (`ulimit -n`, systemd \
                     LimitNOFILE) above this receiver's {max_connections} connections plus \
                     the other receivers' and the disk queue's files"
                ),
                _ => "the listener keeps failing; check the error".to_owned(),
            };
            tracing::warn!(
                %error,
                hint,
                retry_in = ?self.backoff,
                suppressed = self.suppressed,
                "accept failed; backing off (one line per 10 s while it lasts)"
            );
            self.last_warn = Some(now);
            self.suppressed = 0;
        } else {
            self.suppressed += 1;
        }
        let pause = self.backoff;
        self.backoff = (self.backoff * 2).min(ACCEPT_BACKOFF_MAX);
        pause
    }

    fn accepted(&mut self) {
        self.backoff = ACCEPT_BACKOFF_MIN;
    }
}

/// Binds a listener, mapping the error to [`ReceiveError::Bind`].
pub(crate) async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), ReceiveError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ReceiveError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| ReceiveError::Bind { addr, source })?;
    Ok((listener, local))
}

/// Serves `handler` on every accepted connection until `shutdown` resolves,
/// then drains open connections for up to the shutdown grace. With `tls`,
/// each connection first completes a TLS handshake on its own task.
pub(crate) async fn serve<H: Handle>(
    listener: TcpListener,
    limits: ReceiverLimits,
    tls: Option<Acceptor>,
    http2_only: bool,
    handler: H,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout());
    builder
        .http2()
        .timer(TokioTimer::new())
        // One connection may not open every request slot.
        .max_concurrent_streams(
            u32::try_from(
                limits
                    .max_streams_per_connection()
                    .min(limits.max_concurrent_requests()),
            )
            .unwrap_or(u32::MAX),
        )
        // Frames as large as hyper's 1 MiB stream window: a client (tonic,
        // hyper, our exporter) then sends a typical OTLP request in one DATA
        // frame, which the gRPC receiver takes without copying it, in fewer
        // reads. The window already bounds what a connection holds, so a
        // larger frame adds no memory a client could not already pin.
        .max_frame_size(MAX_FRAME_SIZE)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .keep_alive_interval(Some(Duration::from_secs(30)));
    if http2_only {
        builder = builder.http2_only();
    }
    let builder = Arc::new(builder);
    let connections = Arc::new(Semaphore::new(limits.max_connections()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut accept_errors = AcceptErrors::new();
    tokio::pin!(shutdown);

    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => {
                        accept_errors.accepted();
                        a
                    }
                    Err(e) => {
                        let pause = accept_errors.failed(&e, limits.max_connections());
                        tokio::select! {
                            () = &mut shutdown => break,
                            () = tokio::time::sleep(pause) => {}
                        }
                        continue;
                    }
                };
                let Ok(permit) = connections.clone().try_acquire_owned() else {
                    // Closing at once makes the client fail fast and retry, instead of
                    // waiting in the backlog for a slot that may never come.
                    tracing::debug!(%peer, limit = limits.max_connections(), "connection refused: too many open connections");
                    drop(stream);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let conn = Conn {
                    builder: builder.clone(),
                    handler: handler.clone(),
                    first_request_deadline: limits.header_read_timeout(),
                    idle_timeout: limits.idle_timeout(),
                    stop: stop_rx.clone(),
                    peer,
                };
                let tls = tls.clone();
                tasks.spawn(async move {
                    conn.start(stream, tls).await;
                    drop(permit);
                });
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }

    drop(listener);
    handler.shutting_down().await;
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(limits.shutdown_grace(), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = tasks.len(),
            grace = ?limits.shutdown_grace(),
            "closing connections still open after the shutdown grace"
        );
        tasks.shutdown().await;
    }
}

/// One accepted connection.
struct Conn<H> {
    builder: Arc<auto::Builder<TokioExecutor>>,
    handler: H,
    first_request_deadline: Duration,
    idle_timeout: Duration,
    stop: tokio::sync::watch::Receiver<bool>,
    peer: SocketAddr,
}

/// What a connection is doing, shared by its requests and its task.
#[derive(Debug)]
struct Activity {
    born: tokio::time::Instant,
    /// Requests begun and not yet answered.
    in_flight: AtomicUsize,
    /// Requests begun so far.
    requests: AtomicU64,
    /// When the last request ended, in milliseconds since `born`.
    last_end_ms: AtomicU64,
}

/// Counts one request as in flight until dropped.
struct InFlight(Arc<Activity>);

impl Activity {
    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.requests.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// When the connection became idle, or `None` while a request is in flight.
    fn idle_since(&self) -> Option<tokio::time::Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        Some(self.born + Duration::from_millis(self.last_end_ms.load(Ordering::Acquire)))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let ms = u64::try_from(self.0.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.last_end_ms.fetch_max(ms, Ordering::AcqRel);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

// === impl Conn ===

impl<H: Handle> Conn<H> {
    /// Runs the TLS handshake when `tls` is set, then serves the connection.
    ///
    /// The handshake is bounded by the first-request deadline (the header
    /// read timeout), so a client that sends nothing, sends plaintext, or
    /// trickles its hello holds only this task and its connection slot, and
    /// only until then. Failures are the client's problem, not the agent's:
    /// they are logged at debug with the peer and counted nowhere.
    async fn start(self, stream: TcpStream, tls: Option<Acceptor>) {
        let Some(acceptor) = tls else {
            return self.run(stream).await;
        };
        #[cfg(feature = "tls")]
        {
            match tokio::time::timeout(self.first_request_deadline, acceptor.0.accept(stream)).await
            {
                Ok(Ok(tls)) => self.run(tls).await,
                Ok(Err(e)) => {
                    tracing::debug!(peer = %self.peer, error = %e, "tls handshake failed");
                }
                Err(_) => {
                    tracing::debug!(peer = %self.peer, timeout = ?self.first_request_deadline, "closing connection: tls handshake not completed in time");
                }
            }
        }
        #[cfg(not(feature = "tls"))]
        {
            let _ = stream;
            match acceptor {}
        }
    }

    async fn run<I>(mut self, stream: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let activity = Arc::new(Activity {
            born: tokio::time::Instant::now(),
            in_flight: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            last_end_ms: AtomicU64::new(0),
        });
        let svc = {
            let activity = activity.clone();
            let handler = self.handler.clone();
            hyper::service::service_fn(move |req: Request<Incoming>| {
                // In flight until the answer's head is handed back (the
                // small body follows at once).
                let guard = activity.begin();
                let fut = handler.handle(req);
                async move {
                    let resp = fut.await;
                    drop(guard);
                    Ok::<_, Infallible>(resp)
                }
            })
        };
        let conn = self.builder.serve_connection(TokioIo::new(stream), svc);
        tokio::pin!(conn);
        // HTTP/1 enforces the header read timeout itself; HTTP/2 has no such
        // timer, so a connection must deliver its first request in time.
        // After that one timer is re-armed for the idle timeout: it closes
        // the connection gracefully (GOAWAY on HTTP/2, close between
        // requests on HTTP/1) only when no request is in flight and none
        // ended within the idle timeout. A busy connection is never cut.
        let deadline = tokio::time::sleep(self.first_request_deadline);
        tokio::pin!(deadline);
        let mut first = true;
        let mut closing = false;
        let mut draining = *self.stop.borrow();
        if draining {
            conn.as_mut().graceful_shutdown();
        }
        loop {
            tokio::select! {
                res = conn.as_mut() => {
                    if let Err(e) = res {
                        tracing::debug!(peer = %self.peer, error = %e, "connection ended with an error");
                    }
                    return;
                }
                () = &mut deadline, if !closing => {
                    let now = tokio::time::Instant::now();
                    if first && activity.requests.load(Ordering::Relaxed) == 0 {
                        tracing::debug!(peer = %self.peer, timeout = ?self.first_request_deadline, "closing connection: no complete request headers in time");
                        return;
                    }
                    first = false;
                    match activity.idle_since() {
                        Some(since) if now >= since + self.idle_timeout => {
                            tracing::debug!(peer = %self.peer, idle = ?self.idle_timeout, "closing idle connection");
                            closing = true;
                            conn.as_mut().graceful_shutdown();
                        }
                        Some(since) => deadline.as_mut().reset(since + self.idle_timeout),
                        // Busy: look again one idle timeout from now.
                        None => deadline.as_mut().reset(now + self.idle_timeout),
                    }
                }
                changed = self.stop.changed(), if !draining => {
                    draining = true;
                    if changed.is_ok() {
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        }
    }
}
