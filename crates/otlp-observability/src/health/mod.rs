//! Health checks: the [`HealthCheck`] trait, the built-in checks, and the
//! composite [`HealthChecker`] behind `/health`, `/health/live` and
//! `/health/ready`.
//!
//! Liveness answers "is the process responsive; should it be restarted?"
//! (never the queue or the upstream: restarting would lose the queue),
//! readiness answers "can it accept data now?" (queue, disk and memory have
//! room; never the upstream, or one collector outage would take every
//! replica out of its Service at once), and `/health` (for people and
//! scripts) runs every check, the upstream included. Each check is
//! registered for the probes it belongs to.

mod checks;
mod exporter;

pub use self::{
    checks::{DiskCheck, ExporterCheck, MemoryCheck, QueueCheck, QueueLevel},
    exporter::ExporterHealth,
};

use std::{
    collections::BTreeMap,
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::Serialize;

/// The boxed future a [`HealthCheck`] returns, so the trait stays object safe.
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = CheckResult> + Send + 'a>>;

/// How healthy one check, or the whole process, is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Working as intended.
    Healthy,
    /// Working, but close to a limit or recovering; still serves traffic (HTTP 200).
    Degraded,
    /// Not working; the probe fails (HTTP 503).
    Unhealthy,
}

/// One value in a check's details, serialized as a plain JSON value.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Detail {
    /// A number.
    Number(f64),
    /// A whole number.
    Integer(u64),
    /// A flag.
    Bool(bool),
    /// A text.
    Text(String),
}

/// The outcome of one health check.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckResult {
    /// The verdict.
    pub status: HealthStatus,
    /// One sentence saying why, for operators.
    pub message: String,
    /// The measurements behind the verdict.
    pub details: BTreeMap<&'static str, Detail>,
}

/// An asynchronous health check.
///
/// Implementations return a boxed future so that checks of different types
/// can live in one [`HealthChecker`]:
///
/// ```
/// use otlp_observability::{CheckFuture, CheckResult, HealthCheck};
///
/// #[derive(Debug)]
/// struct AlwaysUp;
///
/// impl HealthCheck for AlwaysUp {
///     fn name(&self) -> &str {
///         "always_up"
///     }
///     fn check(&self) -> CheckFuture<'_> {
///         Box::pin(async { CheckResult::healthy("nothing to check") })
///     }
/// }
/// ```
pub trait HealthCheck: Send + Sync + fmt::Debug + 'static {
    /// A short, stable name (the key in `/health`'s JSON).
    fn name(&self) -> &str;
    /// Runs the check.
    fn check(&self) -> CheckFuture<'_>;
}

/// Which probes a check takes part in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// `/health/live` only.
    Liveness,
    /// `/health/ready` only.
    Readiness,
    /// Both probes.
    Both,
    /// Neither probe: only the overall `/health` (the upstream's health).
    Overall,
}

/// A set of health checks run together.
///
/// Every run runs the selected checks concurrently, each bounded by the
/// checker's timeout (a check that does not answer in time is unhealthy).
/// The overall status is the worst of the checks; with no checks it is
/// healthy.
#[derive(Clone, Debug)]
pub struct HealthChecker {
    checks: Vec<(Probe, Arc<dyn HealthCheck>)>,
    timeout: Duration,
}

/// The result of one named check within a [`HealthReport`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NamedResult {
    /// The check's name.
    pub name: String,
    /// Its result.
    #[serde(flatten)]
    pub result: CheckResult,
}

/// The result of running a [`HealthChecker`]: the JSON body of `/health`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HealthReport {
    /// The worst status among the checks.
    pub status: HealthStatus,
    /// Every check that ran, in registration order.
    pub checks: Vec<NamedResult>,
    /// When the report was made, in milliseconds since the Unix epoch.
    pub timestamp_unix_ms: u64,
}

// === impl HealthStatus ===

impl HealthStatus {
    /// The lower-case name used in JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }

