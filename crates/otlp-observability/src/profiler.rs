//! The stage profiler: where the time of an export goes, stage by stage.
//!
//! Each stage keeps a count, a total, a minimum, a maximum and a log-linear
//! histogram of atomic buckets (8 per power of two, so quantiles are within
//! about 12.5%), so recording is a handful of relaxed atomic operations and
//! never allocates or locks.

use std::{
    fmt::{self, Write as _},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use serde::Serialize;

/// A stage of the export path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Time an item or batch waited in the queue.
    QueueWait,
    /// Time spent cutting a batch.
    Batch,
    /// Protobuf encoding.
    Encode,
    /// Compression (gzip, zstd).
    Compress,
    /// One network attempt, until the answer.
    Send,
    /// Back-off waits between attempts.
    RetryWait,
}

/// Per-stage timing statistics, cheap to record from many threads.
///
/// Cloning is cheap; clones share the statistics.
///
/// ```
/// use std::time::Duration;
/// use otlp_observability::{Stage, StageProfiler};
///
/// let profiler = StageProfiler::new();
/// profiler.record(Stage::Encode, Duration::from_micros(120));
/// {
///     let _timer = profiler.time(Stage::Send); // records when dropped
/// }
/// let report = profiler.report();
/// assert_eq!(report.stage(Stage::Encode).count, 1);
/// assert_eq!(report.stage(Stage::Send).count, 1);
/// ```
#[derive(Clone, Debug, Default)]
pub struct StageProfiler {
    stages: Arc<[StageStats; Stage::ALL.len()]>,
}

/// Records the time from its creation to its drop into one stage.
#[derive(Debug)]
#[must_use = "the timer records when dropped; binding it to `_` drops it at once"]
pub struct StageTimer<'a> {
    profiler: &'a StageProfiler,
    stage: Stage,
    start: Instant,
}

/// Statistics of one stage, durations in microseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StageReport {
    /// The stage's name.
    pub stage: &'static str,
    /// Recorded durations.
    pub count: u64,
    /// Their sum.
    pub total_us: f64,
    /// Their mean.
    pub avg_us: f64,
    /// The shortest.
    pub min_us: f64,
    /// The longest.
    pub max_us: f64,
    /// The median (bucket estimate).
    pub p50_us: f64,
    /// The 99th percentile (bucket estimate).
    pub p99_us: f64,
}

/// Statistics of every stage, the JSON body of `/debug/profile`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProfileReport {
    /// One entry per stage, in [`Stage::ALL`] order.
    pub stages: Vec<StageReport>,
}

const SUB_BITS: u32 = 3;
const SUBS: u64 = 1 << SUB_BITS;
const BUCKETS: usize = ((64 - SUB_BITS as usize) + 1) * SUBS as usize;

#[derive(Debug)]
struct StageStats {
    count: AtomicU64,
    total_ns: AtomicU64,
    min_ns: AtomicU64,
    max_ns: AtomicU64,
    buckets: Box<[AtomicU64]>,
}

// === impl Stage ===

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 6] = [
        Stage::QueueWait,
        Stage::Batch,
        Stage::Encode,
        Stage::Compress,
        Stage::Send,
        Stage::RetryWait,
    ];

    /// The stage's fixed name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Stage::QueueWait => "queue_wait",
            Stage::Batch => "batch",
            Stage::Encode => "encode",
            Stage::Compress => "compress",
            Stage::Send => "send",
            Stage::RetryWait => "retry_wait",
        }
    }

    const fn index(self) -> usize {
        match self {
            Stage::QueueWait => 0,
            Stage::Batch => 1,
            Stage::Encode => 2,
            Stage::Compress => 3,
            Stage::Send => 4,
            Stage::RetryWait => 5,
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl StageProfiler ===

impl StageProfiler {
    /// A profiler with no recordings.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one duration of `stage`.
    pub fn record(&self, stage: Stage, elapsed: Duration) {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.stages[stage.index()].record(ns);
    }

    /// Starts timing `stage`; the time is recorded when the timer drops.
    pub fn time(&self, stage: Stage) -> StageTimer<'_> {
        StageTimer {
            profiler: self,
            stage,
            start: Instant::now(),
        }
    }

    /// A snapshot of every stage's statistics.
    pub fn report(&self) -> ProfileReport {
        ProfileReport {
            stages: Stage::ALL
                .iter()
                .map(|s| self.stages[s.index()].report(s.as_str()))
                .collect(),
        }
    }

    /// Forgets every recording.
    pub fn reset(&self) {
        for s in self.stages.iter() {
            s.reset();
        }
    }
}

// === impl StageTimer ===

impl Drop for StageTimer<'_> {
    fn drop(&mut self) {
        self.profiler.record(self.stage, self.start.elapsed());
    }
}

// === impl StageStats ===

