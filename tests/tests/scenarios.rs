//! The fault scenario table, run for OTLP/gRPC and OTLP/HTTP through the full
//! facade stack (pipeline -> metrics -> recovery -> retry -> concurrency ->
//! transport) against the scriptable fault receiver.
//!
//! Each scenario states its expected outcome and the test checks it exactly,
//! together with the accounting invariant
//! `accepted = sent + dropped + failed + queued`, and that the receiver got
//! exactly what the facade reports as sent (nothing retryable lost, nothing
//! duplicated).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    trace::v1::{ResourceSpans, ScopeSpans, Span},
};
use otlp::{
    Otlp,
    config::{Compression, Config, Protocol},
    core::{Batch, FailReason, Signal},
};
use otlp_e2e::{Fault, FaultServer, Figures, Script, record};
use prost::Message;

const ITEMS: u64 = 60;

/// What a scenario must end with.
#[derive(Clone, Debug, Default)]
struct Expect {
    /// Items the server accepted and the facade counts as sent.
    sent: u64,
    /// Items failed, by reason.
    failed: Vec<(FailReason, u64)>,
    /// The fewest requests the server must have seen (retries happened).
    min_requests: u64,
    /// The most requests the server may have seen (no retry of a permanent error).
    max_requests: Option<u64>,
    /// The least time between the first faulty answer and the next request
    /// (a throttle hint was honoured).
    min_gap: Option<Duration>,
}

struct Scenario {
    name: &'static str,
    what: &'static str,
    script: Script,
    /// Take the server down for this long before sending.
    down: Option<Duration>,
    tweak: fn(&mut Config),
    expect: Expect,
}

fn no_tweak(_: &mut Config) {}

fn spans(first: u64, n: u64) -> Batch {
    let spans = (first..first + n)
        .map(|i| Span {
            trace_id: [7; 16].to_vec(),
            span_id: (i + 1).to_be_bytes().to_vec(),
            name: format!("span-{i}"),
            ..Default::default()
        })
        .collect();
    let req = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    Batch::from_encoded(Signal::Traces, Bytes::from(req.encode_to_vec())).unwrap()
}

fn config(server: &FaultServer, protocol: Protocol) -> Config {
    let mut c = Config::default();
    let sc = &mut c.signals[Signal::Traces.index()];
    sc.protocol = protocol;
    sc.endpoint = match protocol {
        Protocol::Grpc => server.grpc_endpoint(),
        _ => server.http_endpoint(Signal::Traces),
    };
    sc.compression = Compression::None;
    // Generous, so that a loaded CI machine does not time out (and duplicate)
    // a request the server did answer; only the "never answers" scenario waits it out.
    sc.timeout = Duration::from_secs(2);
    c.connect_timeout = Duration::from_secs(2);
    c.retry.initial_backoff = Duration::from_millis(10);
    c.retry.max_backoff = Duration::from_millis(100);
    c.retry.max_retries = Some(30);
    c.retry.max_elapsed = Some(Duration::from_secs(10));
    c.batch.batch_timeout = Duration::from_millis(10);
    c.batch.max_batch_size = 10_000;
    c
}

