#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What an operator sees: one `--format json` spelling (the old ones still
//! work), value lists and exit codes in `--help`, coloured verdicts on a
//! terminal only, the `--duration` progress bar, and the agent's shutdown
//! report as JSON log fields. Terminals are pseudo-terminals from util-linux
//! `script`; every socket is on 127.0.0.1 and every wait is bounded.

use std::time::Duration;

mod common;

use common::*;

const EXE: &str = env!("CARGO_BIN_EXE_otlp-client");

fn json_stdout(args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let out = run(bin().args(args), Duration::from_secs(60));
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: stdout is not JSON ({e}):\n{}", text(&out)));
    (out.status.code(), v)
}

#[test]
fn format_json_is_the_one_spelling_and_the_old_ones_still_work() {
    let dead = format!("http://{}", closed_port());
    for flag in [&["--format", "json"][..], &["--json"][..]] {
        let (code, v) = json_stdout(
            &[
                &["diagnose", "--endpoint", &dead, "--timeout", "1s"][..],
                flag,
            ]
            .concat(),
        );
        assert_eq!(code, Some(1), "{v}");
        assert!(v["steps"].is_array(), "{flag:?}: {v}");
    }
    let sink = Sink::start();
    let endpoint = format!("http://{}", sink.grpc);
    for flag in ["--format", "--report"] {
        let (code, v) = json_stdout(&[
            "send",
            "--endpoint",
            &endpoint,
            "--protocol",
            "grpc",
            "--count",
            "20",
            flag,
            "json",
        ]);
        assert_eq!(code, Some(0), "{flag}: {v}");
        assert_eq!(v["sent"], 20, "{flag}: {v}");
    }
    // --help shows the one spelling only.
    for cmd in [
        "send",
        "diagnose",
        "doctor",
        "validate-config",
        "explain-config",
    ] {
        let out = run(bin().args([cmd, "--help"]), Duration::from_secs(10));
        let t = text(&out);
        assert!(t.contains("--format <FORMAT>"), "{cmd}:\n{t}");
        assert!(!t.contains("--json"), "{cmd}:\n{t}");
        assert!(!t.contains("--report"), "{cmd}:\n{t}");
    }
    // The old flag and the new one cannot disagree.
    let out = run(
        bin().args([
            "diagnose",
            "--json",
            "--format",
            "text",
            "--endpoint",
            &dead,
        ]),
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn help_lists_protocol_and_overflow_values_and_every_commands_exit_codes() {
    let out = run(bin().args(["send", "--help"]), Duration::from_secs(10));
    let t = text(&out);
    for value in [
        "grpc",
        "http/protobuf",
        "http/json",
        "block",
        "drop_newest",
        "drop_oldest",
    ] {
        assert!(t.contains(value), "send --help misses {value}:\n{t}");
    }
    let top = text(&run(bin().arg("--help"), Duration::from_secs(10)));
    assert!(top.contains("Exit codes: 0"), "{top}");
    assert!(!top.contains("seed guide"), "jargon in --help:\n{top}");
    for cmd in [
        "run",
        "send",
        "sink",
        "diagnose",
        "doctor",
        "top",
        "demo",
        "validate-config",
        "explain-config",
        "completions",
        "man",
    ] {
        let t = text(&run(bin().args([cmd, "--help"]), Duration::from_secs(10)));
        assert!(
            t.contains("Exit codes: 0"),
            "{cmd} --help has no exit codes:\n{t}"
        );
    }
    // A wrong value is refused by the parser with the list of values.
    for (flag, bad) in [("--overflow", "sometimes"), ("--protocol", "grcp")] {
        let out = run(bin().args(["send", flag, bad]), Duration::from_secs(10));
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(text(&out).contains("possible values"), "{}", text(&out));
    }
}

#[test]
fn diagnose_colours_verdicts_on_a_terminal_only_and_honours_no_color() {
    let dead = format!("http://{}", closed_port());
    let line = format!("{EXE} diagnose --endpoint {dead} --timeout 1s");
    let (code, tty) = on_a_terminal(&line, &[], Duration::from_secs(60));
    assert_eq!(code, Some(1), "{tty}");
    assert!(
        tty.contains("\x1b[31m[FAIL]\x1b[0m"),
        "no red FAIL on a terminal: {tty:?}"
    );
    assert!(
        tty.contains("\x1b[32m[PASS]\x1b[0m"),
        "no green PASS on a terminal: {tty:?}"
    );

    let (_, plain) = on_a_terminal(&line, &[("NO_COLOR", "1")], Duration::from_secs(60));
    assert!(plain.contains("[FAIL]"), "{plain:?}");
    assert!(
        !plain.contains('\x1b'),
        "NO_COLOR=1 still coloured: {plain:?}"
    );

    let piped = run(
        bin().args(["diagnose", "--endpoint", &dead, "--timeout", "1s"]),
        Duration::from_secs(60),
    );
    let t = text(&piped);
    assert!(t.contains("[FAIL]") && !t.contains('\x1b'), "{t:?}");
}

#[test]
fn duration_progress_shows_elapsed_out_of_total_time_on_a_terminal() {
    let sink = Sink::start();
    let line = format!(
        "{EXE} send --endpoint http://{} --protocol grpc --duration 2s --rate 2000 >/dev/null",
        sink.grpc
    );
    let (code, tty) = on_a_terminal(&line, &[], Duration::from_secs(60));
    assert_eq!(code, Some(0), "{tty}");
    assert!(
        tty.contains("/00:00:02, "),
        "no elapsed/total on the bar: {tty:?}"
    );
    assert!(tty.contains(" items"), "{tty:?}");
    assert!(!tty.contains("/0 items"), "{tty:?}");
}

#[cfg(unix)]
#[test]
fn the_shutdown_report_is_structured_fields_in_json_logs() {
    let sink = Sink::start();
    let dir = tempfile::tempdir().unwrap();
    let agent = start_logging_agent(&sink.grpc, dir.path(), "");
    let send = run(
        bin().args([
            "send",
            "--endpoint",
            &format!("http://{}", agent.grpc),
            "--protocol",
            "grpc",
            "--count",
            "50",
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(send.status.code(), Some(0), "{}", text(&send));
    sink.wait_for((50, 0, 0));
    let (code, lines) = agent.terminate();
    assert_eq!(code, Some(0), "{}", lines.join("\n"));
    let done = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message"] == "shutdown complete")
        .unwrap_or_else(|| panic!("no shutdown line:\n{}", lines.join("\n")));
    // The JSON log format puts the fields at the top level.
    let f = &done;
    assert_eq!(f["sent"], 50, "{done}");
    assert_eq!(f["traces_sent"], 50, "{done}");
    assert_eq!(f["dropped"], 0, "{done}");
    assert_eq!(f["failed"], 0, "{done}");
    assert_eq!(f["left_queued"], 0, "{done}");
    assert_eq!(f["drained"], true, "{done}");
    assert!(f.get("report").is_none(), "a Debug dump is back: {done}");
}
