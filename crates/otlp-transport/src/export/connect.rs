//! The connector both exporters dial with: DNS, TCP (connect timeout,
//! keepalive, nodelay) and, for `https://`, a rustls handshake. Each failure
//! names its step (see [`ConnectStep`]).

use std::{
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use http::Uri;
use hyper_util::{
    client::legacy::connect::{Connected, Connection},
    rt::TokioIo,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpSocket, TcpStream},
};

use crate::{ConnectStep, TransportError};

/// How to dial.
#[derive(Clone, Debug)]
pub(crate) struct Connector {
    pub(crate) connect_timeout: Duration,
    pub(crate) keepalive: Option<Duration>,
    pub(crate) nodelay: bool,
    /// Set for `https://` endpoints; never absent for them.
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

/// A connected stream, plaintext or TLS.
#[derive(Debug)]
pub(crate) enum Stream {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// A connection as hyper wants it.
#[derive(Debug)]
pub(crate) struct Conn {
    io: TokioIo<Stream>,
    h2: bool,
}

/// Host and port of a URI, with the scheme's default port.
pub(crate) fn host_port(uri: &Uri) -> Result<(String, u16), TransportError> {
    let host = uri.host().ok_or_else(|| TransportError::InvalidEndpoint {
        endpoint: uri.to_string(),
        reason: "missing host, use e.g. http://collector:4317".into(),
    })?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    Ok((host, port))
}

/// Resolves `host:port` to every address (the DNS step).
pub(crate) async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, TransportError> {
    let endpoint = format!("{host}:{port}");
    match tokio::net::lookup_host((host, port)).await {
        Ok(addrs) => {
            let addrs: Vec<_> = addrs.collect();
            if addrs.is_empty() {
                Err(TransportError::Connect {
                    endpoint,
                    step: ConnectStep::Dns,
                    detail: format!("'{host}' resolved to no address; check the DNS record"),
                })
            } else {
                Ok(addrs)
            }
        }
        Err(e) => Err(TransportError::Connect {
            endpoint,
            step: ConnectStep::Dns,
            detail: format!(
                "cannot resolve '{host}': {e}; check the hostname (in Kubernetes use <service>.<namespace>.svc) and the DNS server"
            ),
        }),
    }
}

/// One TCP connect attempt with timeout, keepalive and nodelay.
pub(crate) async fn connect_tcp(
    addr: SocketAddr,
    timeout: Duration,
    keepalive: Option<Duration>,
    nodelay: bool,
) -> Result<TcpStream, TransportError> {
    let endpoint = addr.to_string();
    let tcp_err = |e: io::Error| {
        let (step, detail) = match e.kind() {
            io::ErrorKind::ConnectionRefused => (
                ConnectStep::Refused,
                format!(
                    "connection refused by {addr}: nothing listens there; is the collector running and is the port right (OTLP gRPC 4317, OTLP/HTTP 4318)?"
                ),
            ),
            _ => (
                ConnectStep::Tcp,
                format!("{e}; check routing, firewalls and network policies towards {addr}"),
            ),
        };
        TransportError::Connect {
            endpoint: endpoint.clone(),
            step,
            detail,
        }
    };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(tcp_err)?;
    if let Some(idle) = keepalive {
        let sock = socket2::SockRef::from(&socket);
        let ka = socket2::TcpKeepalive::new()
            .with_time(idle)
            .with_interval(idle);
        sock.set_tcp_keepalive(&ka).map_err(tcp_err)?;
    }
    let stream = match tokio::time::timeout(timeout, socket.connect(addr)).await {
        Ok(r) => r.map_err(tcp_err)?,
        Err(_) => {
            return Err(TransportError::Connect {
                endpoint,
                step: ConnectStep::ConnectTimeout,
                detail: format!(
                    "no answer from {addr} within {timeout:?}; a firewall may drop packets, or the address is wrong"
                ),
            });
        }
    };
    stream.set_nodelay(nodelay).map_err(tcp_err)?;
    Ok(stream)
}

// === impl Connector ===

impl Connector {
    /// Dials the URI: DNS, TCP on each address in turn, then TLS for https.
    pub(crate) async fn connect(self, uri: Uri) -> Result<Conn, TransportError> {
        let (host, port) = host_port(&uri)?;
        let addrs = resolve(&host, port).await?;
        let mut last = None;
        let mut tcp = None;
        for addr in addrs {
            match connect_tcp(addr, self.connect_timeout, self.keepalive, self.nodelay).await {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let Some(tcp) = tcp else {
            return Err(last.unwrap_or(TransportError::Connect {
                endpoint: format!("{host}:{port}"),
                step: ConnectStep::Dns,
                detail: "no address to connect to".into(),
            }));
        };
        if uri.scheme_str() == Some("https") {
            #[cfg(feature = "tls")]
            {
                let Some(config) = self.tls.clone() else {
                    return Err(TransportError::TlsFeatureDisabled {
                        endpoint: uri.to_string(),
                    });
                };
                return tls_handshake(config, tcp, &host, port).await;
            }
            #[cfg(not(feature = "tls"))]
            {
                drop(tcp);
                return Err(TransportError::TlsFeatureDisabled {
                    endpoint: uri.to_string(),
                });
            }
        }
        Ok(Conn {
            io: TokioIo::new(Stream::Plain(tcp)),
            h2: false,
        })
    }
}

#[cfg(feature = "tls")]
async fn tls_handshake(
    config: std::sync::Arc<rustls::ClientConfig>,
    tcp: TcpStream,
    host: &str,
    port: u16,
) -> Result<Conn, TransportError> {
    let endpoint = format!("{host}:{port}");
    let name = rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|e| {
        TransportError::InvalidEndpoint {
            endpoint: endpoint.clone(),
            reason: format!("'{host}' is not a valid tls server name: {e}"),
        }
    })?;
    let connector = tokio_rustls::TlsConnector::from(config);
    match connector.connect(name, tcp).await {
        Ok(tls) => {
            let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
            Ok(Conn {
                io: TokioIo::new(Stream::Tls(Box::new(tls))),
                h2,
            })
        }
        Err(e) => Err(TransportError::Connect {
            endpoint,
            step: ConnectStep::TlsHandshake,
            detail: super::tls::describe_handshake_error(&e, host),
        }),
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = Conn;
    type Error = TransportError;
    type Future = Pin<Box<dyn Future<Output = Result<Conn, TransportError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        Box::pin(self.clone().connect(uri))
    }
}

// === impl Stream ===

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }
}

// === impl Conn ===

impl hyper::rt::Read for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        let connected = Connected::new();
        if self.h2 {
            connected.negotiated_h2()
        } else {
            connected
        }
    }
}

/// Finds our own connection error in an error's source chain (tonic and hyper
/// wrap connector errors).
pub(crate) fn find_transport_error<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a TransportError> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(t) = e.downcast_ref::<TransportError>() {
            return Some(t);
        }
        cur = e.source();
    }
    None
}

/// The whole source chain as one line.
pub(crate) fn chain_text(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}