impl Default for StageStats {
    fn default() -> Self {
        Self {
            count: AtomicU64::new(0),
            total_ns: AtomicU64::new(0),
            min_ns: AtomicU64::new(u64::MAX),
            max_ns: AtomicU64::new(0),
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl StageStats {
    fn record(&self, ns: u64) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.total_ns.fetch_add(ns, Ordering::Relaxed);
        self.min_ns.fetch_min(ns, Ordering::Relaxed);
        self.max_ns.fetch_max(ns, Ordering::Relaxed);
        if let Some(b) = self.buckets.get(bucket_index(ns)) {
            b.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn reset(&self) {
        self.count.store(0, Ordering::Relaxed);
        self.total_ns.store(0, Ordering::Relaxed);
        self.min_ns.store(u64::MAX, Ordering::Relaxed);
        self.max_ns.store(0, Ordering::Relaxed);
        for b in self.buckets.iter() {
            b.store(0, Ordering::Relaxed);
        }
    }

    fn report(&self, stage: &'static str) -> StageReport {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let count: u64 = counts.iter().sum();
        if count == 0 {
            return StageReport {
                stage,
                ..StageReport::default()
            };
        }
        let total = self.total_ns.load(Ordering::Relaxed);
        let min = self.min_ns.load(Ordering::Relaxed);
        let max = self.max_ns.load(Ordering::Relaxed).max(min);
        let quantile = |q: f64| {
            // The rank of the q-quantile among `count` values, 1-based.
            let rank = ((q * count as f64).ceil() as u64).clamp(1, count);
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    let (lo, hi) = bucket_bounds(i);
                    // The middle of the bucket, kept within what was observed.
                    return (lo + (hi - lo) / 2).clamp(min, max);
                }
            }
            max
        };
        StageReport {
            stage,
            count,
            total_us: us(total),
            avg_us: us(total) / count as f64,
            min_us: us(min),
            max_us: us(max),
            p50_us: us(quantile(0.5)),
            p99_us: us(quantile(0.99)),
        }
    }
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// Values below 8 ns get a bucket each; above, each power of two splits into
/// 8 buckets by the 3 bits after the leading one.
fn bucket_index(v: u64) -> usize {
    if v < SUBS {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros();
    let group = (msb - SUB_BITS + 1) as usize;
    let sub = ((v >> (msb - SUB_BITS)) & (SUBS - 1)) as usize;
    group * SUBS as usize + sub
}

/// The inclusive value range of bucket `i`.
fn bucket_bounds(i: usize) -> (u64, u64) {
    let group = i / SUBS as usize;
    let sub = (i % SUBS as usize) as u64;
    if group == 0 {
        return (sub, sub);
    }
    let shift = (group - 1) as u32;
    let lo = (SUBS + sub) << shift;
    let width = 1u64 << shift;
    (lo, lo.saturating_add(width - 1))
}

// === impl ProfileReport ===

impl ProfileReport {
    /// The report of one stage.
    pub fn stage(&self, stage: Stage) -> &StageReport {
        &self.stages[stage.index()]
    }

    /// The report as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{\"stages\":[]}"))
    }

    /// The report as an aligned text table, one stage per line.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<12} {:>10} {:>14} {:>12} {:>12} {:>12} {:>12} {:>12}",
            "stage", "count", "total_us", "avg_us", "min_us", "max_us", "p50_us", "p99_us"
        );
        for s in &self.stages {
            let _ = writeln!(
                out,
                "{:<12} {:>10} {:>14.1} {:>12.1} {:>12.1} {:>12.1} {:>12.1} {:>12.1}",
                s.stage, s.count, s.total_us, s.avg_us, s.min_us, s.max_us, s.p50_us, s.p99_us
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_and_contain_it() {
        for v in (0..5000u64).chain([u64::MAX, u64::MAX / 3, 1 << 40, (1 << 40) - 1]) {
            let i = bucket_index(v);
            assert!(i < BUCKETS, "{v} -> {i}");
            let (lo, hi) = bucket_bounds(i);
            assert!(lo <= v && v <= hi, "{v} not in bucket {i} = [{lo}, {hi}]");
        }
    }

    #[test]
    fn report_gives_count_total_extremes_and_quantiles() {
        let p = StageProfiler::new();
        for ms in 1..=100u64 {
            p.record(Stage::Send, Duration::from_millis(ms));
        }
        let r = p.report();
        let send = r.stage(Stage::Send);
        assert_eq!(send.count, 100);
        assert_eq!(send.total_us, 5_050_000.0);
        assert_eq!(send.avg_us, 50_500.0);
        assert_eq!(send.min_us, 1000.0);
        assert_eq!(send.max_us, 100_000.0);
        // Within the 12.5% bucket resolution.
        assert!(
            (send.p50_us - 50_000.0).abs() / 50_000.0 < 0.125,
            "{}",
            send.p50_us
        );
        assert!(
            (send.p99_us - 99_000.0).abs() / 99_000.0 < 0.125,
            "{}",
            send.p99_us
        );
        assert_eq!(r.stage(Stage::Encode).count, 0);
    }

    #[test]
    fn timer_records_on_drop_and_reset_forgets() {
        let p = StageProfiler::new();
        drop(p.time(Stage::Compress));
        assert_eq!(p.report().stage(Stage::Compress).count, 1);
        p.reset();
        assert_eq!(p.report().stage(Stage::Compress).count, 0);
    }

    #[test]
    fn json_and_text_name_every_stage() {
        let p = StageProfiler::new();
        p.record(Stage::QueueWait, Duration::from_micros(10));
        let json = p.report().to_json();
        let text = p.report().to_text();
        for s in Stage::ALL {
            assert!(json.contains(&format!("\"stage\":\"{}\"", s.as_str())));
            assert!(text.contains(s.as_str()));
        }
        assert!(json.contains("\"count\":1,\"total_us\":10.0"), "{json}");
    }
}
