//! The accept loop both receivers share: connection limit, TLS handshake
//! (on the connection's task, bounded), first-request deadline, HTTP/1
//! header read timeout, and graceful shutdown.

use std::{
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
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

/// Pause after a failed `accept` (for example too many open files) before trying again.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

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
        .max_concurrent_streams(u32::try_from(limits.max_concurrent_requests()).unwrap_or(u32::MAX))
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
    tokio::pin!(shutdown);

    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed; retrying shortly");
                        tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
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
    stop: tokio::sync::watch::Receiver<bool>,
    peer: SocketAddr,
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
        let started = Arc::new(AtomicBool::new(false));
        let svc = {
            let started = started.clone();
            let handler = self.handler.clone();
            hyper::service::service_fn(move |req: Request<Incoming>| {
                started.store(true, Ordering::Relaxed);
                let fut = handler.handle(req);
                async move { Ok::<_, Infallible>(fut.await) }
            })
        };
        let conn = self.builder.serve_connection(TokioIo::new(stream), svc);
        tokio::pin!(conn);
        // HTTP/1 enforces the header read timeout itself; HTTP/2 has no such
        // timer, so a connection must deliver its first request in time.
        // `select!` reads a branch's condition only when it starts waiting,
        // so the deadline stays armed until it fires and is disarmed there
        // when a request has begun (it used to cut busy connections).
        let deadline = tokio::time::sleep(self.first_request_deadline);
        tokio::pin!(deadline);
        let mut armed = true;
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
                () = &mut deadline, if armed => {
                    armed = false;
                    if started.load(Ordering::Relaxed) {
                        continue;
                    }
                    tracing::debug!(peer = %self.peer, timeout = ?self.first_request_deadline, "closing connection: no complete request headers in time");
                    return;
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
