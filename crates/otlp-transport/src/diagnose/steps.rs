//! The endpoint, DNS, TCP and OTLP probe steps of a diagnosis, and the
//! fixes they suggest.

use std::{net::SocketAddr, time::Duration};

use otlp_core::{Batch, Signal};
use tokio::{net::TcpStream, time::Instant};

use super::{Diagnosis, Step, StepKind, Verdict};
use crate::{
    ConnectStep, Exporter, Protocol, TlsConfig, TransportError,
    export::{connect, parse_endpoint},
};

/// The endpoint URL: its host and port, or a failed step.
pub(super) fn endpoint(
    d: &mut Diagnosis,
    endpoint: &str,
    protocol: Protocol,
    tls: &TlsConfig,
) -> Option<(http::Uri, String, u16)> {
    let parsed = parse_endpoint(endpoint, tls)
        .and_then(|uri| connect::host_port(&uri).map(|(host, port)| (uri, host, port)));
    let (uri, host, port) = match parsed {
        Ok(parts) => parts,
        Err(e) => {
            d.record(
                Step::new(StepKind::Endpoint, endpoint, Verdict::Fail, e.to_string())
                    .fix(endpoint_fix(&e)),
            );
            return None;
        }
    };
    let hint = crate::export::port_hint(&uri, protocol);
    let detail = format!("{uri} ({})", protocol.as_str());
    let step = if hint.is_empty() {
        Step::new(StepKind::Endpoint, endpoint, Verdict::Pass, detail)
    } else {
        Step::new(StepKind::Endpoint, endpoint, Verdict::Warn, detail)
            .fix(hint.trim().trim_matches(|c| c == '(' || c == ')'))
    };
    d.record(step);
    Some((uri, host, port))
}

/// Name resolution: every address, or a failed step.
pub(super) async fn dns(
    d: &mut Diagnosis,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Option<Vec<SocketAddr>> {
    let start = Instant::now();
    let step =
        |verdict, detail: String| Step::new(StepKind::Dns, host, verdict, detail).timed(start);
    match tokio::time::timeout(timeout, connect::resolve(host, port)).await {
        Ok(Ok(addrs)) => {
            let list: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
            d.record(step(
                Verdict::Pass,
                format!("resolved to {}", list.join(", ")),
            ));
            Some(addrs)
        }
        Ok(Err(e)) => {
            d.record(step(Verdict::Fail, e.to_string()).fix(
                "check the hostname for typos; in Kubernetes use <service>.<namespace>.svc.cluster.local; check /etc/resolv.conf",
            ));
            None
        }
        Err(_) => {
            d.record(
                step(Verdict::Fail, format!("no answer within {timeout:?}"))
                    .fix("the DNS server does not answer; check the resolver configuration"),
            );
            None
        }
    }
}

/// A TCP connect to each address, with its latency; the first connection
/// made, if any.
pub(super) async fn tcp(
    d: &mut Diagnosis,
    addrs: Vec<SocketAddr>,
    timeout: Duration,
) -> Option<TcpStream> {
    let mut reachable = None;
    for addr in addrs {
        let start = Instant::now();
        match connect::connect_tcp(addr, timeout, None, true).await {
            Ok(stream) => {
                d.record(Step::new(StepKind::Tcp, addr, Verdict::Pass, "connected").timed(start));
                reachable.get_or_insert(stream);
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
                d.record(
                    Step::new(StepKind::Tcp, addr, Verdict::Fail, e.to_string())
                        .timed(start)
                        .fix(fix),
                );
            }
        }
    }
    reachable
}

/// An empty export over `protocol`; a gRPC failure that looks like an
/// OTLP/HTTP server is confirmed with an OTLP/HTTP export before it is named.
pub(super) async fn probe(
    d: &mut Diagnosis,
    endpoint: &str,
    uri: &http::Uri,
    protocol: Protocol,
    tls: &TlsConfig,
    timeout: Duration,
) {
    let start = Instant::now();
    let e = match export_empty(endpoint, protocol, tls, timeout).await {
        Ok(resp) => {
            let said = if resp.message.is_empty() {
                String::new()
            } else {
                format!(": {}", resp.message)
            };
            let detail = format!("empty {} export accepted{said}", protocol.as_str());
            d.record(Step::new(StepKind::OtlpProbe, uri, Verdict::Pass, detail).timed(start));
            return;
        }
        Err(e) => e,
    };
    let mut detail = e.to_string();
    let mut fix = probe_fix(&e, protocol);
    if protocol == Protocol::Grpc && grpc_answered_by_plain_http(&e) {
        // Name the server only once the other protocol confirms it.
        if export_empty(endpoint, Protocol::HttpProtobuf, tls, timeout)
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
    d.record(
        Step::new(StepKind::OtlpProbe, uri, Verdict::Fail, detail)
            .timed(start)
            .fix(fix),
    );
}

/// The fix for gRPC sent to an OTLP/HTTP receiver.
const GRPC_ON_HTTP_FIX: &str = "this looks like an OTLP/HTTP server; use --protocol http/protobuf (config `protocol: http/protobuf`) or port 4317 for gRPC";

/// An empty traces export over `protocol`: a base URL gets `/v1/traces`, an
/// endpoint that already names a signal's path (a resolved per-signal URL) is
/// used as given.
async fn export_empty(
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
