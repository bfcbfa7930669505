//! The load balancer's per-backend series, read from its counters at each
//! scrape: a backend's series exist exactly while it is in the resolved
//! backend set, so the `endpoint` label is bounded by that set.

use std::sync::{Arc, RwLock};

use otlp_core::Signal;
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
};

use crate::names;

/// One backend's counters at a scrape.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BackendSample {
    /// The backend's endpoint URL (the `endpoint` label).
    pub endpoint: String,
    /// Items it accepted.
    pub sent: u64,
    /// Items of parts it failed.
    pub failed: u64,
    /// Items being sent to it now.
    pub in_flight: u64,
    /// Whether its last part was delivered.
    pub up: bool,
}

/// A load balancer's state at a scrape.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BalancerSample {
    /// The backends in the current set.
    pub backends: Vec<BackendSample>,
    /// Items delivered that the retry sends again.
    pub duplicates: u64,
}

type Source = Box<dyn Fn() -> BalancerSample + Send + Sync>;

/// The balancers reporting, by signal.
#[derive(Clone, Default)]
pub(crate) struct BalancerSources(Arc<RwLock<Vec<(Signal, Source)>>>);

impl std::fmt::Debug for BalancerSources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.read().map_or(0, |v| v.len());
        f.debug_struct("BalancerSources")
            .field("sources", &n)
            .finish()
    }
}

impl BalancerSources {
    pub(crate) fn add(&self, signal: Signal, source: Source) {
        self.0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((signal, source));
    }

    /// Every signal's samples (a signal without a balancer has none).
    fn samples(&self) -> Vec<(Signal, BalancerSample)> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(s, f)| (*s, f()))
            .collect()
    }
}

/// `register` strips `_total` (the encoder appends it to counters): the same here.
fn base(name: &'static str) -> &'static str {
    name.strip_suffix("_total").unwrap_or(name)
}

impl Collector for BalancerSources {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let samples = self.samples();
        let per_backend: [(&'static str, &str, MetricType); 4] = [
            (
                names::BACKEND_ITEMS_SENT_TOTAL,
                "Items a load-balancing backend accepted",
                MetricType::Counter,
            ),
            (
                names::BACKEND_ITEMS_FAILED_TOTAL,
                "Items of parts a load-balancing backend failed",
                MetricType::Counter,
            ),
            (
                names::BACKEND_IN_FLIGHT_ITEMS,
                "Items being sent to a load-balancing backend now",
                MetricType::Gauge,
            ),
            (
                names::BACKEND_UP,
                "1 when a load-balancing backend's last part was delivered",
                MetricType::Gauge,
            ),
        ];
        for (k, (name, help, kind)) in per_backend.into_iter().enumerate() {
            let mut family = encoder.encode_descriptor(base(name), help, None, kind)?;
            for (signal, sample) in &samples {
                for b in &sample.backends {
                    let labels = [
                        ("signal", signal.as_str()),
                        ("endpoint", b.endpoint.as_str()),
                    ];
                    let metric = family.encode_family(&labels)?;
                    match k {
                        0 => ConstCounter::new(b.sent).encode(metric)?,
                        1 => ConstCounter::new(b.failed).encode(metric)?,
                        2 => ConstGauge::new(i64::try_from(b.in_flight).unwrap_or(i64::MAX))
                            .encode(metric)?,
                        _ => ConstGauge::new(i64::from(b.up)).encode(metric)?,
                    }
                }
            }
        }
        // Every signal, zero without a balancer: alerts see the series.
        let mut family = encoder.encode_descriptor(
            base(names::ITEMS_DUPLICATED_TOTAL),
            "Items delivered in a load-balanced batch that was then sent again whole",
            None,
            MetricType::Counter,
        )?;
        for signal in Signal::ALL {
            let n: u64 = samples
                .iter()
                .filter(|(s, _)| *s == signal)
                .map(|(_, b)| b.duplicates)
                .sum();
            let labels = [("signal", signal.as_str())];
            ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}
