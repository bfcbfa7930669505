//! Unit tests of `cargo xtask bench`.

use super::*;

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[test]
fn options_default_quick_and_explicit() {
    let o = Options::parse(&[]).unwrap();
    assert_eq!((o.runs, o.spans, o.timeout.as_secs()), (3, 1_000_000, 80));
    let o = Options::parse(&args(&["--quick"])).unwrap();
    assert_eq!((o.runs, o.spans), (1, 50_000));
    let o = Options::parse(&args(&["--quick", "--runs", "2", "--spans", "200_000"])).unwrap();
    assert_eq!((o.runs, o.spans), (2, 200_000));
    assert!(
        Options::parse(&args(&["--runs"]))
            .unwrap_err()
            .contains("needs a value")
    );
    assert!(Options::parse(&args(&["--runs", "0"])).is_err());
    assert!(
        Options::parse(&args(&["--fast"]))
            .unwrap_err()
            .contains("'--fast'")
    );
}

#[test]
fn only_filters_scenarios_by_key() {
    let o = Options::parse(&args(&["--only", "http"])).unwrap();
    let keys: Vec<_> = SCENARIOS
        .iter()
        .filter(|s| o.selected(s))
        .map(|s| s.key)
        .collect();
    assert_eq!(
        keys,
        [
            "peer-http-full",
            "peer-http-gzip",
            "ours-sdk-http-block",
            "ours-native-http",
            "ours-native-direct-http",
            "ours-native-http-gzip",
            "ours-native-direct-http-gzip"
        ]
    );
}

#[test]
fn every_baseline_is_a_peer_scenario() {
    for s in SCENARIOS {
        let b = SCENARIOS.iter().find(|b| b.key == s.baseline).unwrap();
        assert_eq!(b.side, Side::Peer, "{}", s.key);
        assert_eq!((b.signal, b.protocol), (s.signal, s.protocol), "{}", s.key);
    }
}

#[test]
fn json_fields_are_read_from_flat_objects() {
    let line = r#"{"event":"final","items":123,"last_item_s":null,"traces_items":120,"ok":true}"#;
    assert_eq!(json_field(line, "items"), Some("123"));
    assert_eq!(json_field(line, "traces_items"), Some("120"));
    assert_eq!(json_field(line, "event"), Some("final"));
    assert_eq!(json_field(line, "ok"), Some("true"));
    assert_eq!(json_field(line, "last_item_s"), Some("null"));
    assert_eq!(json_field(line, "logs_items"), None);
}

#[test]
fn gnu_time_line_is_found_after_child_complaints() {
    let text = "Command exited with non-zero status 1\nxtask-time user=1.50 sys=0.25 maxrss_kb=65536 exit=1\n";
    assert_eq!(parse_time(text), Some((1.75, 65_536)));
    assert_eq!(parse_time("garbage"), None);
}

#[test]
fn proc_stat_cpu_survives_spaces_in_the_name() {
    let stat = "42 (peer otlp) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 1 2 3";
    assert_eq!(stat_cpu_s(stat), Some(3.0));
    assert_eq!(
        status_kib("VmPeak:\t 10 kB\nVmHWM:\t  2048 kB\n", "VmHWM:"),
        Some(2048)
    );
}

#[test]
fn producer_args_carry_the_scenario_signal_protocol_endpoint_and_count() {
    let peer = SCENARIOS
        .iter()
        .find(|s| s.key == "peer-logs-grpc-full")
        .unwrap();
    let Producer::Bin { extra, .. } = peer.producer else {
        panic!("the peer has a producer");
    };
    assert_eq!(
        peer.producer_args(extra, "http://x:1", 5),
        [
            "--signal",
            "logs",
            "--protocol",
            "grpc",
            "--endpoint",
            "http://x:1",
            "--count",
            "5",
            "--queue",
            "5"
        ]
    );
    for s in SCENARIOS {
        if let Producer::Bin { extra, .. } = s.producer {
            // The common flags come from the scenario, never twice.
            for common in ["--signal", "--protocol", "--endpoint", "--count"] {
                assert!(!extra.contains(&common), "{}: {common}", s.key);
            }
            // A compressed row compresses at the producer; on a relay row
            // at the agent, and at the producer only when its extra flags
            // say so (the pass-through row).
            let args = s.producer_args(extra, "http://x:1", 5);
            let flagged = args.iter().filter(|a| *a == "--compression").count();
            let expected = if s.relay() {
                usize::from(s.key.ends_with("passthrough"))
            } else {
                usize::from(s.compression != "none")
            };
            assert_eq!(flagged, expected, "{}", s.key);
            assert!(
                ["none", "gzip", "zstd"].contains(&s.compression),
                "{}",
                s.key
            );
            assert_eq!(
                s.compression != "none",
                s.key.contains("gzip") || s.key.contains("zstd"),
                "{}",
                s.key
            );
        }
    }
}

