//! Trace-aware load balancing over a set of backends (a gateway tier).
//!
//! [`LoadBalancer`] is a `tower::Service<Batch>` over one service per
//! backend. Each batch is split by its routing key
//! ([`Batch::split_by_route`], walking the wire) and each part goes to the
//! backend that owns its keys by [`Rendezvous`] hashing, so all spans of a
//! trace reach one backend and a change of the backend set moves only the
//! share of the backends that came or went.
//!
//! A part whose backend fails with a retryable error is routed again, at
//! once, over the other backends (the failed one is skipped for
//! `cooldown`, then gets its share back). When no backend is left for some
//! part, the call fails retryably and the layers above resend the whole
//! batch: delivery is at least once, never lost (parts delivered before may
//! arrive twice). Parts refused for good (a permanent error) are counted as
//! rejected in the response, as Recovery counts failed parts.
//!
//! The backend set is replaced as a whole with [`LoadBalancer::set_backends`]
//! (a static list once, or a resolver on its interval); calls in flight
//! finish on the set they started with, and no lock is held across `.await`.

mod dns;
mod hash;

use std::{
    fmt,
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use futures_util::future::{BoxFuture, join_all};
use otlp_core::{Batch, Classify, ExportResponse, RouteKey};
use tower::ServiceExt;
use tower_service::Service;

pub use self::{
    dns::{DnsResolver, spawn_refresh},
    hash::Rendezvous,
};
use crate::TransportError;

/// How batches are spread over the backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Balance {
    /// Split by a routing key and hash each key to one backend.
    Route(RouteKey),
    /// Whole batches, one backend after the other (no affinity).
    RoundRobin,
}

impl Balance {
    /// Every value, spelled as the config spells it.
    pub const VALUES: [&'static str; 4] = ["trace_id", "service", "resource", "round_robin"];

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Balance::Route(key) => key.as_str(),
            Balance::RoundRobin => "round_robin",
        }
    }
}

/// How long a backend that failed is skipped by default.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(5);

/// One snapshot of the backend set.
struct Backends<S> {
    names: Vec<String>,
    services: Vec<S>,
    ring: Rendezvous,
    /// Per backend: skipped until this many milliseconds after `epoch`.
    down_until: Vec<AtomicU64>,
}

/// A load balancer over one service per backend; see the module docs.
pub struct LoadBalancer<S> {
    balance: Balance,
    resolver: Arc<str>,
    cooldown: Duration,
    epoch: Instant,
    backends: Arc<RwLock<Arc<Backends<S>>>>,
    next: Arc<AtomicUsize>,
    /// Woken when a backend fails, so a resolver resolves again at once.
    failed: Arc<tokio::sync::Notify>,
}

impl<S> Clone for LoadBalancer<S> {
    fn clone(&self) -> Self {
        Self {
            balance: self.balance,
            resolver: self.resolver.clone(),
            cooldown: self.cooldown,
            epoch: self.epoch,
            backends: self.backends.clone(),
            next: self.next.clone(),
            failed: self.failed.clone(),
        }
    }
}

impl<S> LoadBalancer<S> {
    /// The current backend names, sorted.
    pub fn backend_names(&self) -> Vec<String> {
        self.snapshot().names.clone()
    }

    fn snapshot(&self) -> Arc<Backends<S>> {
        self.backends
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl<S> fmt::Debug for LoadBalancer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadBalancer")
            .field("balance", &self.balance)
            .field("resolver", &self.resolver)
            .field("backends", &self.backend_names())
            .finish()
    }
}

