//! The disk queue: restart delivery; recovery from flipped bytes (payload and
//! header), an overwritten length, a torn record, garbage and files that are
//! no segment (counted, moved to `corrupt/`); a full quota; and at-least-once
//! delivery across `kill -9`.
#![cfg(feature = "disk-queue")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::BTreeSet,
    io::{BufRead, Write},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest, trace::v1::Span,
};
use otlp_core::{Batch, DropReason, ExportResponse, Signal};
use otlp_pipeline::{
    BatchConfig, DiskQueueConfig, FsyncPolicy, Group, Item, Overflow, Pipeline, PipelineConfig,
    QueueConfig, Stats,
};
use prost::Message;

mod common;

use common::{TestError, assert_adds_up, stalled};

/// A span whose encoded size does not depend on `i`, so records have equal sizes.
fn item(i: u64) -> Item {
    let span = Span {
        name: format!("span-{i:08}"),
        trace_id: vec![7; 16],
        ..Default::default()
    };
    Item::new(
        Signal::Traces,
        Group::resource(b"\x0a\x00", ""),
        Group::scope(b"\x0a\x01s", ""),
        Bytes::from(span.encode_to_vec()),
        1,
    )
}

fn names(b: &Batch) -> Vec<u64> {
    let r = ExportTraceServiceRequest::decode(b.bytes().clone()).unwrap();
    r.resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .map(|s| s.name.trim_start_matches("span-").parse::<u64>().unwrap())
        .collect()
}

fn config(dir: &Path, batch: u64, quota: u64, overflow: Overflow) -> PipelineConfig {
    PipelineConfig {
        batch: BatchConfig {
            max_batch_size: batch,
            max_batch_bytes: 1024 * 1024,
            batch_timeout: Duration::from_secs(60),
        },
        queue: QueueConfig {
            max_items: 100_000,
            max_bytes: 8 * 1024 * 1024,
            overflow,
            persistent: Some(DiskQueueConfig {
                dir: dir.to_owned(),
                max_bytes: quota,
                fsync: FsyncPolicy::Never,
            }),
        },
        workers: 1,
    }
}

type Seen = Arc<Mutex<Vec<u64>>>;

fn recording() -> (
    Seen,
    impl tower::Service<
        Batch,
        Response = ExportResponse,
        Error = TestError,
        Future = impl Future<Output = Result<ExportResponse, TestError>> + Send,
    > + Clone
    + Send
    + 'static,
) {
    let seen: Seen = Arc::default();
    let svc = {
        let seen = seen.clone();
        tower::service_fn(move |b: Batch| {
            seen.lock().unwrap().extend(names(&b));
            async { Ok::<_, TestError>(ExportResponse::success()) }
        })
    };
    (seen, svc)
}

/// Writes `batches` batches of `per` items with a dead collector and shuts down,
/// leaving them on disk.
async fn leave_on_disk(dir: &Path, batches: u64, per: u64) {
    let p = Pipeline::builder(config(dir, per, 1 << 30, Overflow::DropNewest))
        .build(stalled())
        .unwrap();
    let tx = p.sender();
    for i in 0..batches * per {
        tx.try_send(item(i)).unwrap();
    }
    let report = p.shutdown(Duration::from_millis(50)).await;
    assert_eq!(report.left_queued, batches * per);
    assert_eq!(report.dropped, 0);
    assert_adds_up(&report.stats);
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

async fn deliver_all(dir: &Path) -> (Vec<u64>, Stats) {
    let (seen, svc) = recording();
    let p = Pipeline::builder(config(dir, 10, 1 << 30, Overflow::DropNewest))
        .build(svc)
        .unwrap();
    tokio::time::timeout(Duration::from_secs(30), p.flush())
        .await
        .unwrap();
    let report = p.shutdown(Duration::from_secs(1)).await;
    assert_adds_up(&report.stats);
    let got = seen.lock().unwrap().clone();
    (got, report.stats)
}

#[tokio::test]
async fn restart_delivers_what_the_last_run_left_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    leave_on_disk(dir.path(), 5, 10).await;
    let (got, stats) = deliver_all(dir.path()).await;
    assert_eq!(got, (0..50).collect::<Vec<_>>());
    let t = stats.signal(Signal::Traces);
    assert_eq!((t.recovered, t.sent, t.queued_items), (50, 50, 0));
    assert!(
        segments(dir.path()).is_empty(),
        "acknowledged segments are deleted"
    );
}

