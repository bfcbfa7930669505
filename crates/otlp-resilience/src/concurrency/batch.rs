//! [`BatchSizer`]: the seed's dynamic batch sizing, as a small bounded controller.

use std::{
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use crate::ResilienceError;

/// Suggests the next batch size from observed export latency and throughput.
///
/// Every `window` recorded exports it decides once: when the mean latency is
/// above `target_latency` the size shrinks by 20% (the seed's rule); otherwise
/// it grows by 20% while throughput (items per second of export time) keeps
/// improving, and steps back once when a growth made throughput worse. The size
/// always stays within `[min_size, max_size]`. Clones share the state, so the
/// export workers record and the batcher reads [`size`](Self::size) (one atomic load).
///
/// ```
/// use std::time::Duration;
/// use otlp_resilience::BatchSizer;
///
/// let sizer = BatchSizer::builder()
///     .with_min_size(100)
///     .with_max_size(2000)
///     .with_initial_size(500)
///     .with_target_latency(Duration::from_millis(100))
///     .with_window(1)
///     .build()?;
/// sizer.record(Duration::from_millis(400), 500); // too slow
/// assert_eq!(sizer.size(), 400);
/// # Ok::<(), otlp_resilience::ResilienceError>(())
/// ```
#[derive(Clone, Debug)]
pub struct BatchSizer {
    inner: Arc<Sizer>,
}

/// Builds a validated [`BatchSizer`].
#[derive(Clone, Debug)]
pub struct BatchSizerBuilder {
    min: usize,
    max: usize,
    initial: usize,
    target_latency: Duration,
    window: u32,
}

#[derive(Debug)]
struct Sizer {
    min: usize,
    max: usize,
    target_latency: Duration,
    window: u32,
    size: AtomicUsize,
    state: Mutex<Window>,
}

#[derive(Debug, Default)]
struct Window {
    latency: Duration,
    items: u64,
    count: u32,
    last_throughput: Option<f64>,
    last_grew: bool,
}

// === impl BatchSizer ===

impl BatchSizer {
    /// A builder with the seed's presets: 100 to 1000 items (its low-latency and
    /// high-throughput batch sizes), starting at 512 (the OpenTelemetry SDK's
    /// default export batch size), aiming at 100ms, deciding every 10 exports.
    pub fn builder() -> BatchSizerBuilder {
        BatchSizerBuilder {
            min: 100,
            max: 1000,
            initial: 512,
            target_latency: Duration::from_millis(100),
            window: 10,
        }
    }

    /// The batch size to cut next.
    pub fn size(&self) -> usize {
        self.inner.size.load(Ordering::Relaxed)
    }

    /// Records one export of `items` items that took `latency`.
    pub fn record(&self, latency: Duration, items: u64) {
        let s = &self.inner;
        // A few arithmetic operations under the lock; never held across an await.
        let mut w = s.state.lock().unwrap_or_else(PoisonError::into_inner);
        w.latency += latency;
        w.items += items;
        w.count += 1;
        if w.count < s.window {
            return;
        }
        let mean = w.latency / w.count;
        let secs = w.latency.as_secs_f64();
        let throughput = if secs > 0.0 {
            w.items as f64 / secs
        } else {
            f64::INFINITY
        };
        let size = s.size.load(Ordering::Relaxed);
        let worse = w.last_throughput.is_some_and(|t| throughput < t * 0.95);
        let (next, grew) = if mean > s.target_latency || (worse && w.last_grew) {
            (scale(size, 0.8), false)
        } else {
            (scale(size, 1.2).max(size + 1), true)
        };
        s.size.store(next.clamp(s.min, s.max), Ordering::Relaxed);
        w.last_throughput = Some(throughput);
        w.last_grew = grew;
        w.latency = Duration::ZERO;
        w.items = 0;
        w.count = 0;
    }
}

fn scale(size: usize, factor: f64) -> usize {
    // Sizes are far below 2^52, so the round trip through f64 is exact enough.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let scaled = (size as f64 * factor) as usize;
    scaled
}

// === impl BatchSizerBuilder ===

impl BatchSizerBuilder {
    /// Sets the smallest size (at least 1).
    pub fn with_min_size(mut self, n: usize) -> Self {
        self.min = n;
        self
    }
    /// Sets the largest size.
    pub fn with_max_size(mut self, n: usize) -> Self {
        self.max = n;
        self
    }
    /// Sets the size at start.
    pub fn with_initial_size(mut self, n: usize) -> Self {
        self.initial = n;
        self
    }
    /// Sets the export latency above which batches shrink.
    pub fn with_target_latency(mut self, d: Duration) -> Self {
        self.target_latency = d;
        self
    }
    /// Sets how many exports make one decision.
    pub fn with_window(mut self, n: u32) -> Self {
        self.window = n;
        self
    }

    /// Checks every setting and returns the sizer.
    ///
    /// # Errors
    ///
    /// [`ResilienceError::InvalidSettings`] listing every setting out of range.
    pub fn build(self) -> Result<BatchSizer, ResilienceError> {
        let mut problems = Vec::new();
        if self.min == 0 {
            problems.push("min_size 0: must be at least 1".to_owned());
        }
        if self.max < self.min {
            problems.push(format!(
                "max_size {}: must be at least min_size {}",
                self.max, self.min
            ));
        }
        if self.initial < self.min || self.initial > self.max {
            problems.push(format!(
                "initial_size {}: must lie within min_size {} and max_size {}",
                self.initial, self.min, self.max
            ));
        }
        if self.target_latency.is_zero() {
            problems.push("target_latency 0s: must be positive, e.g. 100ms".to_owned());
        }
        if self.window == 0 {
            problems.push("window 0: must be at least 1 export".to_owned());
        }
        ResilienceError::check("batch sizer", problems)?;
        Ok(BatchSizer {
            inner: Arc::new(Sizer {
                min: self.min,
                max: self.max,
                target_latency: self.target_latency,
                window: self.window,
                size: AtomicUsize::new(self.initial),
                state: Mutex::new(Window::default()),
            }),
        })
    }
}