impl<S> LoadBalancer<S>
where
    S: Service<Batch, Response = ExportResponse, Error = TransportError>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send,
{
    /// A balancer with no backend yet; `resolver` names where backends come
    /// from, for errors and `explain-config` (e.g. `static list`).
    pub fn new(balance: Balance, resolver: impl Into<String>) -> Self {
        Self {
            balance,
            resolver: Arc::from(resolver.into()),
            cooldown: DEFAULT_COOLDOWN,
            epoch: Instant::now(),
            backends: Arc::new(RwLock::new(Arc::new(Backends {
                names: Vec::new(),
                services: Vec::new(),
                ring: Rendezvous::default(),
                down_until: Vec::new(),
            }))),
            next: Arc::new(AtomicUsize::new(0)),
            failed: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// How long a failed backend is skipped before it gets its share back.
    pub fn with_cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// Replaces the backend set (name, service). A backend whose name was in
    /// the set before keeps its service (and connections) and its cooldown;
    /// `make` is called only for new names. Returns how many backends changed
    /// (added plus removed).
    ///
    /// # Errors
    ///
    /// What `make` returns for a new name; the set is left unchanged then.
    pub fn set_backends<E>(
        &self,
        names: impl IntoIterator<Item = String>,
        mut make: impl FnMut(&str) -> Result<S, E>,
    ) -> Result<usize, E> {
        let old = self.snapshot();
        let mut names: Vec<String> = names.into_iter().collect();
        names.sort();
        names.dedup();
        let mut services = Vec::with_capacity(names.len());
        let mut down_until = Vec::with_capacity(names.len());
        let mut kept = 0;
        for name in &names {
            match old.names.iter().position(|n| n == name) {
                Some(i) => {
                    kept += 1;
                    services.push(old.services[i].clone());
                    down_until.push(AtomicU64::new(old.down_until[i].load(Ordering::Relaxed)));
                }
                None => {
                    services.push(make(name)?);
                    down_until.push(AtomicU64::new(0));
                }
            }
        }
        let changed = (names.len() - kept) + (old.names.len() - kept);
        let next = Arc::new(Backends {
            ring: Rendezvous::new(names.iter().map(String::as_str)),
            names,
            services,
            down_until,
        });
        *self.backends.write().unwrap_or_else(|e| e.into_inner()) = next;
        Ok(changed)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Sends `batch` over the current backend set; see the module docs.
    async fn send(self, batch: Batch) -> Result<ExportResponse, TransportError> {
        let set = self.snapshot();
        let n = set.names.len();
        let no_backend = || TransportError::NoBackend {
            resolver: self.resolver.to_string(),
        };
        if n == 0 {
            return Err(no_backend());
        }
        // Skip backends in their cooldown, unless that leaves none.
        let now = self.now_ms();
        let mut skip: Vec<bool> = set
            .down_until
            .iter()
            .map(|d| d.load(Ordering::Relaxed) > now)
            .collect();
        if skip.iter().all(|&s| s) {
            skip.fill(false);
        }
        let mut response = ExportResponse::default();
        let mut delivered = 0u64;
        let mut first_permanent: Option<TransportError> = None;
        let mut last_retryable: Option<TransportError> = None;
        let cooldown_ms = u64::try_from(self.cooldown.as_millis()).unwrap_or(u64::MAX);
        let mut pending = vec![batch];
        // Each round takes at least one backend out, so n rounds are enough.
        for _ in 0..n {
            let mut parts = Vec::new();
            let mut unrouted = Vec::new();
            for batch in pending.drain(..) {
                match self.balance {
                    Balance::Route(key) => {
                        let split = batch
                            .split_by_route(key, n, |k| {
                                set.ring.pick(k, |i| skip[i]).unwrap_or(usize::MAX)
                            })
                            .map_err(|e| TransportError::Route {
                                signal: batch.signal().as_str(),
                                reason: e.to_string(),
                            })?;
                        parts.extend(split);
                    }
                    Balance::RoundRobin => {
                        let start = self.next.fetch_add(1, Ordering::Relaxed);
                        match (0..n).map(|k| (start + k) % n).find(|&i| !skip[i]) {
                            Some(i) => parts.push((i, batch)),
                            // Never dropped: left for the error below.
                            None => unrouted.push(batch),
                        }
                    }
                }
            }
            // `usize::MAX % n` stands for "no backend left": never the case
            // here, since a round starts only with some backend not skipped.
            let sends = parts.into_iter().map(|(i, part)| {
                let svc = set.services[i].clone();
                async move { (i, part.clone(), svc.oneshot(part).await) }
            });
            for (i, part, res) in join_all(sends).await {
                match res {
                    Ok(r) => {
                        delivered += part.items().saturating_sub(r.rejected);
                        response.rejected += r.rejected;
                        if response.message.is_empty() {
                            response.message = r.message;
                        }
                    }
                    Err(e) if e.classify().is_retryable() => {
                        tracing::debug!(backend = %set.names[i], error = %e, "backend failed, routing its share to the others");
                        skip[i] = true;
                        // From when it failed, not when the call began: a
                        // backend that takes longer than the cooldown to time
                        // out must still be skipped by the calls after it.
                        set.down_until[i]
                            .store(self.now_ms().saturating_add(cooldown_ms), Ordering::Relaxed);
                        pending.push(part);
                        last_retryable = Some(e);
                        // A gateway that left shows here first: resolve again now.
                        self.failed.notify_one();
                    }
                    Err(e) => {
                        response.rejected += part.items();
                        if response.message.is_empty() {
                            response.message = e.to_string();
                        }
                        first_permanent.get_or_insert(e);
                    }
                }
            }
            pending.append(&mut unrouted);
            if pending.is_empty() || skip.iter().all(|&s| s) {
                break;
            }
        }
        if !pending.is_empty() {
            // At least once: the layers above resend the whole batch.
            return Err(last_retryable.unwrap_or_else(no_backend));
        }
        match first_permanent {
            Some(e) if delivered == 0 => Err(e),
            _ => Ok(response),
        }
    }
}

impl<S> Service<Batch> for LoadBalancer<S>
where
    S: Service<Batch, Response = ExportResponse, Error = TransportError>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send,
{
    type Response = ExportResponse;
    type Error = TransportError;
    type Future = BoxFuture<'static, Result<ExportResponse, TransportError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Each call readies its backends' services itself (`oneshot`).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, batch: Batch) -> Self::Future {
        Box::pin(self.clone().send(batch))
    }
}

#[cfg(test)]
mod tests;
