#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The admin port's status page (`/`) in headless Chromium: the DOM after
//! its script refreshed from `/status.json`, checked against what was sent,
//! plus a screenshot of the page (kept in the test's target tmp dir).
//!
//! Tools: Chromium (Debian package `chromium`, installed by `bash .ci/run`),
//! run `--headless --no-sandbox --disable-gpu --disable-background-networking`.
//! 127.0.0.1 only; every wait is bounded.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

mod common;

use common::*;

fn chromium() -> PathBuf {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "chromium not found: install the Debian package `chromium` (`bash .ci/run` does)"
            )
        })
}

fn headless(profile: &Path) -> Command {
    let mut c = Command::new(chromium());
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        "--window-size=1400,1000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

/// The DOM of `url` after 5 s of virtual time (the page refreshes every 2 s).
fn dom(url: &str, profile: &Path) -> String {
    let out = run(
        headless(profile).args(["--virtual-time-budget=5000", "--dump-dom", url]),
        Duration::from_secs(90),
    );
    assert!(out.status.success(), "chromium --dump-dom: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The text of the cell `field` in the row of `signal`.
fn cell(dom: &str, signal: &str, field: &str) -> String {
    let row_start = dom
        .find(&format!("<tr data-signal=\"{signal}\">"))
        .unwrap_or_else(|| panic!("no row for {signal}"));
    let row = &dom[row_start..];
    let row = &row[..row.find("</tr>").unwrap()];
    let open = format!("data-field=\"{field}\">");
    let at = row
        .find(&open)
        .unwrap_or_else(|| panic!("no {field} in {row}"))
        + open.len();
    row[at..row[at..].find("</td>").unwrap() + at].to_owned()
}

fn attr_number(dom: &str, attr: &str) -> u64 {
    let key = format!("{attr}=\"");
    let at = dom.find(&key).unwrap_or_else(|| panic!("no {attr}")) + key.len();
    dom[at..].split('"').next().unwrap().parse().unwrap()
}

fn send(agent: &LoggingAgent, count: &str) {
    let out = run(
        bin().args([
            "send",
            "--endpoint",
            &format!("http://{}", agent.grpc),
            "--protocol",
            "grpc",
            "--signal",
            "all",
            "--count",
            count,
            "--flush-timeout",
            "5s",
        ]),
        Duration::from_secs(60),
    );
    // Delivery to the agent (not upstream) is what send reports.
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn the_status_page_shows_what_the_agent_did_refreshes_itself_and_needs_no_external_asset() {
    let sink = Sink::start();
    let dir = tempfile::tempdir().unwrap();
    let agent = start_logging_agent(&sink.grpc, dir.path(), "");
    send(&agent, "400");
    sink.wait_for((400, 400, 400));
    // The agent counts an item sent when the sink's answer is back: wait for
    // that too, so the page sees settled figures.
    let started = std::time::Instant::now();
    loop {
        let (_, body) = http_get(&agent.admin, "/status.json");
        let s: serde_json::Value = serde_json::from_str(&body).unwrap();
        if ["traces", "metrics", "logs"]
            .iter()
            .all(|sig| s["signals"][sig]["sent"].as_f64() == Some(400.0))
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not all sent: {s}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let url = format!("http://{}/", agent.admin);

    // Self-contained: no external script, style sheet, image or font.
    let (status, html) = http_get(&agent.admin, "/");
    assert_eq!(status, 200);
    for external in ["<link", " src=", "url(", "@import", "http://", "https://"] {
        assert!(
            !html.contains(external),
            "external asset ({external}) in the page"
        );
    }

    let d = dom(&url, &dir.path().join("profile"));
    // The script ran and refreshed from /status.json.
    assert!(
        attr_number(&d, "data-refreshed") >= 1,
        "the page did not refresh itself"
    );
    assert!(d.contains("<title>otlp-client status</title>"));
    for signal in ["traces", "metrics", "logs"] {
        // Sent is counted when the upstream acknowledged; wait-free here
        // because the sink already has everything.
        assert_eq!(cell(&d, signal, "accepted"), "400", "{signal}");
        assert_eq!(cell(&d, signal, "sent"), "400", "{signal}");
        assert_eq!(cell(&d, signal, "dropped"), "0", "{signal}");
        assert_eq!(cell(&d, signal, "failed"), "0", "{signal}");
        // A rate between two refreshes (nothing moves now).
        assert_eq!(cell(&d, signal, "sent_per_s"), "0", "{signal}");
    }
    assert!(
        d.contains(r#"<b id="upstream" class="up">up</b>"#),
        "upstream not up"
    );
    for check in ["exporter", "queue", "memory"] {
        assert!(
            d.contains(&format!(
                r#"<tr data-check="{check}"><td>{check}</td><td class="healthy">healthy</td>"#
            )),
            "{check} check not shown healthy"
        );
    }

    // A screenshot of the page, as a person sees it.
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    let out = run(
        headless(&dir.path().join("profile-shot"))
            .arg(format!("--screenshot={}", shot.display()))
            .arg(&url),
        Duration::from_secs(90),
    );
    assert!(out.status.success(), "{}", text(&out));
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        png.len() > 10_000,
        "a blank screenshot ({} bytes)",
        png.len()
    );
}

#[test]
fn the_status_page_shows_a_dead_upstream_and_the_last_losses() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let agent = start_logging_agent(
        &closed,
        dir.path(),
        "retry:\n  initial_backoff: 100ms\n  max_elapsed: 1s\n",
    );
    send(&agent, "10");
    // The batches fail once their retries are spent.
    let started = std::time::Instant::now();
    loop {
        let (_, body) = http_get(&agent.admin, "/status.json");
        let s: serde_json::Value = serde_json::from_str(&body).unwrap();
        if s["signals"]["traces"]["failed"].as_f64() == Some(10.0) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no failure: {s}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let d = dom(
        &format!("http://{}/", agent.admin),
        &dir.path().join("profile"),
    );
    assert_eq!(cell(&d, "traces", "failed"), "10");
    assert!(cell(&d, "traces", "last_error").contains(&closed), "{d}");
    let losses = &d[d.find("id=\"losses\"").unwrap()..];
    assert!(losses.contains("<td>retries_exhausted</td>"), "{losses}");
    assert!(losses.contains("<td>traces</td>"), "{losses}");
}
