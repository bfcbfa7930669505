//! Connectivity diagnosis for `otlp-client diagnose`: DNS, TCP per address,
//! TLS handshake, and an OTLP probe, each with a verdict and a fix.

use std::{fmt, time::Duration};

use otlp_core::{Batch, Signal};
use tokio::time::Instant;

use crate::{
    ConnectStep, Exporter, Protocol, TlsConfig, TransportError,
    export::{connect, parse_endpoint},
};

/// The result of [`diagnose`]: every step that ran, in order.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Diagnosis {
    /// The endpoint as given.
    pub endpoint: String,
    /// The protocol probed.
    pub protocol: Protocol,
    /// The steps, in the order they ran.
    pub steps: Vec<Step>,
}

/// One step of the diagnosis.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Step {
    /// What was checked.
    pub kind: StepKind,
    /// What it was checked against (host, address, endpoint).
    pub target: String,
    /// The outcome.
    pub verdict: Verdict,
    /// How long it took, in milliseconds.
    pub latency_ms: Option<f64>,
    /// What was observed.
    pub detail: String,
    /// What to do about it (absent when nothing needs doing).
    pub fix: Option<String>,
}

/// The kinds of step, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// The endpoint URL itself.
    Endpoint,
    /// Name resolution.
    Dns,
    /// TCP connect to one address.
    Tcp,
    /// TLS handshake.
    Tls,
    /// An empty OTLP export over the chosen protocol.
    OtlpProbe,
}

/// A step's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Works.
    Pass,
    /// Works, with something worth knowing.
    Warn,
    /// Fails; see the fix.
    Fail,
    /// Not run because an earlier step failed.
    Skipped,
}

