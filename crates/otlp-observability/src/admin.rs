//! The admin HTTP server: `/health`, `/health/live`, `/health/ready`,
//! `/metrics`, `/debug/logs` and `/debug/profile`.
//!
//! It runs on hyper 1 (HTTP/1.1 only), answers `GET` and `HEAD` and nothing
//! else, bounds header size and header read time, and caps its concurrent
//! connections, so a misbehaving scraper cannot exhaust the process.

use std::{
    convert::Infallible,
    future::Future,
    net::{Ipv4Addr, SocketAddr, SocketAddrV4},
    sync::Arc,
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
};
use tokio::{net::TcpListener, sync::Semaphore};

use crate::{
    HealthChecker, HealthReport, LogRing, OPENMETRICS_CONTENT_TYPE, ObservabilityError,
    PROMETHEUS_TEXT_CONTENT_TYPE, SelfMetrics, StageProfiler,
};

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
    /// Default time a client has to send its request headers.
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
    /// Default cap on concurrent connections.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 64;
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

    /// Caps concurrent connections (at least 1); more wait in the backlog.
    pub fn with_max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
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
    /// Accept errors (such as running out of file descriptors) are logged and
    /// retried after a short pause rather than ending the server.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future closes the listener; connections already accepted
    /// run on their own tasks until their clients leave.
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
        let graceful = GracefulShutdown::new();
        let limit = Arc::new(Semaphore::new(config.max_connections));
        tokio::pin!(shutdown);
        tracing::info!(addr = %local_addr, "admin server listening");
        loop {
            let permit = tokio::select! {
                () = &mut shutdown => break,
                permit = limit.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            let stream = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _peer)) => stream,
                    Err(e) => {
                        tracing::warn!(addr = %local_addr, error = %e, "admin server: accept failed, retrying");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let state = state.clone();
            let service = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(route(&state, &req).await) }
            });
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(config.header_read_timeout)
                .max_buf_size(AdminServer::MAX_REQUEST_HEAD);
            let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
            tokio::spawn(async move {
                let _ = conn.await;
                drop(permit);
            });
        }
        drop(listener);
        tokio::select! {
            () = graceful.shutdown() => {}
            () = tokio::time::sleep(config.shutdown_grace) => {
                tracing::warn!(addr = %local_addr, "admin server: connections still open after the shutdown grace");
            }
        }
        Ok(())
    }
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
        "/" => text(
            StatusCode::OK,
            "/health /health/live /health/ready /metrics /debug/logs /debug/losses /debug/profile\n",
        ),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found; see / for the endpoints\n",
        ),
    }
}

fn health(report: HealthReport) -> Response<Full<Bytes>> {
    let status = if report.status.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
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
