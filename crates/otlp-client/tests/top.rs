#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `otlp-client top` for real: it runs in tmux (a private server socket per
//! test) against a running agent that forwards to a sink; keys go in with
//! `send-keys`, the screen comes back with `capture-pane`. Bounded waits,
//! 127.0.0.1 only.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

mod common;

use common::*;

const EXE: &str = env!("CARGO_BIN_EXE_otlp-client");

/// A tmux server of our own, killed on drop.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    fn start(dir: &Path, command: &str) -> Self {
        let t = Self {
            socket: dir.join("tmux.sock"),
        };
        let out = t.cmd(&[
            "new-session",
            "-d",
            "-s",
            "top",
            "-x",
            "160",
            "-y",
            "40",
            command,
        ]);
        assert!(out.status.success(), "tmux: {}", text(&out));
        t
    }

    fn cmd(&self, args: &[&str]) -> std::process::Output {
        run(
            Command::new("tmux")
                .arg("-S")
                .arg(&self.socket)
                .args(args)
                .env_remove("TMUX"),
            Duration::from_secs(20),
        )
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "top"]).stdout).into_owned()
    }

    /// Waits (up to `limit`) for a screen that `ok` accepts.
    fn wait_for(&self, limit: Duration, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            assert!(
                started.elapsed() < limit,
                "no {what} within {limit:?}:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn running(&self) -> bool {
        self.cmd(&["has-session", "-t", "top"]).status.success()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The cells of the screen's row for `signal` (the table's columns).
fn row(screen: &str, signal: &str) -> Vec<String> {
    screen
        .lines()
        .find_map(|l| {
            let cells: Vec<String> = l
                .trim_matches(|c: char| c == '│' || c.is_whitespace())
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            (cells.first().map(String::as_str) == Some(signal)).then_some(cells)
        })
        .unwrap_or_default()
}

#[test]
fn top_shows_a_running_agents_rates_totals_and_upstream_and_quits_on_q() {
    let sink = Sink::start();
    let dir = tempfile::tempdir().unwrap();
    let agent = start_logging_agent(&sink.grpc, dir.path(), "");
    let tmux = Tmux::start(
        dir.path(),
        &format!("{EXE} top --admin {} --interval 300ms", agent.admin),
    );
    let first = tmux.wait_for(Duration::from_secs(20), "first screen", |s| {
        s.contains("otlp-client top") && s.contains("signals")
    });
    assert!(first.contains("upstream: unknown"), "{first}");
    assert_eq!(row(&first, "traces").len(), 11, "{first}");

    // 3000 spans over about 3 s through the agent to the sink.
    let mut send = bin()
        .args([
            "send",
            "--endpoint",
            &format!("http://{}", agent.grpc),
            "--protocol",
            "grpc",
            "--count",
            "3000",
            "--rate",
            "1000",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // While it runs: a sent rate above zero, the upstream up.
    let busy = tmux.wait_for(Duration::from_secs(30), "a sent rate", |s| {
        let r = row(s, "traces");
        r.get(2)
            .and_then(|v| v.parse::<f64>().ok())
            .is_some_and(|v| v > 0.0)
    });
    assert!(busy.contains("upstream: up"), "{busy}");
    let started = Instant::now();
    while send.try_wait().unwrap().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "send did not finish"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The totals: every span sent, none dropped or failed.
    let done = tmux.wait_for(Duration::from_secs(30), "3000 spans sent", |s| {
        row(s, "traces").get(7).map(String::as_str) == Some("3000")
    });
    let r = row(&done, "traces");
    assert_eq!((r[8].as_str(), r[9].as_str()), ("0", "0"), "{done}");
    assert_eq!(row(&done, "logs")[7], "0", "{done}");
    assert!(done.contains("last errors"), "{done}");

    tmux.cmd(&["send-keys", "-t", "top", "q"]);
    let started = Instant::now();
    while tmux.running() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "top did not quit on q"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn top_says_when_the_admin_port_does_not_answer_and_quits_on_escape() {
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tmux = Tmux::start(
        dir.path(),
        &format!("{EXE} top --admin {closed} --interval 300ms"),
    );
    let s = tmux.wait_for(Duration::from_secs(20), "the error", |s| {
        s.contains("cannot reach")
    });
    assert!(s.contains(&closed.to_string()), "{s}");
    tmux.cmd(&["send-keys", "-t", "top", "Escape"]);
    let started = Instant::now();
    while tmux.running() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "top did not quit on Escape"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