fn table() -> Vec<Scenario> {
    let all = Expect {
        sent: ITEMS,
        ..Expect::default()
    };
    vec![
        Scenario {
            name: "accept",
            what: "delivered, one request",
            script: Script::accept(),
            down: None,
            tweak: no_tweak,
            expect: Expect {
                min_requests: 1,
                max_requests: Some(1),
                ..all.clone()
            },
        },
        Scenario {
            name: "unavailable_for_300ms",
            what: "delivered after retries",
            script: Script::accept().then_for(Fault::Unavailable, Duration::from_millis(300)),
            down: None,
            tweak: no_tweak,
            expect: Expect {
                min_requests: 3,
                ..all.clone()
            },
        },
        Scenario {
            name: "throttled_with_hint_1s",
            what: "delivered, waited for the hint (RetryInfo / Retry-After: 1)",
            script: Script::accept().then_n(Fault::Throttle(Duration::from_secs(1)), 1),
            down: None,
            tweak: no_tweak,
            expect: Expect {
                min_requests: 2,
                min_gap: Some(Duration::from_millis(950)),
                ..all.clone()
            },
        },
        Scenario {
            name: "unavailable_until_date",
            what: "delivered, waited for the hint (503 HTTP-date / UNAVAILABLE RetryInfo)",
            script: Script::accept().then_n(Fault::UnavailableUntil(Duration::from_secs(1)), 1),
            down: None,
            tweak: no_tweak,
            expect: Expect {
                min_requests: 2,
                // The HTTP-date has whole seconds: the wait is at least ~0.5 s.
                min_gap: Some(Duration::from_millis(500)),
                ..all.clone()
            },
        },
        Scenario {
            name: "bad_request",
            what: "failed(permanent), not retried",
            script: Script::accept().then_always(Fault::BadRequest),
            down: None,
            tweak: no_tweak,
            expect: Expect {
                sent: 0,
                failed: vec![(FailReason::Permanent, ITEMS)],
                min_requests: 1,
                max_requests: Some(1),
                min_gap: None,
            },
        },
        Scenario {
            name: "too_large_above_2kb",
            what: "delivered after splitting (413 / message larger than max)",
            script: Script::accept().then_always(Fault::TooLargeAbove(2048)),
            down: None,
            tweak: no_tweak,
            expect: Expect {
                min_requests: 3,
                ..all.clone()
            },
        },
        Scenario {
            name: "partial_success_rejects_7",
            what: "sent minus 7, failed(rejected) 7",
            script: Script::accept().then_n(Fault::PartialReject(7), 1),
            down: None,
            tweak: no_tweak,
            expect: Expect {
                sent: ITEMS - 7,
                failed: vec![(FailReason::Rejected, 7)],
                min_requests: 1,
                max_requests: Some(1),
                min_gap: None,
            },
        },
        Scenario {
            name: "connection_reset_twice",
            what: "delivered after reconnecting",
            script: Script::accept().then_n(Fault::Reset, 2),
            down: None,
            tweak: no_tweak,
            expect: Expect {
                min_requests: 3,
                ..all.clone()
            },
        },
        Scenario {
            name: "never_answers_once",
            what: "delivered after the request timeout and a retry",
            script: Script::accept().then_n(Fault::Hang, 1),
            down: None,
            tweak: no_tweak,
            expect: Expect {
                min_requests: 2,
                ..all.clone()
            },
        },
        Scenario {
            name: "close_mid_body_once",
            what: "delivered after retrying the broken answer",
            script: Script::accept().then_n(Fault::CloseMidBody, 1),
            down: None,
            tweak: no_tweak,
            expect: Expect {
                min_requests: 2,
                ..all.clone()
            },
        },
        Scenario {
            name: "down_for_1s_then_back",
            what: "delivered after the receiver comes back",
            script: Script::accept(),
            down: Some(Duration::from_secs(1)),
            tweak: no_tweak,
            expect: Expect {
                min_requests: 1,
                ..all.clone()
            },
        },
        Scenario {
            name: "unavailable_beyond_budget",
            what: "failed(retries exhausted) after 3 attempts",
            script: Script::accept().then_always(Fault::Unavailable),
            down: None,
            tweak: |c| c.retry.max_retries = Some(2),
            expect: Expect {
                sent: 0,
                failed: vec![(FailReason::RetriesExhausted, ITEMS)],
                min_requests: 3,
                max_requests: Some(3),
                min_gap: None,
            },
        },
    ]
}

async fn run(protocol: Protocol, proto_name: &'static str) {
    let mut problems = Vec::new();
    for sc in table() {
        if let Err(e) = run_one(&sc, protocol, proto_name).await {
            problems.push(format!("{proto_name} {}: {e}", sc.name));
        }
    }
    assert!(
        problems.is_empty(),
        "scenarios failed:\n{}",
        problems.join("\n")
    );
}