/// Diagnoses the path to an OTLP endpoint.
///
/// Runs DNS (all addresses), a TCP connect per address with latency, the TLS
/// handshake for `https://` (certificate subject, issuer, expiry, name match),
/// and an empty export over `protocol`. Never fails: every problem is a step
/// with verdict [`Verdict::Fail`] and a fix.
///
/// # Cancel safety
///
/// Dropping the future abandons the probes; nothing is left running.
pub async fn diagnose(
    endpoint: &str,
    protocol: Protocol,
    tls: &TlsConfig,
    timeout: Duration,
) -> Diagnosis {
    let mut d = Diagnosis {
        endpoint: endpoint.to_owned(),
        protocol,
        steps: Vec::new(),
    };
    let uri = match parse_endpoint(endpoint, tls) {
        Ok(uri) => uri,
        Err(e) => {
            d.push(
                StepKind::Endpoint,
                endpoint,
                Verdict::Fail,
                None,
                e.to_string(),
                Some(endpoint_fix(&e)),
            );
            return d;
        }
    };
    let (host, port) = match connect::host_port(&uri) {
        Ok(hp) => hp,
        Err(e) => {
            d.push(
                StepKind::Endpoint,
                endpoint,
                Verdict::Fail,
                None,
                e.to_string(),
                Some(endpoint_fix(&e)),
            );
            return d;
        }
    };
    let hint = crate::export::port_hint(&uri, protocol);
    let verdict = if hint.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Warn
    };
    d.push(
        StepKind::Endpoint,
        endpoint,
        verdict,
        None,
        format!("{uri} ({})", protocol.as_str()),
        (!hint.is_empty()).then(|| {
            hint.trim()
                .trim_matches(|c| c == '(' || c == ')')
                .to_owned()
        }),
    );

    // DNS: every address.
    let start = Instant::now();
    let addrs = match tokio::time::timeout(timeout, connect::resolve(&host, port)).await {
        Ok(Ok(addrs)) => {
            let list: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
            d.push(
                StepKind::Dns,
                &host,
                Verdict::Pass,
                Some(start),
                format!("resolved to {}", list.join(", ")),
                None,
            );
            addrs
        }
        Ok(Err(e)) => {
            d.push(StepKind::Dns, &host, Verdict::Fail, Some(start), e.to_string(), Some(
                "check the hostname for typos; in Kubernetes use <service>.<namespace>.svc.cluster.local; check /etc/resolv.conf".into(),
            ));
            d.skip_rest(&uri, protocol);
            return d;
        }
        Err(_) => {
            d.push(
                StepKind::Dns,
                &host,
                Verdict::Fail,
                Some(start),
                format!("no answer within {timeout:?}"),
                Some("the DNS server does not answer; check the resolver configuration".into()),
            );
            d.skip_rest(&uri, protocol);
            return d;
        }
    };

    // TCP: each address.
    let mut reachable = None;
    for addr in addrs {
        let start = Instant::now();
        match connect::connect_tcp(addr, timeout, None, true).await {
            Ok(stream) => {
                d.push(
                    StepKind::Tcp,
                    &addr.to_string(),
                    Verdict::Pass,
                    Some(start),
                    "connected".into(),
                    None,
                );
                if reachable.is_none() {
                    reachable = Some(stream);
                }
            }
            Err(e) => {
                let fix = match e.connect_step() {
                    Some(ConnectStep::Refused) => {
                        "start the collector or fix the port (OTLP gRPC listens on 4317, OTLP/HTTP on 4318); check it binds 0.0.0.0, not 127.0.0.1"
                    }
                    Some(ConnectStep::ConnectTimeout) => {
                        "packets are dropped: check firewalls, security groups and Kubernetes NetworkPolicies, or raise the connect timeout"
                    }
                    _ => "check routing and firewalls towards this address",
                };
                d.push(
                    StepKind::Tcp,
                    &addr.to_string(),
                    Verdict::Fail,
                    Some(start),
                    e.to_string(),
                    Some(fix.into()),
                );
            }
        }
    }
    let Some(stream) = reachable else {
        d.skip_rest(&uri, protocol);
        return d;
    };

    // TLS.
    if uri.scheme_str() == Some("https") {
        if !d.tls_step(stream, &host, protocol, tls, timeout).await {
            d.push(
                StepKind::OtlpProbe,
                &uri.to_string(),
                Verdict::Skipped,
                None,
                "tls failed".into(),
                None,
            );
            return d;
        }
    } else {
        drop(stream);
    }

    // OTLP probe: an empty export request.
    let start = Instant::now();
    let result = probe(endpoint, protocol, tls, timeout).await;
    match result {
        Ok(resp) => d.push(
            StepKind::OtlpProbe,
            &uri.to_string(),
            Verdict::Pass,
            Some(start),
            format!(
                "empty {} export accepted{}",
                protocol.as_str(),
                if resp.message.is_empty() {
                    String::new()
                } else {
                    format!(": {}", resp.message)
                }
            ),
            None,
        ),
        Err(e) => {
            let mut detail = e.to_string();
            let mut fix = probe_fix(&e, protocol);
            if protocol == Protocol::Grpc && grpc_answered_by_plain_http(&e) {
                // Name the server only once the other protocol confirms it.
                if probe(endpoint, Protocol::HttpProtobuf, tls, timeout)
                    .await
                    .is_ok()
                {
                    detail = format!(
                        "protocol mismatch: an empty OTLP/HTTP export to this port was accepted, so it is an OTLP/HTTP server; the gRPC attempt got: {e}"
                    );
                    fix = GRPC_ON_HTTP_FIX.into();
                } else if protocol_mismatch_hint(&e).is_some() {
                    detail = format!(
                        "protocol mismatch: the server answered plain HTTP, not gRPC; the gRPC attempt got: {e}"
                    );
                    fix = "this port does not speak gRPC: use --protocol http/protobuf if it is an OTLP/HTTP receiver, or the collector's gRPC port 4317".into();
                }
            }
            d.push(
                StepKind::OtlpProbe,
                &uri.to_string(),
                Verdict::Fail,
                Some(start),
                detail,
                Some(fix),
            );
        }
    }
    d
}

/// The fix for gRPC sent to an OTLP/HTTP receiver.
const GRPC_ON_HTTP_FIX: &str = "this looks like an OTLP/HTTP server; use --protocol http/protobuf (config `protocol: http/protobuf`) or port 4317 for gRPC";