#[tokio::test]
async fn flipped_byte_skips_one_record_and_counts_it_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    leave_on_disk(dir.path(), 5, 10).await;
    let segs = segments(dir.path());
    assert_eq!(segs.len(), 1);
    let mut data = std::fs::read(&segs[0]).unwrap();
    let record = data.len() / 5;
    assert_eq!(data.len() % 5, 0, "records have equal sizes");
    // A byte in the payload of the third record.
    data[2 * record + 25 + 7] ^= 0x40;
    std::fs::write(&segs[0], &data).unwrap();

    let (got, stats) = deliver_all(dir.path()).await;
    let want: Vec<u64> = (0..20).chain(30..50).collect();
    assert_eq!(got, want);
    let t = stats.signal(Signal::Traces);
    assert_eq!(t.dropped(DropReason::Corrupt), 10);
    assert_eq!(t.sent, 40);
}

#[tokio::test]
async fn truncated_segment_recovers_intact_records_and_counts_the_torn_one() {
    let dir = tempfile::tempdir().unwrap();
    leave_on_disk(dir.path(), 5, 10).await;
    let segs = segments(dir.path());
    let len = std::fs::metadata(&segs[0]).unwrap().len();
    let record = len / 5;
    // Cut in the middle of the fourth record's payload.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&segs[0])
        .unwrap();
    f.set_len(3 * record + 30).unwrap();
    drop(f);

    let (got, stats) = deliver_all(dir.path()).await;
    assert_eq!(got, (0..30).collect::<Vec<_>>());
    let t = stats.signal(Signal::Traces);
    assert_eq!(t.dropped(DropReason::Corrupt), 10);
    assert_eq!(t.sent, 30);
}

