//! The built-in health checks: exporter, queue saturation, memory and disk space.

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use super::{CheckFuture, CheckResult, HealthCheck, HealthStatus};
use crate::{ExporterHealth, ObservabilityError, SelfMetrics, process::ProcessStats};

/// Exporter health, fed by every export attempt: unhealthy once attempts
/// have failed without a success for [`max_failing`](Self::with_max_failing)
/// (10 s by default, so `/health` turns 503 within 15 s of the first failed
/// attempt while data waits), or after too many consecutive failed attempts;
/// healthy again at the first success.
///
/// Before any export it is healthy (nothing has failed yet); a shorter
/// failing streak is degraded.
#[derive(Clone, Debug)]
pub struct ExporterCheck {
    health: ExporterHealth,
    max_consecutive_failures: u64,
    max_failing: Duration,
}

/// The fill level of a queue and its capacity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueLevel {
    /// Items queued now.
    pub items: u64,
    /// Bytes queued now.
    pub bytes: u64,
    /// Capacity in items (0 = unbounded in this dimension, not checked).
    pub max_items: u64,
    /// Capacity in bytes (0 = not checked).
    pub max_bytes: u64,
}

/// Queue saturation: degraded above `degraded_ratio` of either capacity,
/// unhealthy when full.
pub struct QueueCheck {
    level: Arc<dyn Fn() -> QueueLevel + Send + Sync>,
    degraded_ratio: f64,
}

/// Process memory (RSS) against a limit: degraded above `degraded_ratio`,
/// unhealthy above the limit.
pub struct MemoryCheck {
    limit_bytes: u64,
    degraded_ratio: f64,
    read: Arc<dyn Fn() -> Result<u64, ObservabilityError> + Send + Sync>,
}

/// Free space in the disk queue's directory: degraded below twice the
/// minimum, unhealthy below the minimum or when it cannot be read.
#[derive(Clone, Debug)]
pub struct DiskCheck {
    dir: PathBuf,
    min_free_bytes: u64,
}

// === impl ExporterCheck ===

impl ExporterCheck {
    /// Default number of consecutive failed attempts that makes the exporter
    /// unhealthy whatever their duration.
    pub const DEFAULT_MAX_FAILURES: u64 = 20;
    /// Default duration of a failing streak that makes the exporter unhealthy.
    pub const DEFAULT_MAX_FAILING: Duration = Duration::from_secs(10);

    /// Checks `health` with the default thresholds.
    pub fn new(health: ExporterHealth) -> Self {
        Self {
            health,
            max_consecutive_failures: Self::DEFAULT_MAX_FAILURES,
            max_failing: Self::DEFAULT_MAX_FAILING,
        }
    }

    /// Unhealthy from this many consecutive failed attempts on (at least 1).
    pub fn with_max_consecutive_failures(mut self, n: u64) -> Self {
        self.max_consecutive_failures = n.max(1);
        self
    }

    /// Unhealthy once attempts have failed, with no success, for this long.
    pub fn with_max_failing(mut self, d: Duration) -> Self {
        self.max_failing = d;
        self
    }

    /// Evaluates the check now (the async `check` only wraps this).
    pub fn evaluate(&self) -> CheckResult {
        let failures = self.health.consecutive_failures();
        let since = self.health.since_last_success();
        let failing = self.health.failing_for();
        let result = match failing {
            Some(f) if f >= self.max_failing => CheckResult::unhealthy(format!(
                "export attempts have failed for {}s ({failures} in a row, no success since); check that the collector is reachable (otlp-client diagnose)",
                f.as_secs()
            )),
            Some(_) if failures >= self.max_consecutive_failures => {
                CheckResult::unhealthy(format!(
                    "{failures} consecutive export attempts failed (limit {}); check that the collector is reachable (otlp-client diagnose)",
                    self.max_consecutive_failures
                ))
            }
            Some(_) => CheckResult::degraded(format!(
                "{failures} consecutive export attempts failed, retrying"
            )),
            None if since.is_none() => CheckResult::healthy("no export attempted yet"),
            None => CheckResult::healthy("last export attempt succeeded"),
        };
        let mut result = result
            .with_detail("consecutive_failures", failures)
            .with_detail("successes", self.health.successes())
            .with_detail("failures", self.health.failures());
        if let Some(f) = failing {
            result = result.with_detail("seconds_failing", f.as_secs_f64());
        }
        match since {
            Some(d) => result.with_detail("seconds_since_last_success", d.as_secs_f64()),
            None => result,
        }
    }
}