async fn run_one(
    sc: &Scenario,
    protocol: Protocol,
    proto_name: &'static str,
) -> Result<(), String> {
    let server = FaultServer::start(sc.script.clone()).await.unwrap();
    let mut cfg = config(&server, protocol);
    (sc.tweak)(&mut cfg);
    let otlp = Otlp::builder().with_config(cfg).build().unwrap();
    let mut down_until = None;
    if let Some(d) = sc.down {
        server.go_down(d);
        down_until = Some(Instant::now() + d);
    }
    otlp.try_export_batch(spans(0, ITEMS)).unwrap();

    // Wait (bounded) until everything is settled: sent, dropped or failed.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut settled_at = None;
    while Instant::now() < deadline {
        let s = otlp.stats().signal(Signal::Traces).clone();
        if s.accepted == ITEMS && s.queued_items == 0 {
            settled_at = Some(Instant::now());
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let report = otlp.shutdown(Duration::from_secs(2)).await;
    let s = report.stats.signal(Signal::Traces).clone();
    let fs = server.stats();
    let log = server.log();

    let failed_total = s.failed_total();
    let dropped_total = s.dropped_total();
    let recover_ms = match (down_until, settled_at) {
        (Some(up), Some(done)) => Some(done.saturating_duration_since(up).as_millis() as u64),
        _ => None,
    };
    let lost = sc.expect.sent.saturating_sub(fs.items_accepted);
    record(&Figures {
        suite: "scenarios",
        scenario: sc.name.to_owned(),
        protocol: proto_name,
        expected: sc.what.to_owned(),
        sent: ITEMS,
        delivered: fs.items_accepted,
        lost,
        duplicated: fs.duplicate_spans,
        dropped_or_failed: failed_total + dropped_total,
        peak_rss_bytes: None,
        recover_ms,
        cases: Some(fs.requests),
    });

    let mut errs = Vec::new();
    if settled_at.is_none() {
        errs.push(format!("not settled within 20 s: {s:?}"));
    }
    // The accounting invariant, exactly.
    if s.accepted != s.sent + dropped_total + failed_total + s.queued_items {
        errs.push(format!("accounting does not add up: {s:?}"));
    }
    if s.sent != sc.expect.sent {
        errs.push(format!("sent {} != expected {}", s.sent, sc.expect.sent));
    }
    // The receiver got exactly what the facade counts as sent, once each.
    if fs.items_accepted != s.sent {
        errs.push(format!(
            "receiver accepted {} but facade counts {} sent",
            fs.items_accepted, s.sent
        ));
    }
    if fs.duplicate_spans != 0 {
        errs.push(format!("{} duplicated spans", fs.duplicate_spans));
    }
    if dropped_total != 0 {
        errs.push(format!("unexpected drops: {:?}", s.dropped));
    }
    let expected_failed: u64 = sc.expect.failed.iter().map(|(_, n)| n).sum();
    if failed_total != expected_failed {
        errs.push(format!(
            "failed {:?} != expected {:?}",
            s.failed, sc.expect.failed
        ));
    }
    for (reason, n) in &sc.expect.failed {
        if s.failed(*reason) != *n {
            errs.push(format!("failed({reason:?}) {} != {n}", s.failed(*reason)));
        }
    }
    if fs.requests < sc.expect.min_requests {
        errs.push(format!(
            "{} requests < {} expected (no retry?)",
            fs.requests, sc.expect.min_requests
        ));
    }
    if let Some(max) = sc.expect.max_requests
        && fs.requests > max
    {
        errs.push(format!("{} requests > {max} allowed", fs.requests));
    }
    if let Some(gap) = sc.expect.min_gap {
        match (log.first(), log.get(1)) {
            (Some(a), Some(b)) if b.at - a.at >= gap => {}
            (Some(a), Some(b)) => errs.push(format!(
                "retry after {:?}, before the {gap:?} hint",
                b.at - a.at
            )),
            _ => errs.push("fewer than two requests".to_owned()),
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(format!("{} (server {fs:?})", errs.join("; ")))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_fault_table_delivers_or_accounts_every_item() {
    run(Protocol::Grpc, "grpc").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_fault_table_delivers_or_accounts_every_item() {
    run(Protocol::HttpProtobuf, "http").await;
}
