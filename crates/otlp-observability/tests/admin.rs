#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The admin server on a real socket: promtool accepts `/metrics`, health
//! flips with the exporter, and the debug endpoints answer JSON.

use std::{
    io::Write as _,
    net::SocketAddr,
    process::{Command, Stdio},
    sync::Arc,
    time::Duration,
};

use otlp_core::{Classify, DropReason, FailReason, Observer, Payload, Retryability, Signal};
use otlp_observability::{
    AdminServer, AdminState, ExporterCheck, HealthChecker, LogRing, MetricsLayer, Probe,
    QueueCheck, RecoveryAction, SelfMetrics, Stage, StageProfiler,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::oneshot,
    task::JoinHandle,
};
use tower::{ServiceExt, service_fn};
use tower_layer::Layer;

struct Spans(Signal, u64);

impl Payload for Spans {
    fn items(&self) -> u64 {
        self.1
    }
    fn byte_size(&self) -> usize {
        100
    }
    fn label(&self) -> &'static str {
        self.0.as_str()
    }
}

#[derive(Debug)]
struct Unavailable;

impl Classify for Unavailable {
    fn classify(&self) -> Retryability {
        Retryability::Retryable
    }
}

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Server {
    async fn start(state: AdminState) -> Self {
        let bound = AdminServer::bind("127.0.0.1:0".parse().unwrap(), state)
            .await
            .unwrap();
        let addr = bound.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            bound
                .serve(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            addr,
            stop: Some(stop),
            task,
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("server stops within its grace")
            .unwrap();
    }
}

struct Reply {
    status: u16,
    headers: String,
    body: String,
}

/// One HTTP/1.1 request with `Connection: close`, read to the end.
async fn request(addr: SocketAddr, method: &str, path: &str, extra: &str) -> Reply {
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let req =
            format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{extra}\r\n");
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        let raw = String::from_utf8(raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        Reply {
            status,
            headers: head.to_ascii_lowercase(),
            body: body.to_owned(),
        }
    })
    .await
    .expect("admin server answers within 10 s")
}

fn promtool() -> String {
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("promtool"))
        .find(|p| p.is_file());
    match found {
        Some(p) => p.to_string_lossy().into_owned(),
        None => {
            panic!("promtool not found on PATH: install prometheus (apt-get install prometheus)")
        }
    }
}

async fn record_traffic(metrics: &Arc<SelfMetrics>) {
    let ok = MetricsLayer::new(metrics.clone())
        .layer(service_fn(|_: Spans| async { Ok::<_, Unavailable>(()) }));
    let failing = MetricsLayer::new(metrics.clone())
        .layer(service_fn(|_: Spans| async { Err::<(), _>(Unavailable) }));
    for signal in Signal::ALL {
        ok.clone().oneshot(Spans(signal, 10)).await.unwrap();
        failing
            .clone()
            .oneshot(Spans(signal, 10))
            .await
            .unwrap_err();
        metrics.accepted(signal, 30);
        metrics.sent(signal, 10);
        metrics.dropped(signal, DropReason::QueueFull, 5);
        metrics.failed(signal, FailReason::RetriesExhausted, 5);
        metrics.queue_depth(signal, 10, 1000);
        metrics.record_retry(signal);
        metrics.record_throttle(signal);
        metrics.record_partial_success(signal, 1);
    }
    metrics.set_queue_capacity(1000, 1 << 20);
    metrics.set_concurrency_limit(8);
    metrics.record_recovery(RecoveryAction::Reconnect, true);
    metrics.connection_opened();
}

#[tokio::test]
async fn promtool_accepts_the_metrics_of_a_server_with_traffic() {
    let promtool = promtool();
    let metrics = Arc::new(SelfMetrics::new());
    record_traffic(&metrics).await;
    let server = Server::start(AdminState::new(metrics.clone(), HealthChecker::new())).await;

    let reply = request(server.addr, "GET", "/metrics", "").await;
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .headers
            .contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
        "{}",
        reply.headers
    );
    assert!(
        reply
            .body
            .contains("otlp_requests_total{signal=\"logs\",outcome=\"ok\"} 1")
    );
    assert!(
        reply
            .body
            .contains("otlp_items_dropped_total{signal=\"traces\",reason=\"queue_full\"} 5")
    );

    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(reply.body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- exposition ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        reply.body
    );

    let om = request(
        server.addr,
        "GET",
        "/metrics",
        "Accept: application/openmetrics-text; version=1.0.0\r\n",
    )
    .await;
    assert_eq!(om.status, 200);
    assert!(
        om.headers
            .contains("content-type: application/openmetrics-text"),
        "{}",
        om.headers
    );
    assert!(om.body.ends_with("# EOF\n"));
    server.stop().await;
}

