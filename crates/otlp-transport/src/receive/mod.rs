//! OTLP receivers: gRPC and HTTP servers that hand each received export
//! request to an inner `tower::Service<Batch>`.
//!
//! The agent is `receiver -> pipeline -> exporter`: a receiver decodes nothing
//! it does not have to (protobuf requests are only walked to count and
//! validate them; OTLP/JSON is re-encoded), applies [`ReceiverLimits`] that
//! hold under hostile input, and answers with the codes of the OTLP
//! specification, including back-pressure with a retry hint when the inner
//! service is not ready.
//!
//! Both receivers bind first ([`GrpcReceiver::bind`], [`HttpReceiver::bind`]),
//! which gives the local address (port 0 works), then
//! [`BoundReceiver::serve`] runs until a shutdown future resolves.
//!
//! With [`ReceiverTls`] (`with_tls` on either receiver, feature `tls`) a
//! receiver serves TLS, optionally requiring client certificates (mutual
//! TLS). Each connection's handshake runs on its own task, bounded by the
//! header read timeout; without feature `tls`, asking for TLS fails `bind`.

use std::{fmt, future::Future, net::SocketAddr};

use otlp_core::{Batch, Classify, ExportResponse};
use tokio::net::TcpListener;
use tower::Service;

#[cfg(any(
    feature = "http",
    all(feature = "grpc", any(feature = "gzip", feature = "zstd"))
))]
mod body;
mod budget;
mod dispatch;
mod error;
#[cfg(feature = "grpc")]
mod grpc;
#[cfg(feature = "http")]
mod http;
#[cfg(feature = "http-json")]
mod json;
mod limits;
mod serve;
mod tls;

#[cfg(feature = "grpc")]
pub use self::grpc::GrpcReceiver;
#[cfg(feature = "http")]
pub use self::http::{GetHandler, HttpReceiver};
pub use self::{
    budget::IntakeBudget, error::ReceiveError, limits::ReceiverLimits, tls::ReceiverTls,
};

/// Decodes one OTLP/JSON export request of `signal` (the body an OTLP/HTTP
/// JSON client posts, and one line of `otlp-client sink --output`) into an
/// encoded [`Batch`], by the HTTP receiver's own rules: every proto3 JSON
/// spelling (numbers as strings, `"NaN"` / `"Infinity"`, `null`, enum names,
/// snake_case keys) plus OTLP's hex ids, unknown fields ignored, then the
/// receiver's validation of the encoded request.
///
/// ```
/// use otlp_core::Signal;
///
/// let line = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"work"}]}]}]}"#;
/// let batch = otlp_transport::from_otlp_json(Signal::Traces, line).unwrap();
/// assert_eq!(batch.items(), 1);
/// assert!(otlp_transport::from_otlp_json(Signal::Traces, b"{").is_err());
/// ```
///
/// # Errors
///
/// A message naming what is malformed (with line and column for JSON
/// syntax), as the receiver would answer a client.
#[cfg(feature = "http-json")]
pub fn from_otlp_json(signal: otlp_core::Signal, json: &[u8]) -> Result<Batch, String> {
    self::json::to_batch(signal, json)
}

/// A receiver bound to its socket, ready to serve.
///
/// Made by [`GrpcReceiver::bind`] or [`HttpReceiver::bind`].
///
/// ```
/// # #[cfg(feature = "http")]
/// # {
/// use otlp_core::{Batch, Classify, ExportResponse, Retryability};
/// use otlp_transport::{HttpReceiver, ReceiverLimits};
///
/// #[derive(Debug)]
/// struct Full;
/// impl std::fmt::Display for Full {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("queue full")
///     }
/// }
/// impl Classify for Full {
///     fn classify(&self) -> Retryability {
///         Retryability::Retryable
///     }
/// }
///
/// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// # rt.block_on(async {
/// let sink = tower::service_fn(|_batch: Batch| async { Ok::<_, Full>(ExportResponse::success()) });
/// let bound = HttpReceiver::new(sink)
///     .with_limits(ReceiverLimits::new().with_max_connections(64))
///     .bind("127.0.0.1:0".parse()?)
///     .await?;
/// assert_ne!(bound.local_addr().port(), 0);
/// // Serve until the shutdown future resolves (here: at once).
/// bound.serve(std::future::ready(())).await;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct BoundReceiver<S> {
    listener: TcpListener,
    local_addr: SocketAddr,
    limits: ReceiverLimits,
    tls: Option<tls::Acceptor>,
    protocol: Protocol<S>,
}

#[derive(Debug)]
enum Protocol<S> {
    #[cfg(feature = "grpc")]
    Grpc(grpc::GrpcRouter<S>),
    #[cfg(feature = "http")]
    Http(http::HttpHandler<S>),
    #[cfg(not(any(feature = "grpc", feature = "http")))]
    #[allow(dead_code)] // Only there so `S` is used when no protocol is built in.
    None(std::marker::PhantomData<S>),
}

// === impl BoundReceiver ===

impl<S> BoundReceiver<S>
where
    S: Service<Batch, Response = ExportResponse> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Classify + fmt::Display + Send,
{
    #[cfg(feature = "grpc")]
    fn grpc(
        listener: TcpListener,
        local_addr: SocketAddr,
        limits: ReceiverLimits,
        tls: Option<tls::Acceptor>,
        router: grpc::GrpcRouter<S>,
    ) -> Self {
        Self {
            listener,
            local_addr,
            limits,
            tls,
            protocol: Protocol::Grpc(router),
        }
    }

    #[cfg(feature = "http")]
    fn http(
        listener: TcpListener,
        local_addr: SocketAddr,
        limits: ReceiverLimits,
        tls: Option<tls::Acceptor>,
        handler: http::HttpHandler<S>,
    ) -> Self {
        Self {
            listener,
            local_addr,
            limits,
            tls,
            protocol: Protocol::Http(handler),
        }
    }

    /// The address the receiver listens on (with the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Whether connections are served over TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets open
    /// connections finish their requests for up to the shutdown grace, and
    /// closes the rest. The gRPC receiver reports `NOT_SERVING` on its health
    /// service as shutdown begins.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future closes the listener; connections already accepted
    /// run to completion on their own tasks.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send) {
        let Self {
            listener,
            limits,
            tls,
            protocol,
            ..
        } = self;
        match protocol {
            #[cfg(feature = "grpc")]
            Protocol::Grpc(router) => {
                serve::serve(listener, limits, tls, true, router, shutdown).await
            }
            #[cfg(feature = "http")]
            Protocol::Http(handler) => {
                serve::serve(listener, limits, tls, false, handler, shutdown).await
            }
            #[cfg(not(any(feature = "grpc", feature = "http")))]
            Protocol::None(_) => {
                let _ = (listener, limits, tls);
                shutdown.await
            }
        }
    }
}