/// The files in the `corrupt/` folder recovery moves unusable segments to.
fn moved_aside(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir.join("corrupt")) {
        Ok(rd) => rd.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

/// Leaves 12 records of 10 items in one segment, lets `damage` change its
/// bytes (given the record size), restarts, and returns what was delivered.
async fn damaged_restart(
    damage: impl FnOnce(&mut Vec<u8>, usize),
) -> (PathBuf, Vec<u64>, Stats, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    leave_on_disk(dir.path(), 12, 10).await;
    let segs = segments(dir.path());
    assert_eq!(segs.len(), 1);
    let mut data = std::fs::read(&segs[0]).unwrap();
    assert_eq!(data.len() % 12, 0, "records have equal sizes");
    let record = data.len() / 12;
    damage(&mut data, record);
    std::fs::write(&segs[0], &data).unwrap();
    let (got, stats) = deliver_all(dir.path()).await;
    (segs[0].clone(), got, stats, dir)
}

#[tokio::test]
async fn a_flipped_header_byte_loses_only_its_record_and_counts_it() {
    // The item count of the second record (bytes 8..16 of its header).
    let (seg, got, stats, dir) = damaged_restart(|d, r| d[r + 9] ^= 0x01).await;
    let want: Vec<u64> = (0..10).chain(20..120).collect();
    assert_eq!(
        got, want,
        "the 11 intact records after the damage are delivered"
    );
    let t = stats.signal(Signal::Traces);
    // Estimated from bytes: the damaged record is as large as the others.
    assert_eq!(t.dropped(DropReason::Corrupt), 10, "{t:?}");
    assert_eq!(t.recovered, 120);
    assert_eq!(stats.corrupt_records, 1);
    assert!(
        segments(dir.path()).is_empty(),
        "no damaged segment is left live"
    );
    let aside = moved_aside(dir.path());
    assert_eq!(aside.len(), 1, "{aside:?}");
    let name = seg.file_name().unwrap().to_str().unwrap();
    assert!(
        aside[0]
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with(name)
    );
}

#[tokio::test]
async fn a_length_of_all_ones_is_passed_and_counted() {
    let (_, got, stats, dir) = damaged_restart(|d, r| {
        d[2 * r + 4..2 * r + 8].copy_from_slice(&[0xFF; 4]);
    })
    .await;
    let want: Vec<u64> = (0..20).chain(30..120).collect();
    assert_eq!(got, want);
    let t = stats.signal(Signal::Traces);
    assert_eq!(t.dropped(DropReason::Corrupt), 10, "{t:?}");
    assert_eq!(moved_aside(dir.path()).len(), 1);
}

#[tokio::test]
async fn a_damaged_payload_is_counted_exactly_and_the_segment_moved_aside() {
    let (_, got, stats, dir) = damaged_restart(|d, r| d[5 * r + 40] ^= 0x40).await;
    let want: Vec<u64> = (0..50).chain(60..120).collect();
    assert_eq!(got, want);
    assert_eq!(
        stats.signal(Signal::Traces).dropped(DropReason::Corrupt),
        10
    );
    assert_eq!(stats.corrupt_records, 0, "nothing had to be estimated");
    assert_eq!(moved_aside(dir.path()).len(), 1);
    // The next start finds nothing to count again.
    let (got, stats) = deliver_all(dir.path()).await;
    assert!(got.is_empty());
    assert_eq!(stats.total().dropped_total(), 0);
}

#[tokio::test]
async fn garbage_a_directory_and_a_huge_file_named_like_segments_are_counted_and_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    leave_on_disk(dir.path(), 5, 10).await;
    let intact = segments(dir.path());
    assert_eq!(intact.len(), 1);
    // Pseudo-random bytes, an empty file, a directory, a sparse 300 MiB file.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let noise: Vec<u8> = (0..5000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(dir.path().join("00000000000000a0.seg"), &noise).unwrap();
    std::fs::write(dir.path().join("00000000000000a1.seg"), b"").unwrap();
    std::fs::create_dir(dir.path().join("00000000000000a2.seg")).unwrap();
    std::fs::File::create(dir.path().join("00000000000000a3.seg"))
        .unwrap()
        .set_len(300 << 20)
        .unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"not a segment").unwrap();

    let (got, stats) = deliver_all(dir.path()).await;
    assert_eq!(
        got,
        (0..50).collect::<Vec<_>>(),
        "the intact segment is delivered"
    );
    let t = stats.signal(Signal::Traces);
    // 5000 noise bytes and 300 MiB at the intact records' bytes per item.
    assert!(t.dropped(DropReason::Corrupt) > 5000 / 200, "{t:?}");
    assert_eq!(t.recovered, 50 + t.dropped(DropReason::Corrupt));
    assert_eq!(
        stats.corrupt_records, 3,
        "noise, directory, huge file: {stats:?}"
    );
    let mut aside: Vec<String> = moved_aside(dir.path())
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy()[..20].to_owned())
        .collect();
    aside.sort();
    assert_eq!(
        aside,
        [
            "00000000000000a0.seg",
            "00000000000000a2.seg",
            "00000000000000a3.seg"
        ]
    );
    assert!(
        segments(dir.path()).is_empty(),
        "nothing unusable stays live"
    );
    assert!(
        dir.path().join("notes.txt").exists(),
        "other files are left alone"
    );

    // New data still flows through the same directory.
    let (seen, svc) = recording();
    let p = Pipeline::builder(config(dir.path(), 10, 1 << 30, Overflow::DropNewest))
        .build(svc)
        .unwrap();
    for i in 0..10 {
        p.sender().try_send(item(i)).unwrap();
    }
    p.flush().await;
    assert_eq!(seen.lock().unwrap().len(), 10);
}

