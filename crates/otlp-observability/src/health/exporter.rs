//! Shared export health state: when the last export succeeded and how many
//! have failed since.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use tokio::time::Instant;

/// Export health, shared between the [`Metrics`](crate::Metrics) layer (which
/// records every outcome) and the exporter health check (which reads it).
///
/// Cloning is cheap and every clone sees the same state. Recording is two
/// relaxed atomic stores.
#[derive(Clone, Debug)]
pub struct ExporterHealth {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Reference point for the monotonic timestamps below.
    origin: Instant,
    /// Milliseconds after `origin` of the last success, plus one; 0 = never.
    last_success_mono_ms: AtomicU64,
    /// Unix time of the last success in milliseconds; 0 = never.
    last_success_unix_ms: AtomicU64,
    consecutive_failures: AtomicU64,
    /// Milliseconds after `origin` of the first failure of the current
    /// streak, plus one; 0 = not failing.
    failing_since_mono_ms: AtomicU64,
    total_failures: AtomicU64,
    total_successes: AtomicU64,
}

// === impl ExporterHealth ===

impl ExporterHealth {
    /// A fresh state: no export has succeeded or failed yet.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                origin: Instant::now(),
                last_success_mono_ms: AtomicU64::new(0),
                last_success_unix_ms: AtomicU64::new(0),
                consecutive_failures: AtomicU64::new(0),
                failing_since_mono_ms: AtomicU64::new(0),
                total_failures: AtomicU64::new(0),
                total_successes: AtomicU64::new(0),
            }),
        }
    }

    /// An export succeeded: the failure streak ends.
    pub fn record_success(&self) {
        let mono = duration_ms(self.inner.origin.elapsed()).saturating_add(1);
        self.inner
            .last_success_mono_ms
            .store(mono, Ordering::Relaxed);
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(duration_ms)
            .unwrap_or(0);
        self.inner
            .last_success_unix_ms
            .store(unix, Ordering::Relaxed);
        self.inner.consecutive_failures.store(0, Ordering::Relaxed);
        self.inner.failing_since_mono_ms.store(0, Ordering::Relaxed);
        self.inner.total_successes.fetch_add(1, Ordering::Relaxed);
    }

    /// An export failed.
    pub fn record_failure(&self) {
        let mono = duration_ms(self.inner.origin.elapsed()).saturating_add(1);
        let _ = self.inner.failing_since_mono_ms.compare_exchange(
            0,
            mono,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        self.inner
            .consecutive_failures
            .fetch_add(1, Ordering::Relaxed);
        self.inner.total_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Failed exports since the last success (or since the start).
    pub fn consecutive_failures(&self) -> u64 {
        self.inner.consecutive_failures.load(Ordering::Relaxed)
    }

    /// Successful exports so far.
    pub fn successes(&self) -> u64 {
        self.inner.total_successes.load(Ordering::Relaxed)
    }

    /// Failed exports so far.
    pub fn failures(&self) -> u64 {
        self.inner.total_failures.load(Ordering::Relaxed)
    }

    /// How long ago the last export succeeded, `None` if none has yet.
    pub fn since_last_success(&self) -> Option<Duration> {
        match self.inner.last_success_mono_ms.load(Ordering::Relaxed) {
            0 => None,
            at => {
                let now = duration_ms(self.inner.origin.elapsed());
                Some(Duration::from_millis(now.saturating_sub(at - 1)))
            }
        }
    }

    /// How long exports have been failing without a success in between,
    /// `None` while the last one succeeded (or none was tried).
    pub fn failing_for(&self) -> Option<Duration> {
        match self.inner.failing_since_mono_ms.load(Ordering::Relaxed) {
            0 => None,
            at => {
                let now = duration_ms(self.inner.origin.elapsed());
                Some(Duration::from_millis(now.saturating_sub(at - 1)))
            }
        }
    }

    /// How long this state has existed (the exporter's uptime).
    pub fn uptime(&self) -> Duration {
        self.inner.origin.elapsed()
    }

    /// Unix time of the last success in seconds, `None` if none has yet.
    pub fn last_success_unix_seconds(&self) -> Option<f64> {
        match self.inner.last_success_unix_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(ms as f64 / 1000.0),
        }
    }
}

impl Default for ExporterHealth {
    fn default() -> Self {
        Self::new()
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
