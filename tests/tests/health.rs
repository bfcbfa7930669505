//! Health that tells the truth during an outage (issue 17): with the
//! upstream down under load, `/health` turns 503 within 15 s of the first
//! failed attempt while `/health/ready` and `/health/live` stay 200 (the
//! queue has room; restarting or unlisting the agent would only lose data),
//! the attempt counters and the upstream-up gauge show the outage at once,
//! and when the upstream is back `/health` is 200 again and every
//! acknowledged span is delivered exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use otlp_e2e::{
    FaultServer, Script,
    agent::{Agent, AgentConfig, get, metric_sum, post, spans},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_shows_on_health_at_once_but_never_unreadies_or_kills_the_agent() {
    let sink = FaultServer::start(Script::accept()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = AgentConfig::new(sink.grpc_endpoint());
    // Retry for as long as the outage lasts, at most 1 s apart.
    cfg.retry = "  initial_backoff: 200ms\n  max_backoff: 1s\n  max_elapsed: 0\n".to_owned();
    // gzip upstream, as most deployments run: each batch is compressed once
    // and resent as it is by every retry of the outage.
    cfg.compression = "gzip";
    let agent = Agent::start(&cfg, dir.path(), "health").unwrap();
    let (http, admin) = (agent.http, agent.admin);

    // Load: 10 spans every 50 ms, each acknowledged request remembered.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let load = {
        let (stop, acked) = (stop.clone(), acked.clone());
        tokio::spawn(async move {
            let mut next = 1u64;
            while !stop.load(Ordering::SeqCst) {
                if post(http, "", "application/x-protobuf", &spans(next, 10)).await == 200 {
                    next += 10;
                    acked.store(next - 1, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    // Healthy while the upstream is up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(get(admin, "/health").await.0, 200);

    // Upstream down for 25 s.
    sink.go_down(Duration::from_secs(25));
    let down = Instant::now();
    let mut unhealthy_after = None;
    while down.elapsed() < Duration::from_secs(20) {
        let (live, _) = get(admin, "/health/live").await;
        let (ready, body) = get(admin, "/health/ready").await;
        assert_eq!(live, 200, "liveness failed during the outage");
        assert_eq!(ready, 200, "readiness failed during the outage: {body}");
        let (overall, body) = get(admin, "/health").await;
        if overall == 503 && unhealthy_after.is_none() {
            assert!(body.contains("collector is reachable"), "{body}");
            unhealthy_after = Some(down.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let after = unhealthy_after.expect("/health stayed 200 for 20 s of outage");
    assert!(
        after <= Duration::from_secs(15),
        "/health turned 503 after {after:?}"
    );
    // Two scrapes apart give the intake rate behind the absorbable gauge.
    let _ = agent.metrics().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let metrics = agent.metrics().await;
    // The backlog shows: the oldest waiting span is as old as the outage,
    // and the queue's room is a finite number of seconds at this intake.
    let oldest = metric_sum(&metrics, "otlp_queue_oldest_item_age_seconds", &["traces"]);
    assert!(
        (10..=30).contains(&oldest),
        "oldest item age {oldest}: {metrics}"
    );
    let absorbable = metric_sum(&metrics, "otlp_outage_absorbable_seconds", &[]);
    assert!(
        (1..1_000_000).contains(&absorbable),
        "absorbable {absorbable}: {metrics}"
    );
    assert!(
        metric_sum(
            &metrics,
            "otlp_export_attempts_total",
            &["traces", "retryable"]
        ) > 0,
        "{metrics}"
    );
    assert_eq!(
        metric_sum(&metrics, "otlp_exporter_up", &["traces"]),
        0,
        "{metrics}"
    );
    assert!(metric_sum(&metrics, "otlp_exporter_consecutive_failures", &[]) > 0);
    // Nothing is lost while the agent buffers.
    let (status, losses) = get(admin, "/debug/losses").await;
    assert_eq!(status, 200);
    assert!(losses.contains("\"losses\":[]"), "{losses}");
    // The adaptive limit in force is exported (it showed 0 before).
    assert!(
        metric_sum(&metrics, "otlp_concurrency_limit", &[]) >= 1,
        "{metrics}"
    );

    // Upstream back: healthy again, and every acknowledged span delivered once.
    let back = Instant::now();
    loop {
        if get(admin, "/health").await.0 == 200 && back.elapsed() > Duration::from_secs(5) {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(40),
            "/health did not recover after the upstream came back"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    stop.store(true, Ordering::SeqCst);
    load.await.unwrap();
    let last = acked.load(Ordering::SeqCst);
    let started = Instant::now();
    loop {
        let seen = sink.span_ids();
        let missing = (1..=last).filter(|i| !seen.contains(i)).count();
        if missing == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{missing} of {last} acknowledged spans not delivered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sink.stats().duplicate_spans, 0);
    // Every stage the agent path goes through was recorded for real.
    let (_, profile) = get(admin, "/debug/profile").await;
    let profile: serde_json::Value = serde_json::from_str(&profile).unwrap();
    for stage in ["queue_wait", "batch", "compress", "send", "retry_wait"] {
        let count = profile["stages"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["stage"] == stage))
            .and_then(|s| s["count"].as_u64())
            .unwrap_or(0);
        assert!(count > 0, "stage {stage} never recorded: {profile}");
    }
    let metrics = agent.metrics().await;
    assert_eq!(
        metric_sum(&metrics, "otlp_exporter_up", &["traces"]),
        1,
        "{metrics}"
    );
    // Everything delivered: nothing waits.
    assert_eq!(
        metric_sum(&metrics, "otlp_queue_oldest_item_age_seconds", &["traces"]),
        0,
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loss_is_readable_on_debug_losses_with_the_upstream_error() {
    use otlp_e2e::Fault;
    let sink = FaultServer::start(Script::accept().then_always(Fault::BadRequest))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = AgentConfig::new(sink.grpc_endpoint());
    let agent = Agent::start(&cfg, dir.path(), "losses").unwrap();
    assert_eq!(
        post(agent.http, "", "application/x-protobuf", &spans(1, 5)).await,
        200
    );
    let started = Instant::now();
    let body = loop {
        let (_, body) = get(agent.admin, "/debug/losses").await;
        if body.contains("permanent") {
            break body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no loss logged: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let loss = &v["losses"][0];
    assert_eq!(loss["signal"], "traces", "{body}");
    assert_eq!(loss["reason"], "permanent", "{body}");
    assert_eq!(loss["items"], 5, "{body}");
    assert!(
        !loss["cause"].as_str().unwrap_or("").is_empty(),
        "the upstream's error is named: {body}"
    );
}
