//! Connectivity diagnosis for `otlp-client diagnose`: DNS, TCP per address,
//! TLS handshake, and an OTLP probe, each with a verdict and a fix.
//!
//! `mod.rs` holds the report types and the order of the steps; `steps.rs`
//! runs the endpoint, DNS, TCP and OTLP probe steps and words their fixes;
//! `tls.rs` (feature `tls`) the handshake and the certificate description.

use std::{fmt, time::Duration};

use tokio::time::Instant;

use crate::{Protocol, TlsConfig};

mod steps;
#[cfg(feature = "tls")]
mod tls;

pub use self::steps::protocol_mismatch_hint;

/// The result of [`diagnose`]: every step that ran, in order.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Diagnosis {
    /// The endpoint as given.
    pub endpoint: String,
    /// The protocol probed.
    pub protocol: Protocol,
    /// The steps, in the order they ran.
    pub steps: Vec<Step>,
}

/// One step of the diagnosis.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Step {
    /// What was checked.
    pub kind: StepKind,
    /// What it was checked against (host, address, endpoint).
    pub target: String,
    /// The outcome.
    pub verdict: Verdict,
    /// How long it took, in milliseconds.
    pub latency_ms: Option<f64>,
    /// What was observed.
    pub detail: String,
    /// What to do about it (absent when nothing needs doing).
    pub fix: Option<String>,
}

/// The kinds of step, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// The endpoint URL itself.
    Endpoint,
    /// Name resolution.
    Dns,
    /// TCP connect to one address.
    Tcp,
    /// TLS handshake.
    Tls,
    /// An empty OTLP export over the chosen protocol.
    OtlpProbe,
}

/// A step's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Works.
    Pass,
    /// Works, with something worth knowing.
    Warn,
    /// Fails; see the fix.
    Fail,
    /// Not run because an earlier step failed.
    Skipped,
}

/// Diagnoses the path to an OTLP endpoint.
///
/// Runs DNS (all addresses), a TCP connect per address with latency, the TLS
/// handshake for `https://` (certificate subject, issuer, expiry, name match),
/// and an empty export over `protocol`. Never fails: every problem is a step
/// with verdict [`Verdict::Fail`] and a fix.
///
/// # Cancel safety
///
/// Dropping the future abandons the probes; nothing is left running.
pub async fn diagnose(
    endpoint: &str,
    protocol: Protocol,
    tls: &TlsConfig,
    timeout: Duration,
) -> Diagnosis {
    let mut d = Diagnosis {
        endpoint: endpoint.to_owned(),
        protocol,
        steps: Vec::new(),
    };
    let Some((uri, host, port)) = steps::endpoint(&mut d, endpoint, protocol, tls) else {
        return d;
    };
    let Some(addrs) = steps::dns(&mut d, &host, port, timeout).await else {
        d.skip_rest(&uri);
        return d;
    };
    let Some(stream) = steps::tcp(&mut d, addrs, timeout).await else {
        d.skip_rest(&uri);
        return d;
    };
    if uri.scheme_str() == Some("https") {
        // Without the `tls` feature an https:// endpoint already failed the
        // endpoint step, so only a build with it gets here.
        #[cfg(feature = "tls")]
        let secured = tls::handshake(&mut d, stream, &host, protocol, tls, timeout).await;
        #[cfg(not(feature = "tls"))]
        let secured = {
            drop(stream);
            false
        };
        if !secured {
            d.record(Step::new(
                StepKind::OtlpProbe,
                &uri,
                Verdict::Skipped,
                "tls failed",
            ));
            return d;
        }
    } else {
        drop(stream);
    }
    steps::probe(&mut d, endpoint, &uri, protocol, tls, timeout).await;
    d
}

// === impl Diagnosis ===

impl Diagnosis {
    /// Whether every step passed (warnings allowed).
    pub fn is_healthy(&self) -> bool {
        !self.steps.is_empty()
            && self
                .steps
                .iter()
                .all(|s| matches!(s.verdict, Verdict::Pass | Verdict::Warn))
    }

    /// The first failed step, if any.
    pub fn first_failure(&self) -> Option<&Step> {
        self.steps.iter().find(|s| s.verdict == Verdict::Fail)
    }

    /// The diagnosis as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    fn record(&mut self, step: Step) {
        self.steps.push(step);
    }

    /// Marks the steps after a failed connection as skipped.
    fn skip_rest(&mut self, uri: &http::Uri) {
        if uri.scheme_str() == Some("https") {
            self.record(Step::new(
                StepKind::Tls,
                uri,
                Verdict::Skipped,
                "no connection",
            ));
        }
        self.record(Step::new(
            StepKind::OtlpProbe,
            uri,
            Verdict::Skipped,
            "no connection",
        ));
    }
}

// === impl Step ===

impl Step {
    /// A step with its outcome and what was observed; no latency, no fix.
    fn new(
        kind: StepKind,
        target: impl fmt::Display,
        verdict: Verdict,
        detail: impl Into<String>,
    ) -> Self {
        Step {
            kind,
            target: target.to_string(),
            verdict,
            latency_ms: None,
            detail: detail.into(),
            fix: None,
        }
    }

    /// The time since `start` as the step's latency.
    fn timed(mut self, start: Instant) -> Self {
        self.latency_ms = Some(start.elapsed().as_secs_f64() * 1000.0);
        self
    }

    /// What to do about it.
    fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = match self.verdict {
            Verdict::Pass => "PASS",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
            Verdict::Skipped => "SKIP",
        };
        let kind = match self.kind {
            StepKind::Endpoint => "endpoint",
            StepKind::Dns => "dns",
            StepKind::Tcp => "tcp",
            StepKind::Tls => "tls",
            StepKind::OtlpProbe => "otlp",
        };
        write!(f, "[{verdict}] {kind:<8} {}", self.target)?;
        if let Some(ms) = self.latency_ms {
            write!(f, " ({ms:.1} ms)")?;
        }
        write!(f, "\n         {}", self.detail)?;
        if let Some(fix) = &self.fix {
            write!(f, "\n         fix: {fix}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "diagnosis of {} ({})",
            self.endpoint,
            self.protocol.as_str()
        )?;
        for step in &self.steps {
            writeln!(f, "{step}")?;
        }
        write!(
            f,
            "result: {}",
            if self.is_healthy() {
                "healthy"
            } else {
                "problems found"
            }
        )
    }
}
