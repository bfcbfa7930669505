//! The `otlp-client run` agent under valgrind memcheck: a short bounded load,
//! a clean stop, and no definite leak.
//!
//! Valgrind slows the agent some 30-fold, so this target is not part of
//! `cargo test` / `cargo nextest run` (`test = false` in Cargo.toml): it
//! runs only when named, `cargo test -p otlp-e2e --test valgrind`, which
//! `cargo xtask reliability` does in full mode. When it runs it always checks
//! (a missing valgrind is a failure, never a silent pass).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    process::Command,
    time::{Duration, Instant},
};

use otlp_e2e::{
    FaultServer, Figures, Script,
    agent::{Agent, AgentConfig, post, spans_with},
    record,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_under_valgrind_reports_no_definite_leaks() {
    let valgrind = Command::new("valgrind").arg("--version").output();
    assert!(
        valgrind.is_ok_and(|o| o.status.success()),
        "valgrind is missing: install it (apt-get install valgrind) to run the leak check"
    );
    let server = FaultServer::start(Script::accept()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = AgentConfig::new(server.grpc_endpoint());
    let vlog = dir.path().join("valgrind.txt");
    let wrapper = vec![
        "valgrind".to_owned(),
        "--leak-check=full".to_owned(),
        "--errors-for-leak-kinds=definite".to_owned(),
        "--show-leak-kinds=definite".to_owned(),
        // A leak check: the undefined-value checker reports false positives
        // in optimised dependency code (tower's buffer worker), so it is off.
        "--undef-value-errors=no".to_owned(),
        "--error-exitcode=99".to_owned(),
        format!("--log-file={}", vlog.display()),
    ];
    let mut agent = Agent::start_wrapped(
        &cfg,
        dir.path(),
        "valgrind",
        &wrapper,
        Duration::from_secs(120),
    )
    .unwrap();
    // A short bounded load: 20 requests of 50 spans.
    let mut acked = 0;
    for i in 0..20u64 {
        let body = spans_with(i * 50 + 1, 50, "leak", 16);
        if post(agent.http, "", "application/x-protobuf", &body).await == 200 {
            acked += 50;
        }
    }
    assert!(server.wait_for_items(acked, Duration::from_secs(60)).await);
    // A clean stop, so that valgrind sees the process exit and checks for leaks.
    let pid = agent.pid().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = agent.try_wait() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "agent did not stop within 120 s of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let report = std::fs::read_to_string(&vlog).unwrap_or_default();
    let definitely = report
        .lines()
        .find(|l| l.contains("definitely lost:"))
        .map(str::to_owned)
        .unwrap_or_else(|| {
            "definitely lost: 0 bytes (no leak summary: nothing allocated was left)".to_owned()
        });
    record(&Figures {
        suite: "leaks",
        scenario: "agent_valgrind_memcheck".to_owned(),
        protocol: "grpc",
        expected: format!(
            "valgrind --leak-check=full --errors-for-leak-kinds=definite --undef-value-errors=no, 20 requests: {}",
            definitely.split("==").last().unwrap_or("").trim()
        ),
        sent: acked,
        delivered: server.stats().items_accepted,
        ..Figures::default()
    });
    assert_ne!(
        status.code(),
        Some(99),
        "valgrind found definite leaks:\n{report}"
    );
    assert!(
        status.success(),
        "agent exit {status}:\n{report}\n{}",
        agent.logs()
    );
}
