#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `otlp-client doctor`: one verdict from the config, the effective
//! endpoint, the upstream and the running agent's `/health`, against real
//! processes (a sink as the upstream, an agent) on 127.0.0.1.

use std::{
    io::{Read, Write},
    net::TcpListener,
    path::Path,
    time::Duration,
};

mod common;

use common::*;

fn doctor(config: &Path, extra: &[&str]) -> (Option<i32>, serde_json::Value) {
    let out = run(
        bin()
            .args(["doctor", "--format", "json", "--timeout", "2s", "--config"])
            .arg(config)
            .args(extra),
        Duration::from_secs(60),
    );
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", text(&out)));
    (out.status.code(), v)
}

fn check<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check: {report}"))
}

#[test]
fn a_working_upstream_and_a_healthy_agent_give_one_healthy_verdict() {
    let sink = Sink::start();
    let dir = tempfile::tempdir().unwrap();
    let agent = start_logging_agent(&sink.grpc, dir.path(), "");
    let config = dir.path().join("doctor.yaml");
    std::fs::write(
        &config,
        format!("endpoint: http://{}\nprotocol: grpc\n", sink.grpc),
    )
    .unwrap();
    let (code, r) = doctor(&config, &["--admin", &agent.admin]);
    assert_eq!(code, Some(0), "{r:#}");
    assert_eq!(r["verdict"], "healthy", "{r:#}");
    for name in ["config", "effective", "upstream", "agent"] {
        assert_eq!(check(&r, name)["verdict"], "pass", "{name}: {r:#}");
    }
    let effective = check(&r, "effective")["detail"].as_str().unwrap();
    assert!(effective.contains(&sink.grpc), "{effective}");
    assert!(effective.contains("endpoint from file"), "{effective}");
    assert_eq!(check(&r, "agent")["health"]["status"], "healthy");
    assert!(check(&r, "upstream")["diagnosis"]["steps"].is_array());
    // The text form carries the same verdict.
    let out = run(
        bin()
            .args(["doctor", "--admin", &agent.admin, "--config"])
            .arg(&config),
        Duration::from_secs(60),
    );
    let t = text(&out);
    assert!(t.contains("[PASS] agent"), "{t}");
    assert!(t.trim_end().ends_with("verdict: healthy"), "{t}");
}

#[test]
fn a_dead_upstream_fails_with_its_fix_and_a_missing_agent_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.yaml");
    std::fs::write(
        &config,
        format!(
            "endpoint: http://{}\nprotocol: grpc\nadmin:\n  listen: {}\n",
            closed_port(),
            closed_port()
        ),
    )
    .unwrap();
    let (code, r) = doctor(&config, &[]);
    assert_eq!(code, Some(1), "{r:#}");
    assert_eq!(r["verdict"], "problems found");
    let upstream = check(&r, "upstream");
    assert_eq!(upstream["verdict"], "fail", "{r:#}");
    assert!(
        upstream["fix"]
            .as_str()
            .unwrap()
            .contains("start the collector"),
        "{upstream}"
    );
    let agent = check(&r, "agent");
    assert_eq!(agent["verdict"], "warn", "{r:#}");
    assert!(
        agent["fix"].as_str().unwrap().contains("otlp-client run"),
        "{agent}"
    );
}

#[test]
fn an_invalid_config_fails_with_the_validators_hint_and_skips_the_network_checks() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.yaml");
    std::fs::write(&config, "endpoint: http://127.0.0.1:1\nprotocol: grcp\n").unwrap();
    let (code, r) = doctor(&config, &["--admin", &closed_port().to_string()]);
    assert_eq!(code, Some(1), "{r:#}");
    let c = check(&r, "config");
    assert_eq!(c["verdict"], "fail");
    assert!(c["detail"].as_str().unwrap().contains("bad.yaml:2"), "{c}");
    assert!(c["fix"].as_str().unwrap().contains("'grpc'"), "{c}");
    assert!(
        c["fix"].as_str().unwrap().contains("validate-config --fix"),
        "{c}"
    );
    assert_eq!(check(&r, "upstream")["verdict"], "skipped");

    std::fs::write(&config, "endpoint: [unclosed\n").unwrap();
    let (code, r) = doctor(&config, &["--admin", &closed_port().to_string()]);
    assert_eq!(code, Some(2), "unreadable YAML is exit 2: {r:#}");
    assert_eq!(check(&r, "config")["verdict"], "fail");
}