/// An empty traces export over `protocol`: a base URL gets `/v1/traces`, an
/// endpoint that already names a signal's path (a resolved per-signal URL) is
/// used as given.
async fn probe(
    endpoint: &str,
    protocol: Protocol,
    tls: &TlsConfig,
    timeout: Duration,
) -> Result<otlp_core::ExportResponse, TransportError> {
    let trimmed = endpoint.trim_end_matches('/');
    let has_signal_path = Signal::ALL.iter().any(|s| trimmed.ends_with(s.http_path()));
    let exporter = Exporter::builder()
        .with_endpoint(endpoint)
        .with_append_signal_path(!has_signal_path)
        .with_protocol(protocol)
        .with_tls(tls.clone())
        .with_timeout(timeout)
        .with_connect_timeout(timeout)
        .build()?;
    exporter.send(Batch::empty(Signal::Traces)).await
}

/// Whether a failed gRPC export shows that the peer answered plain HTTP, not
/// gRPC: it refused the HTTP/2 preface (an HTTP/1.1-only server), or it
/// answered over HTTP/2 without gRPC framing, so that the first byte of its
/// body was read as a gRPC compression flag (an OTLP/HTTP receiver's 404 to
/// the gRPC path).
fn grpc_answered_by_plain_http(e: &TransportError) -> bool {
    match e {
        TransportError::Connect {
            step: ConnectStep::ProtocolMismatch,
            ..
        } => true,
        TransportError::GrpcStatus {
            code: 13, message, ..
        } => {
            message.contains("invalid compression flag")
                && message.contains("while receiving response with status")
        }
        _ => false,
    }
}

/// A hint for an export error that shows a protocol mismatch the error's own
/// text does not name: gRPC sent to an HTTP server that answered over
/// HTTP/2 without gRPC framing (tonic reports it as `INTERNAL` "invalid
/// compression flag"). `None` for every other error, including the
/// mismatches the exporters already describe.
pub fn protocol_mismatch_hint(e: &TransportError) -> Option<&'static str> {
    match e {
        TransportError::GrpcStatus { .. } if grpc_answered_by_plain_http(e) => Some(
            "protocol mismatch: the server answered plain HTTP, not gRPC; this looks like an OTLP/HTTP server; use --protocol http/protobuf (config `protocol: http/protobuf`) or port 4317 for gRPC",
        ),
        _ => None,
    }
}

fn endpoint_fix(e: &TransportError) -> String {
    match e {
        TransportError::TlsFeatureDisabled { .. } => "rebuild with the `tls` feature, or use http:// if the collector really listens in plaintext".into(),
        _ => "write the endpoint as scheme://host:port, e.g. http://otel-collector:4317".into(),
    }
}

fn probe_fix(e: &TransportError, protocol: Protocol) -> String {
    match e {
        TransportError::Connect { step: ConnectStep::ProtocolMismatch, .. } => match protocol {
            Protocol::Grpc => "this port does not speak gRPC: use protocol http/protobuf, or the collector's gRPC port 4317".into(),
            _ => "this port does not speak OTLP/HTTP: use protocol grpc, or the collector's HTTP port 4318".into(),
        },
        TransportError::GrpcStatus { code: 12, .. } | TransportError::HttpStatus { status: 404, .. } => {
            "the server does not serve OTLP for traces here: enable the otlp receiver (and its traces pipeline) in the collector, or fix the URL path".into()
        }
        TransportError::GrpcStatus { code: 16, .. }
        | TransportError::HttpStatus { status: 401 | 403, .. } => {
            "the collector refuses our credentials: set the authorization header (OTEL_EXPORTER_OTLP_HEADERS)".into()
        }
        TransportError::Timeout { .. } => "the collector accepts connections but does not answer in time: check its load and logs, or raise the timeout".into(),
        _ => "see the detail; run the collector with debug logs to see why it refused the request".into(),
    }
}

// === impl Diagnosis ===

impl Diagnosis {
    /// Whether every step passed (warnings allowed).
    pub fn is_healthy(&self) -> bool {
        !self.steps.is_empty()
            && self
                .steps
                .iter()
                .all(|s| matches!(s.verdict, Verdict::Pass | Verdict::Warn))
    }

    /// The first failed step, if any.
    pub fn first_failure(&self) -> Option<&Step> {
        self.steps.iter().find(|s| s.verdict == Verdict::Fail)
    }

