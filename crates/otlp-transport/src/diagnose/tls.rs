//! The TLS step of a diagnosis (feature `tls`): the handshake with the
//! collector's certificate described (subject, issuer, expiry, name match)
//! and a fix for each kind of handshake failure.

use std::time::Duration;

use tokio::time::Instant;

use super::{Diagnosis, Step, StepKind, Verdict};
use crate::{Protocol, TlsConfig};

/// The TLS handshake over `stream`; whether it succeeded.
pub(super) async fn handshake(
    d: &mut Diagnosis,
    stream: tokio::net::TcpStream,
    host: &str,
    protocol: Protocol,
    tls: &TlsConfig,
    timeout: Duration,
) -> bool {
    use std::sync::{Arc, Mutex};

    let start = Instant::now();
    let seen: crate::export::tls::SeenCert = Arc::new(Mutex::new(None));
    let alpn: &[&[u8]] = if protocol == Protocol::Grpc {
        &[b"h2"]
    } else {
        &[b"http/1.1"]
    };
    let fail = |detail: String| Step::new(StepKind::Tls, host, Verdict::Fail, detail);
    let config = match crate::export::tls::client_config_recording(tls, alpn, Some(seen.clone())) {
        Ok(c) => c,
        Err(e) => {
            d.record(fail(e.to_string()).fix("fix the tls file settings"));
            return false;
        }
    };
    let Ok(name) = rustls::pki_types::ServerName::try_from(host.to_owned()) else {
        d.record(fail(format!("'{host}' is not a valid tls server name")));
        return false;
    };
    let connector = tokio_rustls::TlsConnector::from(config);
    let result = tokio::time::timeout(timeout, connector.connect(name, stream)).await;
    let cert = seen.lock().ok().and_then(|g| g.clone());
    let info = cert
        .as_ref()
        .map(|c| describe_cert(c, host))
        .unwrap_or_default();
    match result {
        Ok(Ok(conn)) => {
            let alpn = conn
                .get_ref()
                .1
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned());
            let h2 = alpn.as_deref() == Some("h2");
            let detail = format!(
                "handshake ok, alpn {}; {info}",
                alpn.as_deref().unwrap_or("none")
            );
            let step = if protocol == Protocol::Grpc && !h2 {
                Step::new(StepKind::Tls, host, Verdict::Warn, detail)
                    .fix("the server did not negotiate HTTP/2 (ALPN h2); gRPC through it may fail")
            } else {
                Step::new(StepKind::Tls, host, Verdict::Pass, detail)
            };
            d.record(step.timed(start));
            true
        }
        Ok(Err(e)) => {
            let reason = crate::export::tls::describe_handshake_error(&e, host);
            d.record(
                fail(format!("{reason}; {info}"))
                    .timed(start)
                    .fix(tls_fix(&reason)),
            );
            false
        }
        Err(_) => {
            d.record(
                fail(format!("no tls answer within {timeout:?}"))
                    .timed(start)
                    .fix("the port may be plaintext: try http://"),
            );
            false
        }
    }
}

fn tls_fix(reason: &str) -> String {
    if reason.contains("unknown CA") {
        "set tls ca_file (OTEL_EXPORTER_OTLP_CERTIFICATE) to the CA that signed the collector's certificate".into()
    } else if reason.contains("name mismatch") {
        "connect with a hostname listed in the certificate's subject alternative names, or reissue the certificate".into()
    } else if reason.contains("expired") {
        "renew the collector's certificate (cert-manager: check the Certificate resource)".into()
    } else if reason.contains("mutual TLS") || reason.contains("mTLS") {
        "set tls cert_file and key_file to a client certificate the collector trusts".into()
    } else {
        "check the collector's tls settings and that this port speaks TLS".into()
    }
}

/// Subject, issuer, expiry and name match of a certificate, in one line.
fn describe_cert(der: &rustls::pki_types::CertificateDer<'_>, host: &str) -> String {
    use x509_parser::prelude::{FromDer as _, GeneralName, X509Certificate};
    let Ok((_, cert)) = X509Certificate::from_der(der.as_ref()) else {
        return "server certificate could not be parsed".into();
    };
    let names: Vec<String> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some((*d).to_owned()),
                    GeneralName::IPAddress(ip) => match ip.len() {
                        4 => Some(std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]).to_string()),
                        _ => None,
                    },
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let matches = names.iter().any(|n| {
        n == host
            || (n.starts_with("*.")
                && host
                    .split_once('.')
                    .is_some_and(|(_, rest)| rest == &n[2..]))
    });
    format!(
        "certificate subject '{}', issuer '{}', expires {}, names [{}] {} '{host}'",
        cert.subject(),
        cert.issuer(),
        cert.validity().not_after,
        names.join(", "),
        if matches { "match" } else { "do not match" },
    )
}