#[tokio::test]
async fn full_quota_is_a_counted_drop_and_the_queue_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let seen: Seen = Arc::default();
    let svc = {
        let (gate, seen) = (gate.clone(), seen.clone());
        tower::service_fn(move |b: Batch| {
            let (gate, seen) = (gate.clone(), seen.clone());
            async move {
                gate.acquire().await.unwrap().forget();
                seen.lock().unwrap().extend(names(&b));
                Ok::<_, TestError>(ExportResponse::success())
            }
        })
    };
    let p = Pipeline::builder(config(dir.path(), 10, 8192, Overflow::DropNewest))
        .build(svc)
        .unwrap();
    let tx = p.sender();
    // Far more than 8 KiB of batches while the collector is down.
    for i in 0..1000 {
        let _ = tx.try_send(item(i));
    }
    tx.commit();
    let s = p.stats();
    let full = s.signal(Signal::Traces).dropped(DropReason::DiskFull);
    assert!(full > 0, "the quota filled up: {s:?}");
    let on_disk: u64 = segments(dir.path())
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(on_disk <= 8192, "{on_disk} bytes on disk");
    assert_adds_up(&s);

    // The collector comes back: everything kept is delivered, and new data flows.
    gate.add_permits(10_000);
    tokio::time::timeout(Duration::from_secs(30), p.flush())
        .await
        .unwrap();
    for i in 1000..1100 {
        tx.try_send(item(i)).unwrap();
    }
    tokio::time::timeout(Duration::from_secs(30), p.flush())
        .await
        .unwrap();
    let s = p.stats();
    let t = s.signal(Signal::Traces);
    assert_eq!(t.sent + full, 1100);
    assert_eq!(seen.lock().unwrap().len() as u64, t.sent);
    assert_adds_up(&s);
}

#[tokio::test]
async fn block_policy_keeps_batches_in_memory_while_the_disk_is_full() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(
        dir.path(),
        10,
        4096,
        Overflow::Block {
            deadline: Duration::from_millis(5),
        },
    );
    c.queue.max_items = 200;
    let p = Pipeline::builder(c).build(stalled()).unwrap();
    let tx = p.sender();
    let mut timeouts = 0;
    for i in 0..400 {
        if tx.send(item(i)).await.is_err() {
            timeouts += 1;
        }
    }
    let s = p.stats();
    let t = s.signal(Signal::Traces);
    assert_eq!(
        t.dropped(DropReason::DiskFull),
        0,
        "block never drops for a full disk"
    );
    assert_eq!(t.dropped(DropReason::BlockTimeout), timeouts);
    assert!(timeouts > 0);
    assert_adds_up(&s);
}

// === kill -9 ===

const CHILD_ENV: &str = "OTLP_PIPELINE_TEST_CHILD_DIR";
const TEST_NAME: &str = "disk_queue_delivers_every_acknowledged_item_after_sigkill";

/// The child role: produce numbered spans forever, commit every 50 and print
/// `ACK n` (all items up to n are on disk), delivering to a slow "collector"
/// that writes the numbers it got to `delivered.txt`.
fn child(dir: PathBuf) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let out = Arc::new(Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("delivered.txt"))
                .unwrap(),
        ));
        let svc = tower::service_fn(move |b: Batch| {
            let out = out.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(2)).await;
                let mut text = String::new();
                for n in names(&b) {
                    text.push_str(&format!("{n}\n"));
                }
                out.lock().unwrap().write_all(text.as_bytes()).unwrap();
                Ok::<_, TestError>(ExportResponse::success())
            }
        });
        let c = config(
            &dir.join("queue"),
            50,
            64 * 1024,
            Overflow::Block {
                deadline: Duration::from_secs(30),
            },
        );
        let p = Pipeline::builder(c).build(svc).unwrap();
        let tx = p.sender();
        let mut stdout = std::io::stdout();
        // Bounded: the parent kills us long before this ends.
        for i in 0..2_000_000u64 {
            tx.send(item(i)).await.unwrap();
            if i % 50 == 49 {
                // Wait (bounded) until everything is on disk, not just in memory.
                let mut tries = 0;
                while tx.commit() > 0 && tries < 10_000 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    tries += 1;
                }
                assert_eq!(tx.commit(), 0, "the disk never freed up");
                writeln!(stdout, "ACK {i}").unwrap();
                stdout.flush().unwrap();
            }
        }
    });
}

