//! The AIMD controller shared by every clone of one adaptive concurrency layer.

use std::{
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore},
    time::Instant,
};

use super::ConcurrencyPolicy;

/// A cloneable view of one adaptive concurrency layer's state.
///
/// The facade reads it for a gauge; tests read it to check convergence.
#[derive(Clone, Debug)]
pub struct ConcurrencyHandle {
    pub(super) shared: Arc<Shared>,
}

/// How a finished request informs the controller.
#[derive(Clone, Copy, Debug)]
pub(super) enum Outcome {
    /// A response or a non-retryable error: the RTT is a valid sample.
    Sample(Duration),
    /// A retryable or throttled error, or a request cancelled in flight
    /// (the per-attempt timeout above fired): back-pressure.
    BackPressure,
}

#[derive(Debug)]
pub(super) struct Shared {
    pub(super) semaphore: Arc<Semaphore>,
    policy: ConcurrencyPolicy,
    limit: AtomicUsize,
    in_flight: AtomicUsize,
    state: Mutex<Controller>,
}

#[derive(Debug)]
struct Controller {
    limit: usize,
    /// Permits to forget as they come back, after a decrease found them in use.
    debt: usize,
    past: Option<Ewma>,
    window_start: Instant,
    window_sum: Duration,
    window_count: u32,
    reached_limit: bool,
    back_pressure: bool,
    /// The window right after a limit change mixes requests sent under both
    /// limits; its RTT neither moves the average nor the limit.
    settling: bool,
}

/// An exponentially weighted moving average of RTT and its mean deviation, in seconds.
#[derive(Clone, Copy, Debug)]
struct Ewma {
    mean: f64,
    deviation: f64,
}

// === impl ConcurrencyHandle ===

impl ConcurrencyHandle {
    /// The current concurrency limit.
    pub fn limit(&self) -> usize {
        self.shared.limit.load(Ordering::Relaxed)
    }

    /// The requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::Relaxed)
    }

    /// The average RTT the controller compares against, once it has a sample.
    pub fn average_rtt(&self) -> Option<Duration> {
        let c = self.shared.lock();
        c.past.map(|p| Duration::from_secs_f64(p.mean))
    }
}

// === impl Shared ===

impl Shared {
    pub(super) fn new(policy: ConcurrencyPolicy) -> Self {
        Shared {
            semaphore: Arc::new(Semaphore::new(policy.initial)),
            limit: AtomicUsize::new(policy.initial),
            in_flight: AtomicUsize::new(0),
            state: Mutex::new(Controller {
                limit: policy.initial,
                debt: 0,
                past: None,
                window_start: Instant::now(),
                window_sum: Duration::ZERO,
                window_count: 0,
                reached_limit: false,
                back_pressure: false,
                settling: false,
            }),
            policy,
        }
    }

    /// Locks the controller for a few arithmetic operations; never held across an await.
    fn lock(&self) -> std::sync::MutexGuard<'_, Controller> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A request starts, holding one permit.
    pub(super) fn start(&self) {
        let in_flight = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        if in_flight >= self.limit.load(Ordering::Relaxed) {
            self.lock().reached_limit = true;
        }
    }

    /// A request ends: feed the controller, then return (or retire) its permit.
    pub(super) fn finish(&self, permit: OwnedSemaphorePermit, outcome: Outcome) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        let mut c = self.lock();
        let now = Instant::now();
        match outcome {
            Outcome::Sample(rtt) => {
                c.window_sum += rtt;
                c.window_count += 1;
            }
            Outcome::BackPressure => c.back_pressure = true,
        }
        // One adjustment per average RTT, as TCP adjusts once per round trip.
        let period = c
            .past
            .map_or(Duration::ZERO, |p| Duration::from_secs_f64(p.mean));
        if now.saturating_duration_since(c.window_start) >= period {
            self.adjust(&mut c, now);
        }
        if c.debt > 0 {
            c.debt -= 1;
            permit.forget();
        } else {
            drop(permit);
        }
    }

    fn adjust(&self, c: &mut Controller, now: Instant) {
        let p = &self.policy;
        let current = (c.window_count > 0 && !c.settling)
            .then(|| c.window_sum.as_secs_f64() / f64::from(c.window_count));
        let old = c.limit;
        match (c.past, current) {
            _ if c.back_pressure => self.decrease(c),
            _ if c.settling => {}
            (Some(past), Some(cur)) => {
                if cur > past.mean + p.rtt_deviation_scale * past.deviation
                    && cur > past.mean * 1.0001
                {
                    self.decrease(c);
                } else if c.reached_limit && cur <= past.mean * 1.0001 {
                    self.increase(c);
                }
            }
            (None, Some(_)) if c.reached_limit => self.increase(c),
            _ => {}
        }
        if let Some(cur) = current {
            c.past = Some(match c.past {
                None => Ewma {
                    mean: cur,
                    deviation: 0.0,
                },
                Some(past) => Ewma {
                    mean: past.mean + p.ewma_alpha * (cur - past.mean),
                    deviation: past.deviation
                        + p.ewma_alpha * ((cur - past.mean).abs() - past.deviation),
                },
            });
        }
        c.settling = c.limit != old;
        if c.settling {
            tracing::trace!(
                from = old,
                to = c.limit,
                "adaptive concurrency limit changed"
            );
        }
        c.window_start = now;
        c.window_sum = Duration::ZERO;
        c.window_count = 0;
        c.reached_limit = false;
        c.back_pressure = false;
    }

    fn increase(&self, c: &mut Controller) {
        if c.limit >= self.policy.max {
            return;
        }
        c.limit += 1;
        if c.debt > 0 {
            c.debt -= 1;
        } else {
            self.semaphore.add_permits(1);
        }
        self.limit.store(c.limit, Ordering::Relaxed);
    }

    fn decrease(&self, c: &mut Controller) {
        // Truncation is the point: 0.9 of 5 is 4.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let target = ((c.limit as f64 * self.policy.decrease_ratio) as usize).max(self.policy.min);
        let cut = c.limit.saturating_sub(target);
        if cut == 0 {
            return;
        }
        let forgotten = self.semaphore.forget_permits(cut);
        c.debt += cut - forgotten;
        c.limit = target;
        self.limit.store(c.limit, Ordering::Relaxed);
    }
}
