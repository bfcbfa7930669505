//! The intake byte budget: every request body, gRPC message buffer and
//! decompression output reserves its bytes here *before* it allocates them,
//! so what senders can make the receivers hold is bounded by one number
//! however many connections, streams or gzip bombs they open.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use bytes::Bytes;

/// A byte budget shared by receivers (clone it to share).
///
/// Reservations are taken before memory is allocated and given back when the
/// request has been answered, so at any time the bytes held for requests
/// being received, decompressed or validated are at most [`limit`](Self::limit)
/// (plus what HTTP/2 flow control lets a connection have in flight, at most
/// its 4 MiB window). When the budget is spent a request is answered with
/// back-pressure (gRPC `UNAVAILABLE` with `RetryInfo`, HTTP 503 with
/// `Retry-After`); a request that could never fit is refused as too large.
///
/// ```
/// use otlp_transport::IntakeBudget;
///
/// let budget = IntakeBudget::new(64 << 20);
/// assert_eq!(budget.limit(), 64 << 20);
/// assert_eq!(budget.used(), 0);
/// ```
#[derive(Clone, Debug)]
pub struct IntakeBudget {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    limit: usize,
    used: AtomicUsize,
}

/// Bytes taken from an [`IntakeBudget`], given back on drop.
#[derive(Debug)]
pub(crate) struct Reservation {
    budget: IntakeBudget,
    bytes: usize,
}

/// Why a reservation could not grow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Spent {
    /// Other requests hold the budget now: retry later.
    Busy { limit: usize },
    /// This request alone needs more than the whole budget.
    TooLarge { limit: usize },
}

/// Collects a body or message from its frames under a [`Reservation`]: a
/// body that arrives in one frame is kept as that frame (no copy); one in
/// several frames is copied into a buffer that grows as data arrives (never
/// to a length only declared), each growth reserved first.
#[derive(Debug)]
pub(crate) struct Collect {
    reservation: Reservation,
    /// The expected total, when declared (caps the growth steps).
    expected: Option<usize>,
    whole: Option<Bytes>,
    joined: Option<Vec<u8>>,
}

// === impl IntakeBudget ===

impl IntakeBudget {
    /// Default budget of a receiver built without one (128 MiB, a quarter of
    /// the agent's default `memory_limit`).
    pub const DEFAULT_BYTES: usize = 128 << 20;

    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                limit,
                used: AtomicUsize::new(0),
            }),
        }
    }

    /// The most bytes reservations may hold at once.
    pub fn limit(&self) -> usize {
        self.inner.limit
    }

    /// Bytes reserved now.
    pub fn used(&self) -> usize {
        self.inner.used.load(Ordering::Relaxed)
    }

    /// An empty reservation that grows with [`Reservation::grow`].
    pub(crate) fn reservation(&self) -> Reservation {
        Reservation {
            budget: self.clone(),
            bytes: 0,
        }
    }

    fn take(&self, n: usize, already: usize) -> Result<(), Spent> {
        let limit = self.inner.limit;
        if already.saturating_add(n) > limit {
            return Err(Spent::TooLarge { limit });
        }
        self.inner
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|&u| u <= limit)
            })
            .map(|_| ())
            .map_err(|_| Spent::Busy { limit })
    }

    fn give_back(&self, n: usize) {
        self.inner.used.fetch_sub(n, Ordering::AcqRel);
    }
}

impl PartialEq for IntakeBudget {
    /// The same budget (clones of one), not merely an equal limit.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for IntakeBudget {}

// === impl Reservation ===

impl Reservation {
    /// Takes `n` more bytes, or none.
    pub(crate) fn grow(&mut self, n: usize) -> Result<(), Spent> {
        self.budget.take(n, self.bytes)?;
        self.bytes += n;
        Ok(())
    }

    /// Gives back `n` bytes (at most what is held).
    pub(crate) fn shrink(&mut self, n: usize) {
        let n = n.min(self.bytes);
        self.budget.give_back(n);
        self.bytes -= n;
    }

    /// Bytes held.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
    }
}

// === impl Spent ===

impl Spent {
    /// The answer's wording: what is spent, and what to do.
    pub(crate) fn message(&self) -> String {
        match self {
            Spent::Busy { limit } => format!(
                "receiver busy: its intake memory budget ({limit} bytes) is held by requests being received; retry later"
            ),
            Spent::TooLarge { limit } => format!(
                "request needs more than the receiver's whole intake memory budget ({limit} bytes); send smaller batches"
            ),
        }
    }
}

