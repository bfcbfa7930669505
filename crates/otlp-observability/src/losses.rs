//! The log of losses behind `/debug/losses`: the last dropped or failed
//! batches with when, which signal, how many items, why, and the upstream's
//! last error, so an on-call engineer reads the cause instead of a counter.

use std::{
    collections::VecDeque,
    sync::Mutex,
    time::{SystemTime, UNIX_EPOCH},
};

use otlp_core::Signal;
use serde::Serialize;

/// One loss: items dropped or failed for good.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Loss {
    /// When, in milliseconds since the Unix epoch.
    pub unix_ms: u64,
    /// The signal.
    pub signal: &'static str,
    /// The reason label (as on `otlp_items_dropped_total` / `otlp_items_failed_total`).
    pub reason: &'static str,
    /// Items lost.
    pub items: u64,
    /// The upstream's last error for a failure (empty for a drop), cut to
    /// [`LossLog::MAX_CAUSE`] bytes. Header values never appear in errors.
    pub cause: String,
}

/// A bounded ring of the most recent [`Loss`]es (oldest first).
#[derive(Debug)]
pub struct LossLog {
    cap: usize,
    entries: Mutex<VecDeque<Loss>>,
}

// === impl LossLog ===

impl LossLog {
    /// Default number of losses kept.
    pub const DEFAULT_CAPACITY: usize = 256;
    /// Longest cause kept, in bytes.
    pub const MAX_CAUSE: usize = 1024;

    /// A log keeping the last `cap` losses (at least 1).
    pub fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            entries: Mutex::new(VecDeque::new()),
        }
    }

    /// Records one loss, forgetting the oldest when full.
    pub fn record(&self, signal: Signal, reason: &'static str, items: u64, cause: &str) {
        let mut cut = cause.len().min(Self::MAX_CAUSE);
        while !cause.is_char_boundary(cut) {
            cut -= 1;
        }
        let loss = Loss {
            unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                .unwrap_or(0),
            signal: signal.as_str(),
            reason,
            items,
            cause: cause[..cut].to_owned(),
        };
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() == self.cap {
            entries.pop_front();
        }
        entries.push_back(loss);
    }

    /// The losses kept, oldest first.
    pub fn recent(&self) -> Vec<Loss> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.iter().cloned().collect()
    }

    /// `{"losses": [...], "capacity": N}` for `/debug/losses`.
    pub fn to_json(&self) -> String {
        serde_json::json!({ "capacity": self.cap, "losses": self.recent() }).to_string()
    }
}

impl Default for LossLog {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_losses_with_their_cause_cut_at_a_char_boundary() {
        let log = LossLog::new(2);
        log.record(Signal::Traces, "queue_full", 5, "");
        log.record(Signal::Logs, "permanent", 7, "400 Bad Request: bad span");
        log.record(Signal::Metrics, "retries_exhausted", 9, &"é".repeat(1000));
        let recent = log.recent();
        assert_eq!(recent.len(), 2);
        assert_eq!(recent[0].signal, "logs");
        assert_eq!(recent[0].cause, "400 Bad Request: bad span");
        assert_eq!(recent[1].items, 9);
        assert!(recent[1].cause.len() <= LossLog::MAX_CAUSE);
        let v: serde_json::Value = serde_json::from_str(&log.to_json()).unwrap();
        assert_eq!(v["losses"][1]["reason"], "retries_exhausted");
        assert_eq!(v["capacity"], 2);
    }
}