impl HealthCheck for ExporterCheck {
    fn name(&self) -> &str {
        "exporter"
    }

    fn check(&self) -> CheckFuture<'_> {
        Box::pin(async move { self.evaluate() })
    }
}

// === impl QueueCheck ===

impl QueueCheck {
    /// Default fill ratio from which the queue counts as degraded.
    pub const DEFAULT_DEGRADED_RATIO: f64 = 0.8;

    /// Checks the level that `level` returns each time it is called.
    pub fn new(level: impl Fn() -> QueueLevel + Send + Sync + 'static) -> Self {
        Self {
            level: Arc::new(level),
            degraded_ratio: Self::DEFAULT_DEGRADED_RATIO,
        }
    }

    /// Checks the queue gauges of `metrics` (fed through
    /// [`Observer::queue_depth`](otlp_core::Observer::queue_depth) and
    /// [`SelfMetrics::set_queue_capacity`]).
    pub fn from_metrics(metrics: Arc<SelfMetrics>) -> Self {
        Self::new(move || {
            let (items, bytes, max_items, max_bytes) = metrics.queue_level();
            QueueLevel {
                items,
                bytes,
                max_items,
                max_bytes,
            }
        })
    }

    /// Degraded from this fill ratio on (clamped to 0..=1).
    pub fn with_degraded_ratio(mut self, ratio: f64) -> Self {
        self.degraded_ratio = ratio.clamp(0.0, 1.0);
        self
    }

    /// Evaluates the check now.
    pub fn evaluate(&self) -> CheckResult {
        let level = (self.level)();
        let ratio = |used: u64, max: u64| {
            if max == 0 {
                0.0
            } else {
                used as f64 / max as f64
            }
        };
        let fill = ratio(level.items, level.max_items).max(ratio(level.bytes, level.max_bytes));
        let result = if fill >= 1.0 {
            CheckResult::unhealthy(format!(
                "queue is full ({:.0}%); new data is being dropped or blocked, check the collector or raise the queue limits",
                fill * 100.0
            ))
        } else if fill >= self.degraded_ratio {
            CheckResult::degraded(format!("queue is {:.0}% full", fill * 100.0))
        } else {
            CheckResult::healthy(format!("queue is {:.0}% full", fill * 100.0))
        };
        result
            .with_detail("items", level.items)
            .with_detail("bytes", level.bytes)
            .with_detail("max_items", level.max_items)
            .with_detail("max_bytes", level.max_bytes)
            .with_detail("fill_ratio", fill)
    }
}

impl fmt::Debug for QueueCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueCheck")
            .field("degraded_ratio", &self.degraded_ratio)
            .finish_non_exhaustive()
    }
}

impl HealthCheck for QueueCheck {
    fn name(&self) -> &str {
        "queue"
    }

    fn check(&self) -> CheckFuture<'_> {
        Box::pin(async move { self.evaluate() })
    }
}

// === impl MemoryCheck ===

impl MemoryCheck {
    /// Default usage ratio from which memory counts as degraded.
    pub const DEFAULT_DEGRADED_RATIO: f64 = 0.8;

    /// Checks this process's resident memory against `limit_bytes`.
    pub fn new(limit_bytes: u64) -> Self {
        Self::with_reader(limit_bytes, || ProcessStats::read().map(|s| s.rss_bytes))
    }

