//! Test PKI (rcgen) and a TLS variant of the in-test peer.

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use otlp_test_support::Ca;
use rustls::{
    RootCertStore, ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _},
    server::WebPkiClientVerifier,
};
use tokio::{net::TcpListener, sync::mpsc};

use super::{Recorded, Responder};

/// A CA, a server certificate for `localhost`/127.0.0.1 and a client
/// certificate, written as PEM files in a temp dir.
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub server_cert: String,
    pub server_key: String,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Pki {
    /// Server cert valid for `names`.
    pub fn new(names: &[&str]) -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("otlp test ca");
        let server = ca.leaf(names, "otlp test server");
        let client = ca.leaf(&["client"], "otlp test client");
        let write = |name: &str, pem: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, pem).unwrap();
            p
        };
        Pki {
            ca: write("ca.pem", ca.pem()),
            client_cert: write("client.pem", &client.cert_pem),
            client_key: write("client.key", &client.key_pem),
            server_cert: server.cert_pem,
            server_key: server.key_pem,
            dir,
        }
    }

    /// The server's rustls config; `require_client_cert` turns on mTLS.
    pub fn server_config(&self, require_client_cert: bool, alpn: &[&[u8]]) -> Arc<ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(self.server_cert.as_bytes())
                .collect::<Result<_, _>>()
                .unwrap();
        let key = PrivateKeyDer::from_pem_slice(self.server_key.as_bytes()).unwrap();
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if require_client_cert {
            let mut roots = RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(&self.ca).unwrap() {
                roots.add(c.unwrap()).unwrap();
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let mut config = builder.with_single_cert(chain, key).unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

/// Like `serve`, behind TLS.
pub async fn serve_tls(
    h2: bool,
    config: Arc<ServerConfig>,
    responder: Responder,
) -> (SocketAddr, mpsc::Receiver<Recorded>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel(64);
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            let responder = responder.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper::service::service_fn(move |req| {
                    let tx = tx.clone();
                    let responder = responder.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(super::handle(req, tx, responder).await)
                    }
                });
                let mut builder = auto::Builder::new(TokioExecutor::new());
                builder = if h2 {
                    builder.http2_only()
                } else {
                    builder.http1_only()
                };
                let _ = builder.serve_connection(TokioIo::new(tls), svc).await;
            });
        }
    });
    (addr, rx)
}
