//! The agent at a glance, for people: per-signal counters, the queue, the
//! concurrency limit, the upstream's state and last error, the health checks
//! and the last losses. Served by the admin server as `/status.json` (read
//! by `otlp-client top`) and as the self-refreshing HTML page at `/`.
//!
//! The figures come from the same exposition `/metrics` serves, parsed back,
//! so the page, `top` and Prometheus can never disagree.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{HealthReport, HealthStatus, Loss, names};

/// The signals, in display order.
const SIGNALS: [&str; otlp_core::Signal::COUNT] = [
    otlp_core::Signal::Traces.as_str(),
    otlp_core::Signal::Metrics.as_str(),
    otlp_core::Signal::Logs.as_str(),
    otlp_core::Signal::Profiles.as_str(),
];

/// A snapshot of a running agent.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    /// When, in milliseconds since the Unix epoch.
    pub unix_ms: u64,
    /// Per signal, in the order traces, metrics, logs, profiles.
    pub signals: BTreeMap<&'static str, SignalStatus>,
    /// The queue, all signals.
    pub queue: QueueStatus,
    /// Export requests in flight.
    pub in_flight: f64,
    /// The adaptive concurrency limit (requests in flight allowed).
    pub concurrency_limit: f64,
    /// Resident memory, bytes.
    pub memory_bytes: f64,
    /// `memory_limit`, bytes.
    pub memory_limit_bytes: f64,
    /// `up`, `down` or `unknown` (no export attempted yet), from the
    /// exporter health check.
    pub upstream: &'static str,
    /// The exporter check's message (the last error while it fails).
    pub upstream_detail: String,
    /// Every health check, as `/health` reports them.
    pub health: HealthReport,
    /// The most recent losses, newest last.
    pub losses: Vec<Loss>,
}

/// One signal's figures (counters are totals since start).
#[derive(Clone, Debug, Default, Serialize)]
pub struct SignalStatus {
    /// Items accepted into the pipeline.
    pub accepted: f64,
    /// Items delivered upstream.
    pub sent: f64,
    /// Items dropped (all reasons).
    pub dropped: f64,
    /// Items refused at intake (senders were told to retry).
    pub refused: f64,
    /// Items that failed for good.
    pub failed: f64,
    /// Export retries.
    pub retries: f64,
    /// Throttled responses (429, RESOURCE_EXHAUSTED, 503 with a hint).
    pub throttles: f64,
    /// Age of the oldest item not yet delivered, seconds.
    pub oldest_item_age_seconds: f64,
    /// 1 while the last export attempt succeeded.
    pub exporter_up: f64,
    /// The cause of this signal's last loss with one, if any.
    pub last_error: Option<String>,
}

/// The queue's level and capacity.
#[derive(Clone, Debug, Default, Serialize)]
pub struct QueueStatus {
    /// Items queued.
    pub items: f64,
    /// Bytes queued.
    pub bytes: f64,
    /// Item capacity.
    pub capacity_items: f64,
    /// Byte capacity.
    pub capacity_bytes: f64,
    /// The larger of the two fill ratios, 0 to 1.
    pub fill_ratio: f64,
}

// === impl Status ===

impl Status {
    /// Builds the snapshot from a Prometheus text exposition (as
    /// `SelfMetrics::encode_text` makes it), a health report and the recent
    /// losses.
    pub fn new(exposition: &str, health: HealthReport, losses: Vec<Loss>, unix_ms: u64) -> Self {
        let samples = Samples::parse(exposition);
        let mut signals = BTreeMap::new();
        for signal in SIGNALS {
            let s = |name: &str| samples.sum(name, Some(signal));
            let last_error = losses
                .iter()
                .rev()
                .find(|l| l.signal == signal && !l.cause.is_empty())
                .map(|l| l.cause.clone());
            signals.insert(
                signal,
                SignalStatus {
                    accepted: s(names::ITEMS_ACCEPTED_TOTAL),
                    sent: s(names::ITEMS_SENT_TOTAL),
                    dropped: s(names::ITEMS_DROPPED_TOTAL),
                    refused: s(names::ITEMS_REFUSED_TOTAL),
                    failed: s(names::ITEMS_FAILED_TOTAL),
                    retries: s(names::RETRIES_TOTAL),
                    throttles: s(names::THROTTLES_TOTAL),
                    oldest_item_age_seconds: s(names::QUEUE_OLDEST_ITEM_AGE_SECONDS),
                    exporter_up: s(names::EXPORTER_UP),
                    last_error,
                },
            );
        }
        let total = |name: &str| samples.sum(name, None);
        let (items, bytes) = (total(names::QUEUE_ITEMS), total(names::QUEUE_BYTES));
        let (capacity_items, capacity_bytes) = (
            total(names::QUEUE_CAPACITY_ITEMS),
            total(names::QUEUE_CAPACITY_BYTES),
        );
        let ratio = |n: f64, cap: f64| if cap > 0.0 { n / cap } else { 0.0 };
        let exporter = health.checks.iter().find(|c| c.name == "exporter");
        let (upstream, upstream_detail) = match exporter {
            Some(c) if c.result.message.contains("no export attempted") => {
                ("unknown", c.result.message.clone())
            }
            Some(c) if c.result.status == HealthStatus::Unhealthy => {
                ("down", c.result.message.clone())
            }
            Some(c) => ("up", c.result.message.clone()),
            None => ("unknown", String::new()),
        };
        Self {
            unix_ms,
            signals,
            queue: QueueStatus {
                items,
                bytes,
                capacity_items,
                capacity_bytes,
                fill_ratio: ratio(items, capacity_items).max(ratio(bytes, capacity_bytes)),
            },
            in_flight: total(names::IN_FLIGHT_REQUESTS),
            concurrency_limit: total(names::CONCURRENCY_LIMIT),
            memory_bytes: total(names::MEMORY_USAGE_BYTES),
            memory_limit_bytes: total(names::MEMORY_LIMIT_BYTES),
            upstream,
            upstream_detail,
            health,
            losses,
        }
    }

