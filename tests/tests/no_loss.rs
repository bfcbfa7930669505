//! "An acknowledged item is never lost without a counted reason", on the real
//! `otlp-client run` agent (issue 15): a full disk refuses instead of
//! acknowledging and dropping, one request is admitted whole or not at all,
//! empty envelopes are never forwarded, the default retries ride out an
//! outage, and an 8192-span request (the Collector's default batch) is taken.
//!
//! Each test ends with the agent's accounting identity read from `/metrics`:
//! accepted + recovered = sent + dropped + failed + queued, per signal.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::HashSet, net::SocketAddr, time::Duration};

use otlp_e2e::{
    Fault, FaultServer, Figures, Script,
    agent::{Agent, AgentConfig, post_to, spans},
    record,
};

const PB: &str = "application/x-protobuf";

/// Posts `body` to `/v1/traces`; returns the status and the answer text.
async fn post(addr: SocketAddr, body: &[u8]) -> (u16, String) {
    post_to(addr, "/v1/traces", "", PB, body).await
}

/// Waits (bounded) until the upstream accepted `n` items.
async fn delivered(server: &FaultServer, n: u64, limit: Duration) -> bool {
    server.wait_for_items(n, limit).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_with_503_instead_of_acknowledging_and_dropping() {
    let server = FaultServer::start(Script::accept().then_always(Fault::Unavailable))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = AgentConfig::new(server.grpc_endpoint());
    cfg.persistent = Some(dir.path().join("queue"));
    // The shipped overflow policy, a 256 KiB disk quota (64 KiB batches), and
    // the default retries (with the disk queue: never give up) sped up.
    cfg.disk_max_bytes = "256KiB".to_owned();
    cfg.batch = "  batch_timeout: 20ms\n  max_batch_bytes: 64KiB\n".to_owned();
    cfg.queue = "  max_bytes: 8MiB\n  overflow: drop_oldest\n".to_owned();
    cfg.retry = "  initial_backoff: 20ms\n  max_backoff: 200ms\n".to_owned();
    let agent = Agent::start(&cfg, dir.path(), "diskfull").unwrap();
    let (mut acked, mut refused) = (HashSet::new(), 0u64);
    let mut statuses = Vec::new();
    for r in 0..120u64 {
        let (status, text) = post(agent.http, &spans(r * 100, 100)).await;
        match status {
            200 => acked.extend(r * 100..r * 100 + 100),
            503 => {
                assert!(
                    text.to_ascii_lowercase().contains("retry-after"),
                    "503 without Retry-After: {text}"
                );
                refused += 100;
            }
            other => panic!("unexpected status {other}: {text}"),
        }
        statuses.push(status);
    }
    assert!(refused > 0, "a 256 KiB quota must fill: {statuses:?}");
    assert!(!acked.is_empty());
    // The upstream comes back: every acknowledged item arrives, no other.
    server.set_script(Script::accept());
    let ok = delivered(&server, acked.len() as u64, Duration::from_secs(60)).await;
    let a = agent
        .settled_account("traces", Duration::from_secs(10))
        .await;
    let got = server.span_ids();
    let lost = acked.iter().filter(|id| !got.contains(id)).count() as u64;
    let fs = server.stats();
    record(&Figures {
        suite: "no_loss",
        scenario: "disk_full_drop_oldest".into(),
        protocol: "http",
        expected: format!(
            "a full disk answers 503 + Retry-After (refused {refused}); every acknowledged item delivered; nothing dropped"
        ),
        sent: acked.len() as u64,
        delivered: fs.items_accepted,
        lost,
        duplicated: fs.duplicate_spans,
        dropped_or_failed: a.dropped + a.failed,
        cases: Some(120),
        ..Figures::default()
    });
    assert!(ok, "not delivered: {fs:?} {a:?}\n{}", agent.logs());
    assert_eq!(lost, 0);
    assert_eq!(a.dropped + a.failed, 0, "{a:?}");
    assert_eq!(a.refused, refused, "{a:?}");
    assert_eq!(
        fs.items_accepted,
        acked.len() as u64,
        "nothing unacknowledged: {fs:?}"
    );
    assert!(
        !agent.logs().contains("batch dropped"),
        "nothing acknowledged may be dropped:\n{}",
        agent.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_request_is_admitted_whole_or_not_at_all() {
    let server = FaultServer::start(Script::accept().then_always(Fault::Unavailable))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = AgentConfig::new(server.grpc_endpoint());
    // Batches of 64 KiB, so a large request is split into many parts.
    cfg.batch = "  batch_timeout: 20ms\n  max_batch_bytes: 64KiB\n".to_owned();
    cfg.queue = "  max_items: 4000\n  max_bytes: 64MiB\n  overflow: drop_newest\n".to_owned();
    cfg.retry = "  initial_backoff: 20ms\n  max_backoff: 200ms\n".to_owned();
    let agent = Agent::start(&cfg, dir.path(), "whole").unwrap();
    // Half full.
    let (s, t) = post(agent.http, &spans(0, 2000)).await;
    assert_eq!(s, 200, "{t}");
    // 2500 spans (~150 KiB, split into parts): the first ones would fit.
    let (s, t) = post(agent.http, &spans(100_000, 2500)).await;
    assert_eq!(s, 503, "{t}");
    let a = agent.account("traces").await;
    assert_eq!(
        a.accepted, 2000,
        "nothing of the refused request taken: {a:?}"
    );
    assert_eq!(a.refused, 2500, "{a:?}");
    server.set_script(Script::accept());
    let ok = delivered(&server, 2000, Duration::from_secs(30)).await;
    // The sender retries the refused request once there is room.
    let (s, t) = post(agent.http, &spans(100_000, 2500)).await;
    assert_eq!(s, 200, "{t}");
    let ok = ok && delivered(&server, 4500, Duration::from_secs(30)).await;
    let a = agent
        .settled_account("traces", Duration::from_secs(10))
        .await;
    let fs = server.stats();
    record(&Figures {
        suite: "no_loss",
        scenario: "split_request_half_full_queue".into(),
        protocol: "http",
        expected: "503 takes none of the request; its retry is delivered once".into(),
        sent: 4500,
        delivered: fs.items_accepted,
        lost: 4500u64.saturating_sub(fs.unique_spans),
        duplicated: fs.duplicate_spans,
        dropped_or_failed: a.dropped + a.failed,
        cases: Some(3),
        ..Figures::default()
    });
    assert!(ok, "{fs:?} {a:?}");
    assert_eq!(fs.duplicate_spans, 0, "the retry duplicated spans: {fs:?}");
    assert_eq!(fs.unique_spans, 4500, "{fs:?}");
    assert_eq!(a.accepted, 4500, "{a:?}");
    assert_eq!(a.sent, 4500, "{a:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_envelopes_are_acknowledged_and_never_forwarded() {
    let server = FaultServer::start(Script::accept()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = AgentConfig::new(server.grpc_endpoint());
    let agent = Agent::start(&cfg, dir.path(), "empty").unwrap();
    let json = "application/json";
    let cases: [(&str, &[u8]); 4] = [
        (json, b"{}"),
        (json, b"{\"resourceSpans\":[{\"scopeSpans\":[{}]}]}"),
        (PB, b""),
        (PB, b"\x0a\x02\x12\x00"),
    ];
    for (ct, body) in cases {
        let (s, t) = post_to(agent.http, "/v1/traces", "", ct, body).await;
        assert_eq!(s, 200, "{ct} {body:?}: {t}");
    }
    // Well past the 20 ms batch timeout: an empty batch would have gone out.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = server.stats();
    assert_eq!(
        (before.requests, before.items_accepted),
        (0, 0),
        "nothing is forwarded for empty envelopes: {before:?}"
    );
    // A real request afterwards proves the path works and flushes batches.
    assert_eq!(post(agent.http, &spans(0, 5)).await.0, 200);
    assert!(delivered(&server, 5, Duration::from_secs(10)).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fs = server.stats();
    let a = agent
        .settled_account("traces", Duration::from_secs(5))
        .await;
    record(&Figures {
        suite: "no_loss",
        scenario: "empty_envelopes".into(),
        protocol: "http",
        expected: "200 for {} and empty envelopes; the upstream sees only the real request".into(),
        sent: 5,
        delivered: fs.items_accepted,
        cases: Some(cases.len() as u64 + 1),
        ..Figures::default()
    });
    assert_eq!(
        fs.requests, 1,
        "only the real request goes upstream: {fs:?}"
    );
    assert_eq!(a.accepted, 5, "{a:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_retries_outlast_an_outage_and_a_given_up_batch_names_its_last_error() {
    // Down for 3 s with fast backoff (capped at 100 ms): some 30 attempts per
    // batch. The old default of 5 retries gave up after the sixth.
    let server =
        FaultServer::start(Script::accept().then_for(Fault::Unavailable, Duration::from_secs(3)))
            .await
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = AgentConfig::new(server.grpc_endpoint());
    cfg.retry = "  initial_backoff: 20ms\n  max_backoff: 100ms\n".to_owned();
    let agent = Agent::start(&cfg, dir.path(), "outage").unwrap();
    let mut acked = 0;
    for r in 0..10u64 {
        if post(agent.http, &spans(r * 50, 50)).await.0 == 200 {
            acked += 50;
        }
    }
    assert_eq!(acked, 500);
    let ok = delivered(&server, acked, Duration::from_secs(30)).await;
    let a = agent
        .settled_account("traces", Duration::from_secs(10))
        .await;
    let fs = server.stats();
    record(&Figures {
        suite: "no_loss",
        scenario: "default_retries_3s_outage".into(),
        protocol: "grpc",
        expected:
            "default retry settings (no count limit, 5 min) deliver everything after the outage"
                .into(),
        sent: acked,
        delivered: fs.items_accepted,
        lost: acked.saturating_sub(fs.unique_spans),
        duplicated: fs.duplicate_spans,
        dropped_or_failed: a.dropped + a.failed,
        ..Figures::default()
    });
    assert!(ok, "{fs:?} {a:?}\n{}", agent.logs());
    assert_eq!(a.failed + a.dropped, 0, "{a:?}");

    // With a limit set, a batch is given up, counted, and the WARN line says why.
    let server = FaultServer::start(Script::accept().then_always(Fault::Unavailable))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = AgentConfig::new(server.grpc_endpoint());
    cfg.retry = "  initial_backoff: 20ms\n  max_backoff: 100ms\n  max_elapsed: 500ms\n".to_owned();
    let agent = Agent::start(&cfg, dir.path(), "giveup").unwrap();
    assert_eq!(post(agent.http, &spans(0, 10)).await.0, 200);
    let a = agent
        .settled_account("traces", Duration::from_secs(20))
        .await;
    assert_eq!(a.failed, 10, "{a:?}");
    let logs = agent.logs();
    let line = logs
        .lines()
        .find(|l| l.contains("export given up"))
        .unwrap_or_else(|| panic!("no give-up line:\n{logs}"));
    assert!(line.contains("WARN"), "{line}");
    assert!(
        line.contains("last_error") && line.to_ascii_lowercase().contains("unavailable"),
        "the give-up line names the last error: {line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_8192_span_request_is_taken_by_default_and_a_refusal_names_the_setting_that_applies() {
    let server = FaultServer::start(Script::accept()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = AgentConfig::new(server.grpc_endpoint());
    // The shipped queue defaults (no max_items).
    cfg.queue = "  overflow: drop_oldest\n".to_owned();
    let agent = Agent::start(&cfg, dir.path(), "big").unwrap();
    let mut sent = 0;
    for (first, n) in [(0, 4097), (10_000, 8192)] {
        let (s, t) = post(agent.http, &spans(first, n)).await;
        assert_eq!(s, 200, "{n} spans: {t}");
        sent += n;
    }
    let ok = delivered(&server, sent, Duration::from_secs(30)).await;
    let a = agent
        .settled_account("traces", Duration::from_secs(10))
        .await;
    let fs = server.stats();
    record(&Figures {
        suite: "no_loss",
        scenario: "collector_default_batch_8192".into(),
        protocol: "http",
        expected: "4097- and 8192-span requests accepted with the default queue and delivered"
            .into(),
        sent,
        delivered: fs.items_accepted,
        lost: sent.saturating_sub(fs.unique_spans),
        duplicated: fs.duplicate_spans,
        dropped_or_failed: a.dropped + a.failed,
        cases: Some(2),
        ..Figures::default()
    });
    assert!(ok, "{fs:?}");
    assert_eq!(fs.unique_spans, sent);
    assert_eq!(a.sent, sent, "{a:?}");

    // A queue smaller than the request: 413 naming queue.max_items.
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = AgentConfig::new(server.grpc_endpoint());
    cfg.queue = "  max_items: 4096\n  overflow: drop_oldest\n".to_owned();
    let agent = Agent::start(&cfg, dir.path(), "small").unwrap();
    let (s, t) = post(agent.http, &spans(0, 8192)).await;
    assert_eq!(s, 413, "{t}");
    assert!(
        t.contains("queue.max_items"),
        "the hint names the setting: {t}"
    );
    assert!(!t.contains("raise queue.max_bytes"), "{t}");
}
