#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The agent (`otlp-client run`) serving its receivers over TLS and mutual
//! TLS (`receivers.tls`): `otlp-client send` and the official OpenTelemetry
//! Python gRPC exporter deliver through it with the test CA; a client without
//! a certificate is refused under mTLS. Real processes, 127.0.0.1 only,
//! certificates made by rcgen in the test, bounded waits.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use otlp_test_support::Ca;

mod common;

use common::*;

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files.
struct Pki {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

impl Pki {
    fn new(dir: &Path) -> Self {
        let ca = Ca::new("agent tls test ca");
        let server = ca.leaf(&["127.0.0.1", "localhost"], "agent tls test server");
        let client = ca.leaf(&["client"], "agent tls test client");
        let write = |name: &str, pem: &str| {
            let p = dir.join(name);
            std::fs::write(&p, pem).unwrap();
            p
        };
        Pki {
            ca: write("ca.pem", ca.pem()),
            server_cert: write("server.pem", &server.cert_pem),
            server_key: write("server.key", &server.key_pem),
            client_cert: write("client.pem", &client.cert_pem),
            client_key: write("client.key", &client.key_pem),
        }
    }
}

/// Starts the agent with receiver TLS (and mTLS when `mtls`), forwarding to
/// `upstream`; returns it with its gRPC and HTTP addresses once
/// `/health/live` answers on the plaintext admin port.
fn agent(upstream: &str, dir: &Path, pki: &Pki, mtls: bool) -> (Proc, String, String) {
    let client_ca = if mtls {
        format!("    client_ca_file: {}\n", pki.ca.display())
    } else {
        String::new()
    };
    let tls = format!(
        "  tls:\n    cert_file: {}\n    key_file: {}\n{client_ca}",
        pki.server_cert.display(),
        pki.server_key.display(),
    );
    let a = start_agent(upstream, dir, &tls);
    (a.proc, a.grpc, a.http)
}

/// `otlp-client send` of `count` spans to `endpoint` trusting the test CA,
/// with the client certificate when `client_cert`.
fn send(
    endpoint: &str,
    protocol: &str,
    pki: &Pki,
    client_cert: bool,
    count: u32,
) -> (bool, String) {
    let mut cmd = bin();
    cmd.args([
        "send",
        "--endpoint",
        endpoint,
        "--protocol",
        protocol,
        "--count",
        &count.to_string(),
    ])
    .env("OTEL_EXPORTER_OTLP_CERTIFICATE", &pki.ca);
    if let Some(dir) = pki.ca.parent() {
        // One quick retry: a refused handshake fails the same way every time.
        let config = dir.join("send.yaml");
        std::fs::write(
            &config,
            "retry:\n  max_retries: 1\n  initial_backoff: 100ms\n  max_elapsed: 2s\n",
        )
        .unwrap();
        cmd.arg("--config").arg(config);
    }
    if client_cert {
        cmd.env("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", &pki.client_cert)
            .env("OTEL_EXPORTER_OTLP_CLIENT_KEY", &pki.client_key);
    }
    let out = run(&mut cmd, Duration::from_secs(60));
    (out.status.success(), text(&out))
}

#[test]
fn agent_serves_tls_on_both_receivers_and_forwards_everything() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let sink = Sink::start();
    let (_agent, grpc, http) = agent(&sink.grpc, dir.path(), &pki, false);
    let (ok, out) = send(&format!("https://{grpc}"), "grpc", &pki, false, 300);
    assert!(ok, "send over grpc+tls failed:\n{out}");
    let (ok, out) = send(
        &format!("https://{http}"),
        "http/protobuf",
        &pki,
        false,
        200,
    );
    assert!(ok, "send over https failed:\n{out}");
    let stats = sink.wait_for((500, 0, 0));
    assert_eq!(stats["spans"], 500, "{stats}");

    // A plaintext sender to the TLS port is refused, not served.
    let (ok, out) = send(&format!("http://{http}"), "http/protobuf", &pki, false, 10);
    assert!(!ok, "plaintext send to the tls port succeeded:\n{out}");
    let stats = sink.wait_for((500, 0, 0));
    assert_eq!(stats["spans"], 500, "{stats}");
}

#[test]
fn agent_with_client_ca_refuses_clients_without_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let sink = Sink::start();
    let (_agent, grpc, _http) = agent(&sink.grpc, dir.path(), &pki, true);
    let (ok, out) = send(&format!("https://{grpc}"), "grpc", &pki, false, 10);
    assert!(!ok, "send without a client certificate succeeded:\n{out}");
    let (ok, out) = send(&format!("https://{grpc}"), "grpc", &pki, true, 40);
    assert!(ok, "send with the signed client certificate failed:\n{out}");
    let stats = sink.wait_for((40, 0, 0));
    assert_eq!(stats["spans"], 40, "{stats}");
}

#[test]
fn python_grpc_exporter_delivers_over_tls_with_the_ca_as_root() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let sink = Sink::start();
    let (_agent, grpc, _http) = agent(&sink.grpc, dir.path(), &pki, false);
    // The official exporter with TLS (insecure=False) and our CA as its root.
    let script = r#"
import sys
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

endpoint, ca = sys.argv[1], sys.argv[2]
from grpc import ssl_channel_credentials
with open(ca, "rb") as f:
    creds = ssl_channel_credentials(root_certificates=f.read())
exporter = OTLPSpanExporter(endpoint=endpoint, insecure=False, credentials=creds, timeout=20)
memory = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(memory))
tracer = provider.get_tracer("tls.interop")
for i in range(3):
    with tracer.start_as_current_span("span-%d" % i):
        pass
result = exporter.export(memory.get_finished_spans())
print("export", result.name)
sys.exit(0 if result == SpanExportResult.SUCCESS else 1)
"#;
    let out = run(
        Command::new(python())
            .args(["-c", script, &format!("https://{grpc}")])
            .arg(&pki.ca),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "python gRPC export over TLS failed:\n{}",
        text(&out)
    );
    let stats = sink.wait_for((3, 0, 0));
    assert_eq!(stats["spans"], 3, "{stats}");
}

#[test]
fn validate_config_names_a_missing_receiver_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let config = dir.path().join("c.yaml");
    std::fs::write(
        &config,
        format!(
            "receivers:\n  grpc: 127.0.0.1:4317\n  tls:\n    cert_file: {}\n    key_file: {}/absent.key\n",
            pki.server_cert.display(),
            dir.path().display()
        ),
    )
    .unwrap();
    let out = run(
        bin().arg("validate-config").arg(&config),
        Duration::from_secs(30),
    );
    let text = text(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("receivers.tls.key_file"), "{text}");
    assert!(text.contains("absent.key"), "{text}");
}