#[tokio::test]
async fn health_flips_to_503_when_the_exporter_fails_and_back_when_it_recovers() {
    let metrics = Arc::new(SelfMetrics::new());
    let exporter = metrics.exporter_health();
    let checker = HealthChecker::new()
        .with_check(ExporterCheck::new(exporter.clone()).with_max_consecutive_failures(3))
        .with_check(QueueCheck::from_metrics(metrics.clone()));
    let server = Server::start(AdminState::new(metrics.clone(), checker)).await;

    let healthy = request(server.addr, "GET", "/health", "").await;
    assert_eq!(healthy.status, 200, "{}", healthy.body);
    assert!(healthy.headers.contains("content-type: application/json"));

    let failing = MetricsLayer::new(metrics.clone())
        .layer(service_fn(|_: Spans| async { Err::<(), _>(Unavailable) }));
    for n in 1..=3 {
        failing
            .clone()
            .oneshot(Spans(Signal::Traces, 1))
            .await
            .unwrap_err();
        if n == 1 {
            // Degraded is still serving: the server follows the report's one decision.
            let degraded = request(server.addr, "GET", "/health", "").await;
            assert_eq!(degraded.status, 200, "{}", degraded.body);
            assert!(degraded.body.contains("\"degraded\""), "{}", degraded.body);
        }
    }
    let down = request(server.addr, "GET", "/health", "").await;
    assert_eq!(down.status, 503, "{}", down.body);
    let json: serde_json::Value = serde_json::from_str(&down.body).unwrap();
    assert_eq!(json["status"], "unhealthy");
    assert_eq!(json["checks"][0]["name"], "exporter");
    assert_eq!(json["checks"][0]["details"]["consecutive_failures"], 3);
    assert_eq!(json["checks"][1]["name"], "queue");
    assert_eq!(
        request(server.addr, "GET", "/health/ready", "")
            .await
            .status,
        503
    );
    // No liveness check is registered: the process is alive while unready.
    assert_eq!(
        request(server.addr, "GET", "/health/live", "").await.status,
        200
    );

    let ok = MetricsLayer::new(metrics.clone())
        .layer(service_fn(|_: Spans| async { Ok::<_, Unavailable>(()) }));
    ok.oneshot(Spans(Signal::Traces, 1)).await.unwrap();
    let back = request(server.addr, "GET", "/health", "").await;
    assert_eq!(back.status, 200, "{}", back.body);
    assert_eq!(
        request(server.addr, "GET", "/health/ready", "")
            .await
            .status,
        200
    );
    server.stop().await;
}

#[tokio::test]
async fn debug_endpoints_answer_json_and_other_methods_get_405() {
    let metrics = Arc::new(SelfMetrics::new());
    let ring = LogRing::new(16, 128);
    ring.push(tracing::Level::ERROR, "exporter", "connection refused");
    let profiler = StageProfiler::new();
    profiler.record(Stage::Encode, Duration::from_micros(40));
    let checker = HealthChecker::new().with_probe(
        Probe::Liveness,
        otlp_observability::MemoryCheck::with_reader(1, || Ok(2)),
    );
    let state = AdminState::new(metrics, checker)
        .with_logs(ring)
        .with_profiler(profiler);
    let server = Server::start(state).await;

    let logs = request(server.addr, "GET", "/debug/logs?limit=5", "").await;
    assert_eq!(logs.status, 200);
    let json: serde_json::Value = serde_json::from_str(&logs.body).unwrap();
    assert_eq!(json["analysis"]["by_level"]["error"], 1);
    assert_eq!(json["events"][0]["message"], "connection refused");

    let profile = request(server.addr, "GET", "/debug/profile", "").await;
    let json: serde_json::Value = serde_json::from_str(&profile.body).unwrap();
    assert_eq!(json["stages"][2]["stage"], "encode");
    assert_eq!(json["stages"][2]["count"], 1);
    let text = request(server.addr, "GET", "/debug/profile?format=text", "").await;
    assert!(text.body.contains("encode"));

    assert_eq!(
        request(server.addr, "GET", "/health/live", "").await.status,
        503
    );
    let post = request(server.addr, "POST", "/metrics", "Content-Length: 0\r\n").await;
    assert_eq!(post.status, 405);
    assert!(post.headers.contains("allow: get, head"));
    assert_eq!(request(server.addr, "GET", "/nope", "").await.status, 404);
    server.stop().await;
}

#[tokio::test]
async fn binding_a_taken_port_names_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let state = AdminState::new(Arc::new(SelfMetrics::new()), HealthChecker::new());
    let err = AdminServer::bind(addr, state).await.unwrap_err();
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}