#[test]
fn an_unhealthy_agent_fails_with_the_unhealthy_checks_named() {
    // An admin port answering as an agent with a failing exporter does.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let admin = listener.local_addr().unwrap().to_string();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        // The request head, however it is split into segments.
        let mut req = Vec::new();
        let mut buf = [0u8; 1024];
        while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 64 * 1024 {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "connection closed before the request head");
            req.extend_from_slice(&buf[..n]);
        }
        assert!(String::from_utf8_lossy(&req).starts_with("GET /health HTTP/1.1"));
        let body = r#"{"status":"unhealthy","checks":[{"name":"exporter","status":"unhealthy","message":"20 export attempts failed in a row","details":{}},{"name":"queue","status":"healthy","message":"ok","details":{}}],"timestamp_unix_ms":1}"#;
        write!(
            s,
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
    });
    let sink = Sink::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.yaml");
    std::fs::write(&config, format!("endpoint: http://{}\n", sink.grpc)).unwrap();
    let (code, r) = doctor(&config, &["--admin", &admin]);
    server.join().unwrap();
    assert_eq!(code, Some(1), "{r:#}");
    let agent = check(&r, "agent");
    assert_eq!(agent["verdict"], "fail", "{r:#}");
    let detail = agent["detail"].as_str().unwrap();
    assert!(detail.contains("HTTP 503"), "{detail}");
    assert!(
        detail.contains("exporter unhealthy: 20 export attempts failed"),
        "{detail}"
    );
    assert!(
        !detail.contains("queue"),
        "healthy checks are not listed: {detail}"
    );
}

/// With `loadbalancing:` traces go to the backend set, not to the signal
/// endpoint: the upstream check probes the backends. A live endpoint with a
/// dead backend fails naming that backend; a dead endpoint with a live
/// backend passes.
#[test]
fn with_load_balancing_the_upstream_check_is_the_backend_set() {
    let live = Sink::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("lb.yaml");
    let live_url = format!("http://{}", live.grpc);
    let closed = format!("http://{}", closed_port());
    let write = |endpoint: &str, backends: &str| {
        std::fs::write(
            &config,
            format!(
                "endpoint: {endpoint}\nprotocol: grpc\nadmin:\n  listen: {}\nloadbalancing:\n  routing_key: trace_id\n  endpoints: [{backends}]\n",
                closed_port()
            ),
        )
        .unwrap();
    };

    write(&live_url, &format!("{live_url}, {closed}"));
    let (code, r) = doctor(&config, &[]);
    assert_eq!(code, Some(1), "{r:#}");
    assert_eq!(r["verdict"], "problems found", "{r:#}");
    let upstream = check(&r, "upstream");
    assert_eq!(upstream["verdict"], "fail", "{r:#}");
    let detail = upstream["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("1 of 2 probed backend(s) failing: {closed}")),
        "{detail}"
    );
    assert!(
        upstream["fix"]
            .as_str()
            .unwrap()
            .contains("start the collector"),
        "{upstream}"
    );
    assert_eq!(
        upstream["loadbalancing"]["failing"],
        serde_json::json!([closed]),
        "{upstream}"
    );
    let effective = check(&r, "effective")["detail"].as_str().unwrap();
    for want in [
        "load-balanced by trace_id",
        "loadbalancing.endpoints from file",
        "the endpoint setting is not used",
    ] {
        assert!(
            effective.contains(want),
            "{want:?} missing from {effective}"
        );
    }

    write(&closed, &live_url);
    let (code, r) = doctor(&config, &[]);
    assert_eq!(code, Some(0), "{r:#}");
    let upstream = check(&r, "upstream");
    assert_eq!(upstream["verdict"], "pass", "{r:#}");
    let detail = upstream["detail"].as_str().unwrap();
    assert!(detail.contains("1 backend(s) answer OTLP"), "{detail}");
    assert_eq!(upstream["loadbalancing"]["healthy"], true, "{upstream}");
}