#[test]
fn medians_of_odd_and_even_counts() {
    assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
    assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
    assert_eq!(median(Vec::new()), 0.0);
}

#[test]
fn every_scenario_has_a_producer_and_only_the_relay_uses_the_agent() {
    for s in SCENARIOS {
        assert!(matches!(s.producer, Producer::Bin { .. }), "{}", s.key);
        assert_eq!(s.relay(), s.key.starts_with("relay-"), "{}", s.key);
    }
    let relay = SCENARIOS.iter().find(|s| s.key == "relay-grpc").unwrap();
    assert_eq!(relay.protocol, "grpc");
    assert_eq!(relay.balanced_backends(), 0);
    // The load-balanced relay row: the same producer and agent, over 3 sinks.
    let lb = SCENARIOS
        .iter()
        .find(|s| s.key == "relay-lb3-grpc")
        .unwrap();
    assert_eq!(lb.balanced_backends(), 3);
    assert!(lb.relay());
    assert_eq!(
        (lb.signal, lb.protocol, lb.compression),
        (relay.signal, relay.protocol, relay.compression)
    );
}

#[test]
fn report_has_ratios_against_the_peer_and_a_relay_agent_table() {
    let opts = Options::parse(&args(&["--runs", "1", "--spans", "1000"])).unwrap();
    let run = |wall_s: f64, delivered: u64| Run {
        wall_s,
        cpu_s: wall_s,
        max_rss_kib: 2048,
        created: 1000,
        delivered,
        ..Run::default()
    };
    let peer = SCENARIOS
        .iter()
        .find(|s| s.key == "peer-grpc-full")
        .unwrap();
    // A made-up second row using the peer as its baseline, to check the ratio columns.
    let other = Scenario {
        key: "test-row",
        baseline: "peer-grpc-full",
        ..*peer
    };
    let relay = Scenario {
        key: "test-relay",
        side: Side::Relay,
        ..other
    };
    let relayed = Run {
        agent_cpu_s: Some(0.25),
        agent_rss_kib: Some(10 * 1024),
        ..run(1.0, 1000)
    };
    let results = vec![
        (peer, vec![run(2.0, 1000)]),
        (&other, vec![run(1.0, 500)]),
        (&relay, vec![relayed]),
    ];
    let md = render(
        &opts,
        &args(&["--runs", "1"]),
        "- CPUs: 2\n",
        "shape\n",
        &results,
        true,
    );
    assert!(md.contains("`cargo xtask bench --runs 1`"));
    assert!(md.contains("| 1000 | 1000 | 0 (0.0%) | 500 |"), "{md}");
    // Same throughput (500/s), half the CPU per million, same RSS.
    assert!(
        md.contains("1.00x / 0.50x / 1.00x of `peer-grpc-full`"),
        "{md}"
    );
    assert!(md.contains("baseline"));
    // The agent of 1000 relayed items: 0.25 CPU-s, so 250 per million.
    assert!(
        md.contains("| `test-relay` | 1000 | 0.25 | 250.00 | 10 |"),
        "{md}"
    );
    assert!(md.contains("agent 0.25 CPU-s, 10 MiB"), "{md}");
    assert!(
        !md.contains("## Not measured yet"),
        "no scenario is pending: {md}"
    );
}