// === impl Collect ===

impl Collect {
    /// Collects into `reservation`; `expected` is the declared total length.
    pub(crate) fn new(reservation: Reservation, expected: Option<usize>) -> Self {
        Self {
            reservation,
            expected,
            whole: None,
            joined: None,
        }
    }

    /// Bytes collected so far.
    pub(crate) fn len(&self) -> usize {
        self.whole.as_ref().map_or(0, Bytes::len) + self.joined.as_ref().map_or(0, Vec::len)
    }

    /// Takes the next frame.
    pub(crate) fn push(&mut self, data: Bytes) -> Result<(), Spent> {
        if data.is_empty() {
            return Ok(());
        }
        if self.whole.is_none() && self.joined.is_none() {
            self.reservation.grow(data.len())?;
            self.whole = Some(data);
            return Ok(());
        }
        let need = self.len() + data.len();
        let joined = match self.joined.as_mut() {
            Some(j) => j,
            None => {
                let first = self.whole.take().unwrap_or_default();
                let cap = self.step(first.len(), need);
                // The first frame is held until it is copied.
                if let Err(e) = self.reservation.grow(cap) {
                    self.whole = Some(first);
                    return Err(e);
                }
                let mut j = Vec::with_capacity(cap);
                j.extend_from_slice(&first);
                self.reservation.shrink(first.len());
                self.joined.insert(j)
            }
        };
        if joined.capacity() < need {
            let cap = (joined.capacity().saturating_mul(2))
                .max(need)
                .min(self.expected.unwrap_or(usize::MAX).max(need));
            self.reservation.grow(cap - joined.capacity())?;
            joined.reserve_exact(cap - joined.len());
        }
        joined.extend_from_slice(&data);
        Ok(())
    }

    /// The capacity of the first joined buffer: room for what arrived, doubled,
    /// but never past the declared length.
    fn step(&self, have: usize, need: usize) -> usize {
        have.saturating_mul(2)
            .max(need)
            .min(self.expected.unwrap_or(usize::MAX).max(need))
    }

    /// The collected bytes and the reservation that holds them.
    pub(crate) fn finish(mut self) -> (Bytes, Reservation) {
        let bytes = match (self.whole.take(), self.joined.take()) {
            (Some(w), _) => w,
            (None, Some(j)) => Bytes::from(j),
            (None, None) => Bytes::new(),
        };
        (bytes, self.reservation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_never_pass_the_limit_and_give_back_on_drop() {
        let b = IntakeBudget::new(100);
        let mut r1 = b.reservation();
        r1.grow(60).unwrap();
        let mut r2 = b.reservation();
        assert_eq!(r2.grow(50), Err(Spent::Busy { limit: 100 }));
        assert_eq!(r2.grow(101), Err(Spent::TooLarge { limit: 100 }));
        r2.grow(40).unwrap();
        assert_eq!(b.used(), 100);
        drop(r1);
        assert_eq!(b.used(), 40);
        r2.shrink(10);
        assert_eq!((b.used(), r2.bytes()), (30, 30));
        drop(r2);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn collect_keeps_one_frame_and_grows_with_what_arrives() {
        let b = IntakeBudget::new(1 << 20);
        let mut c = Collect::new(b.reservation(), Some(1 << 19));
        c.push(Bytes::from_static(b"hello ")).unwrap();
        assert_eq!(b.used(), 6);
        c.push(Bytes::from_static(b"world")).unwrap();
        // Room for what arrived (doubled), not for the declared 512 KiB.
        assert!(b.used() <= 22, "{}", b.used());
        let (bytes, res) = c.finish();
        assert_eq!(&bytes[..], b"hello world");
        assert!(res.bytes() >= 11);
        drop(res);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn collect_refuses_once_the_budget_is_spent() {
        let b = IntakeBudget::new(1000);
        let other = {
            let mut r = b.reservation();
            r.grow(900).unwrap();
            r
        };
        let mut c = Collect::new(b.reservation(), None);
        c.push(Bytes::from(vec![1u8; 60])).unwrap();
        assert_eq!(
            c.push(Bytes::from(vec![1u8; 60])),
            Err(Spent::Busy { limit: 1000 })
        );
        drop(c);
        drop(other);
        assert_eq!(b.used(), 0);
    }
}