    /// The snapshot as JSON (serializing numbers and strings cannot fail).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The status page: self-contained HTML (no external assets) showing
    /// this snapshot, whose script refreshes it from `/status.json` every
    /// two seconds and shows rates between refreshes.
    #[cfg(feature = "admin")]
    pub fn to_html(&self) -> String {
        crate::status_page::render(self)
    }
}

/// Samples of a text exposition: (name, labels, value).
struct Samples(Vec<(String, BTreeMap<String, String>, f64)>);

impl Samples {
    fn parse(text: &str) -> Self {
        let mut out = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (head, value) = match line.rfind('}') {
                Some(end) => (&line[..=end], line[end + 1..].trim()),
                None => match line.split_once(' ') {
                    Some((h, v)) => (h, v.trim()),
                    None => continue,
                },
            };
            // A timestamp may follow the value.
            let value = value.split_whitespace().next().unwrap_or("");
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let (name, labels) = match head.split_once('{') {
                Some((name, rest)) => (name, parse_labels(rest.trim_end_matches('}'))),
                None => (head, BTreeMap::new()),
            };
            out.push((name.to_owned(), labels, value));
        }
        Self(out)
    }

    /// The sum of `name`'s samples, of one signal's only when `signal` is
    /// given; NaN and infinities count as 0.
    fn sum(&self, name: &str, signal: Option<&str>) -> f64 {
        self.0
            .iter()
            .filter(|(n, labels, _)| {
                n == name && signal.is_none_or(|s| labels.get("signal").is_some_and(|l| l == s))
            })
            .map(|(_, _, v)| if v.is_finite() { *v } else { 0.0 })
            .sum()
    }
}

/// `a="x",b="y\"z"` -> {a: x, b: y"z}.
fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(if escaped == 'n' { '\n' } else { escaped });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.insert(key.trim().trim_start_matches(',').trim().to_owned(), value);
        rest = &after[end..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CheckResult, NamedResult};

    fn health(status: HealthStatus, message: &str) -> HealthReport {
        HealthReport {
            status,
            checks: vec![NamedResult {
                name: "exporter".into(),
                result: CheckResult {
                    status,
                    message: message.into(),
                    details: BTreeMap::new(),
                },
            }],
            timestamp_unix_ms: 0,
        }
    }

    #[test]
    fn figures_are_summed_per_signal_from_the_exposition() {
        let text = "# TYPE otlp_items_dropped_total counter\n\
            otlp_items_dropped_total{signal=\"traces\",reason=\"queue_full\"} 3\n\
            otlp_items_dropped_total{signal=\"traces\",reason=\"evicted\"} 4\n\
            otlp_items_dropped_total{signal=\"logs\",reason=\"evicted\"} 1\n\
            otlp_items_sent_total{signal=\"traces\"} 1e3\n\
            otlp_queue_items{signal=\"traces\"} 5\n\
            otlp_queue_items{signal=\"logs\"} 5\n\
            otlp_queue_capacity_items 20\n\
            otlp_queue_oldest_item_age_seconds{signal=\"traces\"} NaN\n\
            otlp_concurrency_limit{signal=\"traces\"} 8 1700000000\n";
        let loss = Loss {
            unix_ms: 1,
            signal: "traces",
            reason: "retries_exhausted",
            items: 2,
            cause: "connection refused".into(),
        };
        let s = Status::new(
            text,
            health(HealthStatus::Unhealthy, "failing for 12 s"),
            vec![loss],
            9,
        );
        let t = &s.signals["traces"];
        assert_eq!(
            (t.dropped, t.sent, t.oldest_item_age_seconds),
            (7.0, 1000.0, 0.0)
        );
        assert_eq!(s.signals["logs"].dropped, 1.0);
        assert_eq!(t.last_error.as_deref(), Some("connection refused"));
        assert_eq!(s.signals["logs"].last_error, None);
        assert_eq!((s.queue.items, s.queue.fill_ratio), (10.0, 0.5));
        assert_eq!(s.concurrency_limit, 8.0);
        assert_eq!(
            (s.upstream, s.upstream_detail.as_str()),
            ("down", "failing for 12 s")
        );
        let fresh = Status::new(
            "",
            health(HealthStatus::Healthy, "no export attempted yet"),
            vec![],
            0,
        );
        assert_eq!(fresh.upstream, "unknown");
    }

    #[test]
    fn label_values_may_hold_escapes_commas_and_braces() {
        let l = parse_labels(r#"a="x,y",b="q\"}z",c="""#);
        assert_eq!(l["a"], "x,y");
        assert_eq!(l["b"], "q\"}z");
        assert_eq!(l["c"], "");
    }
}