    /// Checks the memory that `read` reports against `limit_bytes` (for other
    /// sources, such as a cgroup, and for tests).
    pub fn with_reader(
        limit_bytes: u64,
        read: impl Fn() -> Result<u64, ObservabilityError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            limit_bytes,
            degraded_ratio: Self::DEFAULT_DEGRADED_RATIO,
            read: Arc::new(read),
        }
    }

    /// Degraded from this ratio of the limit on (clamped to 0..=1).
    pub fn with_degraded_ratio(mut self, ratio: f64) -> Self {
        self.degraded_ratio = ratio.clamp(0.0, 1.0);
        self
    }

    /// Evaluates the check now.
    pub fn evaluate(&self) -> CheckResult {
        let used = match (self.read)() {
            Ok(used) => used,
            Err(e) => return CheckResult::degraded(format!("memory usage unknown: {e}")),
        };
        let limit = self.limit_bytes.max(1);
        let ratio = used as f64 / limit as f64;
        let result = if used > self.limit_bytes {
            CheckResult::unhealthy(format!(
                "memory {used} bytes is over the limit of {} bytes; lower the queue or batch sizes, or raise the limit",
                self.limit_bytes
            ))
        } else if ratio >= self.degraded_ratio {
            CheckResult::degraded(format!("memory at {:.0}% of the limit", ratio * 100.0))
        } else {
            CheckResult::healthy(format!("memory at {:.0}% of the limit", ratio * 100.0))
        };
        result
            .with_detail("used_bytes", used)
            .with_detail("limit_bytes", self.limit_bytes)
    }
}

impl fmt::Debug for MemoryCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryCheck")
            .field("limit_bytes", &self.limit_bytes)
            .field("degraded_ratio", &self.degraded_ratio)
            .finish_non_exhaustive()
    }
}

impl HealthCheck for MemoryCheck {
    fn name(&self) -> &str {
        "memory"
    }

    fn check(&self) -> CheckFuture<'_> {
        Box::pin(async move { self.evaluate() })
    }
}

// === impl DiskCheck ===

impl DiskCheck {
    /// Checks that `dir` keeps at least `min_free_bytes` available.
    pub fn new(dir: impl Into<PathBuf>, min_free_bytes: u64) -> Self {
        Self {
            dir: dir.into(),
            min_free_bytes,
        }
    }

    /// Bytes available to this (unprivileged) process in `dir`'s file system.
    ///
    /// # Errors
    ///
    /// [`ObservabilityError::DiskSpace`] when the directory cannot be examined.
    pub fn available_bytes(dir: &Path) -> Result<u64, ObservabilityError> {
        let stat = rustix::fs::statvfs(dir).map_err(|e| ObservabilityError::DiskSpace {
            path: dir.to_owned(),
            source: e.into(),
        })?;
        Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
    }

    /// Evaluates the check now (one `statvfs` call).
    pub fn evaluate(&self) -> CheckResult {
        let free = match Self::available_bytes(&self.dir) {
            Ok(free) => free,
            Err(e) => return CheckResult::unhealthy(e.to_string()),
        };
        let status = if free < self.min_free_bytes {
            HealthStatus::Unhealthy
        } else if free < self.min_free_bytes.saturating_mul(2) {
            HealthStatus::Degraded
        } else {
            HealthStatus::Healthy
        };
        let message = match status {
            HealthStatus::Unhealthy => format!(
                "only {free} bytes free in '{}' (minimum {}); free disk space or move the disk queue",
                self.dir.display(),
                self.min_free_bytes
            ),
            _ => format!("{free} bytes free in '{}'", self.dir.display()),
        };
        CheckResult::new(status, message)
            .with_detail("free_bytes", free)
            .with_detail("min_free_bytes", self.min_free_bytes)
            .with_detail("dir", self.dir.display().to_string())
    }
}

impl HealthCheck for DiskCheck {
    fn name(&self) -> &str {
        "disk"
    }

    fn check(&self) -> CheckFuture<'_> {
        // statvfs is one quick system call; it runs inline.
        Box::pin(async move { self.evaluate() })
    }
}