    /// The diagnosis as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    fn push(
        &mut self,
        kind: StepKind,
        target: &str,
        verdict: Verdict,
        start: Option<Instant>,
        detail: String,
        fix: Option<String>,
    ) {
        self.steps.push(Step {
            kind,
            target: target.to_owned(),
            verdict,
            latency_ms: start.map(|s| s.elapsed().as_secs_f64() * 1000.0),
            detail,
            fix,
        });
    }

    fn skip_rest(&mut self, uri: &http::Uri, _protocol: Protocol) {
        if uri.scheme_str() == Some("https") {
            self.push(
                StepKind::Tls,
                &uri.to_string(),
                Verdict::Skipped,
                None,
                "no connection".into(),
                None,
            );
        }
        self.push(
            StepKind::OtlpProbe,
            &uri.to_string(),
            Verdict::Skipped,
            None,
            "no connection".into(),
            None,
        );
    }

    #[cfg(feature = "tls")]
    async fn tls_step(
        &mut self,
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
        let config =
            match crate::export::tls::client_config_recording(tls, alpn, Some(seen.clone())) {
                Ok(c) => c,
                Err(e) => {
                    self.push(
                        StepKind::Tls,
                        host,
                        Verdict::Fail,
                        None,
                        e.to_string(),
                        Some("fix the tls file settings".into()),
                    );
                    return false;
                }
            };
        let Ok(name) = rustls::pki_types::ServerName::try_from(host.to_owned()) else {
            self.push(
                StepKind::Tls,
                host,
                Verdict::Fail,
                None,
                format!("'{host}' is not a valid tls server name"),
                None,
            );
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
                let mut verdict = Verdict::Pass;
                let mut fix = None;
                if protocol == Protocol::Grpc && alpn.as_deref() != Some("h2") {
                    verdict = Verdict::Warn;
                    fix = Some(
                        "the server did not negotiate HTTP/2 (ALPN h2); gRPC through it may fail"
                            .into(),
                    );
                }
                self.push(
                    StepKind::Tls,
                    host,
                    verdict,
                    Some(start),
                    format!(
                        "handshake ok, alpn {}; {info}",
                        alpn.unwrap_or_else(|| "none".into())
                    ),
                    fix,
                );
                true
            }
            Ok(Err(e)) => {
                let reason = crate::export::tls::describe_handshake_error(&e, host);
                self.push(
                    StepKind::Tls,
                    host,
                    Verdict::Fail,
                    Some(start),
                    format!("{reason}; {info}"),
                    Some(tls_fix(&reason)),
                );
                false
            }
            Err(_) => {
                self.push(
                    StepKind::Tls,
                    host,
                    Verdict::Fail,
                    Some(start),
                    format!("no tls answer within {timeout:?}"),
                    Some("the port may be plaintext: try http://".into()),
                );
                false
            }
        }
    }

    #[cfg(not(feature = "tls"))]
    async fn tls_step(
        &mut self,
        stream: tokio::net::TcpStream,
        host: &str,
        _protocol: Protocol,
        _tls: &TlsConfig,
        _timeout: Duration,
    ) -> bool {
        drop(stream);
        self.push(
            StepKind::Tls,
            host,
            Verdict::Fail,
            None,
            "built without the `tls` feature".into(),
            Some("rebuild otlp-transport with feature `tls`".into()),
        );
        false
    }
}

#[cfg(feature = "tls")]
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
#[cfg(feature = "tls")]
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

// === impl Step ===

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = match self.verdict {
            Verdict::Pass => "PASS",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
            Verdict::Skipped => "SKIP",
        };
        let kind = match self.kind {
            StepKind::Endpoint => "endpoint",
            StepKind::Dns => "dns",
            StepKind::Tcp => "tcp",
            StepKind::Tls => "tls",
            StepKind::OtlpProbe => "otlp",
        };
        write!(f, "[{verdict}] {kind:<8} {}", self.target)?;
        if let Some(ms) = self.latency_ms {
            write!(f, " ({ms:.1} ms)")?;
        }
        write!(f, "\n         {}", self.detail)?;
        if let Some(fix) = &self.fix {
            write!(f, "\n         fix: {fix}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "diagnosis of {} ({})",
            self.endpoint,
            self.protocol.as_str()
        )?;
        for step in &self.steps {
            writeln!(f, "{step}")?;
        }
        write!(
            f,
            "result: {}",
            if self.is_healthy() {
                "healthy"
            } else {
                "problems found"
            }
        )
    }
}
