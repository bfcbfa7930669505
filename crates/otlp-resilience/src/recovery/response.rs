//! What [`Recovery`](crate::Recovery) answers: merged responses of the parts
//! delivered and the parts that failed, so the caller's accounting stays exact.

use otlp_core::ExportResponse;

/// A response that can absorb the response of another part of the same request.
pub trait Merge {
    /// Folds `other` into `self`.
    fn merge(&mut self, other: Self);
}

/// The answer of [`Recovery`](crate::Recovery) for one request of `N` items.
///
/// The items of the request are accounted exactly once:
/// `N = delivered_items() + failed_items()`. Of the delivered items the
/// server may still have rejected some (partial success): the merged
/// [`ExportResponse`] adds the `rejected` counts of every part. A failed part
/// keeps its error, so the caller counts its items under the error's class
/// (a one-item `TooLarge` part fails as too large, not as lost).
#[derive(Debug)]
pub struct Recovered<R, E> {
    pub(super) response: Option<R>,
    pub(super) delivered: u64,
    pub(super) failed: Vec<FailedPart<E>>,
    pub(super) split: bool,
}

/// A part of a split request that failed for good.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailedPart<E> {
    /// The items it carried.
    pub items: u64,
    /// Why it failed.
    pub error: E,
}

// === impl Merge ===

impl Merge for ExportResponse {
    /// Adds the rejected counts; joins the messages with `"; "`.
    fn merge(&mut self, other: Self) {
        self.rejected += other.rejected;
        if !other.message.is_empty() {
            if !self.message.is_empty() {
                self.message.push_str("; ");
            }
            self.message.push_str(&other.message);
        }
    }
}

impl Merge for () {
    fn merge(&mut self, _other: Self) {}
}

// === impl Recovered ===

impl<R, E> Recovered<R, E> {
    /// The merged response of the delivered parts; `None` when none was delivered.
    pub fn response(&self) -> Option<&R> {
        self.response.as_ref()
    }

    /// The items of the parts the server accepted (a partial success included).
    pub fn delivered_items(&self) -> u64 {
        self.delivered
    }

    /// The parts that failed for good.
    pub fn failed(&self) -> &[FailedPart<E>] {
        &self.failed
    }

    /// The items of the failed parts.
    pub fn failed_items(&self) -> u64 {
        self.failed.iter().map(|p| p.items).sum()
    }

    /// Whether the request was split to get here.
    pub fn was_split(&self) -> bool {
        self.split
    }

    /// The merged response (if any) and the failed parts.
    pub fn into_parts(self) -> (Option<R>, Vec<FailedPart<E>>) {
        (self.response, self.failed)
    }
}
