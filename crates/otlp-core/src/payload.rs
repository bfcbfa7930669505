//! Small traits that let generic layers learn what they need about a request.

/// A request that knows how many telemetry items and bytes it carries.
///
/// Layers such as metrics and adaptive concurrency use this to record sizes
/// without knowing the request type.
pub trait Payload {
    /// The number of items (spans, data points, log records) carried.
    fn items(&self) -> u64;
    /// The encoded size in bytes.
    fn byte_size(&self) -> usize;
    /// A fixed, low-cardinality label for the request kind (e.g. the signal).
    fn label(&self) -> &'static str {
        "request"
    }
}

/// A request that can be split into two smaller requests carrying the same items.
///
/// Recovery from a "too large" answer splits the request and sends each half.
pub trait Split: Payload + Sized {
    /// Splits the request into two non-empty halves, or returns `None` when it
    /// cannot be split any further (one item, or one indivisible unit).
    fn split(&self) -> Option<(Self, Self)>;
}