#[test]
fn disk_queue_delivers_every_acknowledged_item_after_sigkill() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(PathBuf::from(dir));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut proc = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = proc.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::sync_channel::<u64>(1024);
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(n) = line.strip_prefix("ACK ")
                && tx.send(n.trim().parse().unwrap()).is_err()
            {
                break;
            }
        }
    });
    let mut acked = None;
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(n) => {
                acked = Some(n);
                if n >= 2000 {
                    break;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    // SIGKILL mid-stream.
    proc.kill().unwrap();
    proc.wait().unwrap();
    drop(rx);
    reader.join().unwrap();
    let acked = acked.expect("the child acknowledged items before it was killed");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (after, stats) = rt.block_on(deliver_all(&dir.path().join("queue")));
    let before: Vec<u64> = std::fs::read_to_string(dir.path().join("delivered.txt"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect();
    let all: BTreeSet<u64> = before.iter().chain(&after).copied().collect();
    let missing: Vec<u64> = (0..=acked).filter(|n| !all.contains(n)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged items lost, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    let duplicates = before.len() + after.len() - all.len();
    assert_eq!(stats.total().dropped(DropReason::Corrupt), 0, "{stats:?}");
    // Duplicates are allowed (at-least-once); report how many for the record.
    writeln!(
        std::io::stderr(),
        "acked {acked}, delivered before kill {}, after restart {}, duplicates {duplicates}",
        before.len(),
        after.len()
    )
    .unwrap();
}

/// A profiles request (hand-encoded): one resource, one scope, `n` profiles
/// with ids `id..id+n`, and a dictionary whose one string is `tag`.
fn profiles_request(id: u8, n: u8, tag: &str) -> Bytes {
    fn len(out: &mut Vec<u8>, field: u8, body: &[u8]) {
        assert!(body.len() < 128);
        out.push(field << 3 | 2);
        out.push(body.len() as u8);
        out.extend_from_slice(body);
    }
    let mut scope = Vec::new();
    for i in 0..n {
        let mut profile = Vec::new();
        len(&mut profile, 7, &[id + i; 16]); // profile_id
        len(&mut scope, 2, &profile);
    }
    let mut resource = Vec::new();
    len(&mut resource, 2, &scope);
    let mut dictionary = Vec::new();
    len(&mut dictionary, 5, tag.as_bytes()); // string_table
    let mut out = Vec::new();
    len(&mut out, 1, &resource);
    len(&mut out, 2, &dictionary);
    Bytes::from(out)
}

#[tokio::test]
async fn profiles_requests_read_back_from_disk_as_profiles_each_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let sent = [
        profiles_request(1, 2, "first"),
        profiles_request(3, 1, "second"),
    ];
    let p = Pipeline::builder(config(dir.path(), 100, 1 << 30, Overflow::DropNewest))
        .build(stalled())
        .unwrap();
    let tx = p.sender();
    for bytes in &sent {
        let batch = Batch::from_received(Signal::Profiles, bytes.clone()).unwrap();
        tx.admit_request(batch).await.unwrap();
    }
    let report = p.shutdown(Duration::from_millis(50)).await;
    assert_eq!(report.left_queued, 3);

    let got: Arc<Mutex<Vec<Batch>>> = Arc::default();
    let svc = {
        let got = got.clone();
        tower::service_fn(move |b: Batch| {
            got.lock().unwrap().push(b);
            async { Ok::<_, TestError>(ExportResponse::success()) }
        })
    };
    let p = Pipeline::builder(config(dir.path(), 100, 1 << 30, Overflow::DropNewest))
        .build(svc)
        .unwrap();
    tokio::time::timeout(Duration::from_secs(30), p.flush())
        .await
        .unwrap();
    let report = p.shutdown(Duration::from_secs(1)).await;
    assert_adds_up(&report.stats);
    let s = report.stats.signal(Signal::Profiles);
    assert_eq!((s.recovered, s.sent), (3, 3));
    let got = got.lock().unwrap();
    // Never joined (their dictionaries would merge): each request as it came.
    let bytes: Vec<&Bytes> = got.iter().map(Batch::bytes).collect();
    assert_eq!(bytes, sent.iter().collect::<Vec<_>>());
    assert!(got.iter().all(|b| b.signal() == Signal::Profiles));
}