    /// Whether a probe passes (healthy or degraded).
    pub const fn is_ok(self) -> bool {
        !matches!(self, HealthStatus::Unhealthy)
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl Detail ===

impl From<f64> for Detail {
    fn from(v: f64) -> Self {
        Detail::Number(v)
    }
}

impl From<u64> for Detail {
    fn from(v: u64) -> Self {
        Detail::Integer(v)
    }
}

impl From<bool> for Detail {
    fn from(v: bool) -> Self {
        Detail::Bool(v)
    }
}

impl From<String> for Detail {
    fn from(v: String) -> Self {
        Detail::Text(v)
    }
}

impl From<&str> for Detail {
    fn from(v: &str) -> Self {
        Detail::Text(v.to_owned())
    }
}

// === impl CheckResult ===

impl CheckResult {
    /// A result with `status` and `message` and no details.
    pub fn new(status: HealthStatus, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            details: BTreeMap::new(),
        }
    }

    /// A healthy result.
    pub fn healthy(message: impl Into<String>) -> Self {
        Self::new(HealthStatus::Healthy, message)
    }

    /// A degraded result.
    pub fn degraded(message: impl Into<String>) -> Self {
        Self::new(HealthStatus::Degraded, message)
    }

    /// An unhealthy result.
    pub fn unhealthy(message: impl Into<String>) -> Self {
        Self::new(HealthStatus::Unhealthy, message)
    }

    /// Adds one detail.
    pub fn with_detail(mut self, key: &'static str, value: impl Into<Detail>) -> Self {
        self.details.insert(key, value.into());
        self
    }
}

// === impl HealthChecker ===

impl HealthChecker {
    /// The default bound on one check's run time.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

    /// An empty checker.
    pub fn new() -> Self {
        Self {
            checks: Vec::new(),
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }

    /// Bounds each check's run time (at least 1 ms).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Adds a check to the readiness probe (and to `/health`).
    pub fn with_check(self, check: impl HealthCheck) -> Self {
        self.with_probe(Probe::Readiness, check)
    }

    /// Adds a check to the given probes (and to `/health`).
    pub fn with_probe(mut self, probe: Probe, check: impl HealthCheck) -> Self {
        self.checks.push((probe, Arc::new(check)));
        self
    }

    /// Adds an already shared check.
    pub fn with_shared(mut self, probe: Probe, check: Arc<dyn HealthCheck>) -> Self {
        self.checks.push((probe, check));
        self
    }

    /// The number of registered checks.
    pub fn len(&self) -> usize {
        self.checks.len()
    }

    /// Whether no check is registered.
    pub fn is_empty(&self) -> bool {
        self.checks.is_empty()
    }

    /// Runs every check (`/health`).
    pub async fn check_all(&self) -> HealthReport {
        self.run(|_| true).await
    }

    /// Runs the liveness checks (`/health/live`).
    pub async fn check_liveness(&self) -> HealthReport {
        self.run(|p| matches!(p, Probe::Liveness | Probe::Both))
            .await
    }

    /// Runs the readiness checks (`/health/ready`).
    pub async fn check_readiness(&self) -> HealthReport {
        self.run(|p| matches!(p, Probe::Readiness | Probe::Both))
            .await
    }

    async fn run(&self, select: impl Fn(Probe) -> bool) -> HealthReport {
        let timeout = self.timeout;
        let runs =
            self.checks
                .iter()
                .filter(|(probe, _)| select(*probe))
                .map(|(_, check)| async move {
                    let result = match tokio::time::timeout(timeout, check.check()).await {
                        Ok(result) => result,
                        Err(_) => CheckResult::unhealthy(format!(
                            "check did not answer within {timeout:?}"
                        )),
                    };
                    NamedResult {
                        name: check.name().to_owned(),
                        result,
                    }
                });
        let checks = futures_util::future::join_all(runs).await;
        let status = checks
            .iter()
            .map(|c| c.result.status)
            .max()
            .unwrap_or(HealthStatus::Healthy);
        HealthReport {
            status,
            checks,
            timestamp_unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                .unwrap_or(0),
        }
    }
}

impl Default for HealthChecker {
    fn default() -> Self {
        Self::new()
    }
}

// === impl HealthReport ===

impl HealthReport {
    /// The HTTP status code of this report: 200 unless unhealthy, then 503.
    pub fn http_status(&self) -> u16 {
        if self.status.is_ok() { 200 } else { 503 }
    }

    /// The report as JSON.
    pub fn to_json(&self) -> String {
        // Serializing plain strings, numbers and maps cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| {
            String::from(r#"{"status":"unhealthy","checks":[],"error":"health report serialization failed"}"#)
        })
    }
}

#[cfg(test)]
mod tests;
