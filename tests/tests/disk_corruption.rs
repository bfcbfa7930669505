//! Disk queue corruption found at restart, on the real `otlp-client run`
//! agent (issue 15, case 7): a flipped header byte, random bytes and a
//! directory named like a segment. The intact records are delivered, every
//! lost item is counted in `otlp_items_dropped_total{reason="corrupt"}`, the
//! unusable files are moved to `corrupt/` with a log line naming them, and
//! the identity `accepted + recovered = sent + dropped + failed + queued` holds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::HashSet, path::Path, time::Duration};

use otlp_e2e::{
    Fault, FaultServer, Figures, Script,
    agent::{Agent, AgentConfig, metric_sum, post_to, spans},
    record,
};

const PB: &str = "application/x-protobuf";

fn live_segments(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

/// The offsets of the records of a segment (25-byte headers, length at 4..8).
fn record_offsets(data: &[u8]) -> Vec<usize> {
    let mut at = 0;
    let mut v = Vec::new();
    while at + 25 <= data.len() {
        assert_eq!(&data[at..at + 4], b"OQR1", "record magic at {at}");
        v.push(at);
        let len = u32::from_le_bytes(data[at + 4..at + 8].try_into().unwrap()) as usize;
        at += 25 + len;
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corruption_at_restart_is_counted_moved_aside_and_the_rest_delivered() {
    let server = FaultServer::start(Script::accept().then_always(Fault::Unavailable))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("queue");
    let mut cfg = AgentConfig::new(server.grpc_endpoint());
    cfg.persistent = Some(queue.clone());
    cfg.retry = "  initial_backoff: 20ms\n  max_backoff: 200ms\n".to_owned();
    let mut agent = Agent::start(&cfg, dir.path(), "first").unwrap();
    let mut acked = HashSet::new();
    for r in 0..20u64 {
        let (status, text) = post_to(agent.http, "/v1/traces", "", PB, &spans(r * 100, 100)).await;
        assert_eq!(status, 200, "{text}");
        acked.extend(r * 100..r * 100 + 100);
    }
    // Acknowledged means on disk: kill the agent without a chance to flush.
    agent.kill9();

    let segs = live_segments(&queue);
    assert!(!segs.is_empty());
    let mut data = std::fs::read(&segs[0]).unwrap();
    let offsets = record_offsets(&data);
    assert!(offsets.len() >= 3, "one record per request: {offsets:?}");
    // One flipped bit in the item count of the second record's header.
    data[offsets[1] + 9] ^= 0x01;
    std::fs::write(&segs[0], &data).unwrap();
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let noise: Vec<u8> = (0..6000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(queue.join("0000000000fffff0.seg"), noise).unwrap();
    std::fs::create_dir(queue.join("0000000000fffff1.seg")).unwrap();

    server.set_script(Script::accept());
    let agent = Agent::start(&cfg, dir.path(), "second").unwrap();
    // Everything but the damaged record (100 spans) arrives.
    let arrived = server
        .wait_for_items(acked.len() as u64 - 100, Duration::from_secs(60))
        .await;
    let a = agent
        .settled_account("traces", Duration::from_secs(10))
        .await;
    let metrics = agent.metrics().await;
    let corrupt = metric_sum(
        &metrics,
        "otlp_items_dropped_total",
        &["signal=\"traces\"", "reason=\"corrupt\""],
    );
    let got = server.span_ids();
    let missing = acked.iter().filter(|id| !got.contains(id)).count() as u64;
    let fs = server.stats();
    record(&Figures {
        suite: "disk_corruption",
        scenario: "flipped_header_noise_and_directory".into(),
        protocol: "http",
        expected: format!(
            "intact records delivered; the damaged record (100 items) and the noise counted as corrupt ({corrupt} counted, estimated from bytes); 2 files and 1 directory moved to corrupt/"
        ),
        sent: acked.len() as u64,
        delivered: fs.items_accepted,
        // Lost without a count: what is missing beyond what was counted.
        lost: missing.saturating_sub(corrupt),
        duplicated: fs.duplicate_spans,
        dropped_or_failed: a.dropped + a.failed,
        cases: Some(20),
        ..Figures::default()
    });
    let logs = agent.logs();
    assert!(arrived, "not delivered: {fs:?} {a:?}\n{logs}");
    assert_eq!(missing, 100, "only the damaged record is lost: {fs:?}");
    assert!(
        corrupt >= missing,
        "every lost item is counted ({corrupt} counted, {missing} missing)"
    );
    assert_eq!(a.dropped, corrupt, "{a:?}");
    assert_eq!(a.failed, 0, "{a:?}");
    assert_eq!(a.accepted, 0, "the second run accepted nothing: {a:?}");
    assert_eq!(a.recovered, a.sent + a.dropped, "{a:?}");
    let mut aside: Vec<String> = std::fs::read_dir(queue.join("corrupt"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy()[..20].to_owned())
        .collect();
    aside.sort();
    let first = segs[0].file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(
        aside,
        [
            first.clone(),
            "0000000000fffff0.seg".to_owned(),
            "0000000000fffff1.seg".to_owned()
        ]
    );
    for name in [
        first.as_str(),
        "0000000000fffff0.seg",
        "0000000000fffff1.seg",
    ] {
        assert!(
            logs.lines()
                .any(|l| l.contains("moved out of the queue") && l.contains(name)),
            "a log line names {name}:\n{logs}"
        );
    }
    assert!(
        logs.contains("items_estimated"),
        "the estimate is said: {logs}"
    );
    assert!(
        live_segments(&queue).is_empty(),
        "everything delivered or moved aside"
    );
}
