//! Trace-aware load balancing over a set of backends (a gateway tier).
//!
//! [`LoadBalancer`] is a `tower::Service<Batch>` over one service per
//! backend. Each batch is split by its routing key
//! ([`Batch::split_by_route`], walking the wire) and each part goes to the
//! backend that owns its keys by [`Rendezvous`] hashing, so all spans of a
//! trace reach one backend and a change of the backend set moves only the
//! share of the backends that came or went.
//!
//! A part whose backend fails with a retryable error (its own timeout
//! included: a gateway that accepts and never answers) is routed again, at
//! once, over the other backends. The failed one is skipped for `cooldown`
//! (doubled with each consecutive failure, up to 8 times), then one part at
//! a time probes it while the others keep skipping it; a delivered probe
//! gives it its share back. So a dead or stalled backend holds at most one
//! batch at a time, for its timeout, after the calls in flight when it
//! failed. When no backend is left for some part, the call fails retryably
//! and the layers above resend the whole batch: delivery is at least once,
//! never lost; the parts delivered before are sent again and counted
//! ([`LoadBalancer::duplicates`]). Parts refused for good (a permanent
//! error) are counted as rejected in the response, as Recovery counts failed
//! parts.
//!
//! The backend set is replaced as a whole with [`LoadBalancer::set_backends`]
//! (a static list once, or a resolver on its interval) under the write lock;
//! calls in flight finish on the set they started with, and no lock is held
//! across `.await`. Each backend keeps its counters
//! ([`LoadBalancer::backend_stats`]) while it stays in the set.

mod dns;
mod hash;

use std::{
    fmt,
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use futures_util::{StreamExt, future::BoxFuture, stream::FuturesUnordered};
use otlp_core::{Batch, Classify, ExportResponse, RouteKey};
use tower::ServiceExt;
use tower_service::Service;

pub use self::{
    dns::{DnsResolver, spawn_refresh},
    hash::Rendezvous,
};
use crate::TransportError;

/// A backend's service: what [`LoadBalancer`] sends each part through
/// (an [`Exporter`](crate::Exporter), or any service of the same shape).
pub trait Backend:
    Service<Batch, Response = ExportResponse, Error = TransportError, Future: Send>
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> Backend for S where
    S: Service<Batch, Response = ExportResponse, Error = TransportError, Future: Send>
        + Clone
        + Send
        + Sync
        + 'static
{
}

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
    /// Every value, spelled as the config spells it: the routing keys, then
    /// `round_robin`.
    pub const VALUES: [&'static str; RouteKey::VALUES.len() + 1] = {
        let mut out = ["round_robin"; RouteKey::VALUES.len() + 1];
        let mut i = 0;
        while i < RouteKey::VALUES.len() {
            out[i] = RouteKey::VALUES[i];
            i += 1;
        }
        out
    };

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

/// A backend that keeps failing is skipped for its cooldown doubled with
/// each consecutive failure, up to this many doublings (8 times it).
const MAX_COOLDOWN_DOUBLINGS: u32 = 3;

/// One backend of the set, shared by every snapshot it is in (so its
/// cooldown and counters survive a change of the set it stays in).
struct Member<S> {
    name: String,
    service: S,
    /// Skipped until this many milliseconds after `epoch`.
    down_until: AtomicU64,
    /// Consecutive failed parts; 0 when the last part was delivered.
    failures: AtomicU32,
    /// After its cooldown, a failed backend is tried by one part at a time
    /// (the probe); the others keep skipping it until the probe succeeds.
    probing: AtomicBool,
    sent: AtomicU64,
    failed: AtomicU64,
    in_flight: AtomicU64,
}

impl<S> Member<S> {
    fn stats(&self) -> BackendStats {
        BackendStats {
            endpoint: self.name.clone(),
            sent: self.sent.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            up: self.failures.load(Ordering::Relaxed) == 0,
        }
    }
}

/// One backend's counters, as [`LoadBalancer::backend_stats`] reads them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackendStats {
    /// The backend's name (its endpoint URL).
    pub endpoint: String,
    /// Items it accepted.
    pub sent: u64,
    /// Items of parts it failed (each was routed again, or the batch retried).
    pub failed: u64,
    /// Items being sent to it right now (there is no per-backend queue).
    pub in_flight: u64,
    /// Whether its last part was delivered (true before the first).
    pub up: bool,
}

/// What [`LoadBalancer::set_backends`] changed.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackendChange<E> {
    /// Backends that joined the set.
    pub added: usize,
    /// Backends that left the set.
    pub removed: usize,
    /// Names left out because their service could not be built, with why.
    pub skipped: Vec<(String, E)>,
}

impl<E> BackendChange<E> {
    /// How many backends came and went.
    pub fn changed(&self) -> usize {
        self.added + self.removed
    }
}

/// One snapshot of the backend set, sorted by name.
struct Backends<S> {
    members: Vec<Arc<Member<S>>>,
    ring: Rendezvous,
}

/// A load balancer over one service per backend; see the module docs.
pub struct LoadBalancer<S> {
    balance: Balance,
    resolver: Arc<str>,
    cooldown: Duration,
    epoch: Instant,
    backends: Arc<RwLock<Arc<Backends<S>>>>,
    next: Arc<AtomicUsize>,
    /// Items delivered in calls that then failed or were cancelled, so the
    /// layers above send them again.
    duplicates: Arc<AtomicU64>,
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
            duplicates: self.duplicates.clone(),
            failed: self.failed.clone(),
        }
    }
}

impl<S> LoadBalancer<S> {
    /// The current backend names, sorted.
    pub fn backend_names(&self) -> Vec<String> {
        self.snapshot()
            .members
            .iter()
            .map(|m| m.name.clone())
            .collect()
    }

    /// Each current backend's counters, sorted by name. A backend that left
    /// the set is not listed (its series end with it).
    pub fn backend_stats(&self) -> Vec<BackendStats> {
        self.snapshot().members.iter().map(|m| m.stats()).collect()
    }

    /// Items delivered to some backend as part of a batch whose call then
    /// failed retryably (or was cancelled), so the layers above send the
    /// whole batch, and these items, again: the duplicates at-least-once
    /// delivery makes.
    pub fn duplicates(&self) -> u64 {
        self.duplicates.load(Ordering::Relaxed)
    }

    /// Where backends come from, as given to [`new`](Self::new).
    pub fn resolver(&self) -> &str {
        &self.resolver
    }

    /// A reader of [`backend_stats`](Self::backend_stats) and
    /// [`duplicates`](Self::duplicates) that does not keep the balancer
    /// alive (for self-metrics read at each scrape): no backend once every
    /// balancer clone is gone.
    pub fn stats_reader(&self) -> impl Fn() -> (Vec<BackendStats>, u64) + Send + Sync + 'static
    where
        S: Send + Sync + 'static,
    {
        let backends = Arc::downgrade(&self.backends);
        let duplicates = self.duplicates.clone();
        move || {
            let stats = backends.upgrade().map_or_else(Vec::new, |set| {
                let set = set.read().unwrap_or_else(|e| e.into_inner()).clone();
                set.members.iter().map(|m| m.stats()).collect()
            });
            (stats, duplicates.load(Ordering::Relaxed))
        }
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

/// What one call holds until it ends: the probes it claimed (released when
/// it ends however it ends) and the items it delivered (counted as
/// duplicates unless the call succeeds).
struct Call<S> {
    set: Arc<Backends<S>>,
    probes: Vec<usize>,
    delivered: u64,
    succeeded: bool,
    duplicates: Arc<AtomicU64>,
}

impl<S> Drop for Call<S> {
    fn drop(&mut self) {
        for &i in &self.probes {
            if let Some(m) = self.set.members.get(i) {
                m.probing.store(false, Ordering::Release);
            }
        }
        if !self.succeeded && self.delivered > 0 {
            self.duplicates.fetch_add(self.delivered, Ordering::Relaxed);
        }
    }
}

/// Keeps a part's items in its backend's in-flight count while it is sent.
struct InFlight<S: 'static>(Arc<Member<S>>, u64);

impl<S: 'static> Drop for InFlight<S> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(self.1, Ordering::Relaxed);
    }
}

impl<S: Backend> LoadBalancer<S> {
    /// A balancer with no backend yet; `resolver` names where backends come
    /// from, for errors and `explain-config` (e.g. `static list`).
    pub fn new(balance: Balance, resolver: impl Into<String>) -> Self {
        Self {
            balance,
            resolver: Arc::from(resolver.into()),
            cooldown: DEFAULT_COOLDOWN,
            epoch: Instant::now(),
            backends: Arc::new(RwLock::new(Arc::new(Backends {
                members: Vec::new(),
                ring: Rendezvous::default(),
            }))),
            next: Arc::new(AtomicUsize::new(0)),
            duplicates: Arc::new(AtomicU64::new(0)),
            failed: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// How long a failed backend is skipped before it gets its share back
    /// (doubled with each consecutive failure, up to 8 times).
    pub fn with_cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// Replaces the backend set (name, service). A backend whose name was in
    /// the set before keeps its service (and connections), its cooldown and
    /// its counters; `make` is called only for new names. A name `make`
    /// fails for is left out (and listed in [`BackendChange::skipped`]) and
    /// the rest is applied, unless that leaves no backend of a non-empty
    /// list: then the set is kept as it was.
    ///
    /// The write lock is held for the whole swap (`make` is synchronous), so
    /// two replacements never interleave and no call sees a partial set.
    pub fn set_backends<E>(
        &self,
        names: impl IntoIterator<Item = String>,
        mut make: impl FnMut(&str) -> Result<S, E>,
    ) -> BackendChange<E> {
        let mut names: Vec<String> = names.into_iter().collect();
        names.sort();
        names.dedup();
        let mut guard = self.backends.write().unwrap_or_else(|e| e.into_inner());
        let old = guard.clone();
        let mut members = Vec::with_capacity(names.len());
        let mut skipped = Vec::new();
        let (mut added, mut kept) = (0, 0);
        for name in names {
            if let Some(m) = old.members.iter().find(|m| m.name == name) {
                kept += 1;
                members.push(m.clone());
                continue;
            }
            match make(&name) {
                Ok(service) => {
                    added += 1;
                    members.push(Arc::new(Member {
                        name,
                        service,
                        down_until: AtomicU64::new(0),
                        failures: AtomicU32::new(0),
                        probing: AtomicBool::new(false),
                        sent: AtomicU64::new(0),
                        failed: AtomicU64::new(0),
                        in_flight: AtomicU64::new(0),
                    }));
                }
                Err(e) => skipped.push((name, e)),
            }
        }
        if members.is_empty() && !skipped.is_empty() {
            return BackendChange {
                added: 0,
                removed: 0,
                skipped,
            };
        }
        let removed = old.members.len() - kept;
        *guard = Arc::new(Backends {
            ring: Rendezvous::new(members.iter().map(|m| m.name.as_str())),
            members,
        });
        drop(guard);
        BackendChange {
            added,
            removed,
            skipped,
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Which backends this call skips: those in their cooldown, and those
    /// past it that another call is probing. A backend past its cooldown
    /// that nobody probes is claimed as this call's probe.
    fn skips(&self, call: &mut Call<S>) -> Vec<bool> {
        let now = self.now_ms();
        let mut skip: Vec<bool> = Vec::with_capacity(call.set.members.len());
        for (i, m) in call.set.members.iter().enumerate() {
            let s = if m.failures.load(Ordering::Relaxed) == 0 {
                false
            } else if m.down_until.load(Ordering::Relaxed) > now {
                true
            } else if m
                .probing
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                call.probes.push(i);
                false
            } else {
                true
            };
            skip.push(s);
        }
        // Skip nobody rather than everybody: better a try than a sure failure.
        if skip.iter().all(|&s| s) {
            skip.fill(false);
        }
        skip
    }

    /// Sends `batch` over the current backend set; see the module docs.
    async fn send(self, batch: Batch) -> Result<ExportResponse, TransportError> {
        let mut call = Call {
            set: self.snapshot(),
            probes: Vec::new(),
            delivered: 0,
            succeeded: false,
            duplicates: self.duplicates.clone(),
        };
        let set = call.set.clone();
        let n = set.members.len();
        let no_backend = || TransportError::NoBackend {
            resolver: self.resolver.to_string(),
        };
        if n == 0 {
            return Err(no_backend());
        }
        let mut skip = self.skips(&mut call);
        let mut response = ExportResponse::default();
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
                            .split_by_route(key, n, |k| set.ring.pick(k, |i| skip[i]))
                            .map_err(|e| TransportError::Route {
                                signal: batch.signal().as_str(),
                                reason: e.to_string(),
                            })?;
                        parts.extend(split.parts);
                        // Never dropped: left for the error below.
                        unrouted.extend(split.leftover);
                    }
                    Balance::RoundRobin => {
                        let start = self.next.fetch_add(1, Ordering::Relaxed);
                        match (0..n).map(|k| (start + k) % n).find(|&i| !skip[i]) {
                            Some(i) => parts.push((i, batch)),
                            None => unrouted.push(batch),
                        }
                    }
                }
            }
            let mut sends: FuturesUnordered<_> = parts
                .into_iter()
                .map(|(i, part)| {
                    let member = set.members[i].clone();
                    async move {
                        member.in_flight.fetch_add(part.items(), Ordering::Relaxed);
                        let _in_flight = InFlight(member.clone(), part.items());
                        let res = member.service.clone().oneshot(part.clone()).await;
                        (i, part, res)
                    }
                })
                .collect();
            // Each answer as it comes, so what was delivered is known if the
            // call is cut off while another backend is still sending.
            while let Some((i, part, res)) = sends.next().await {
                let member = &set.members[i];
                match res {
                    Ok(r) => {
                        let ok = part.items().saturating_sub(r.rejected);
                        member.sent.fetch_add(ok, Ordering::Relaxed);
                        member.failures.store(0, Ordering::Relaxed);
                        call.delivered += ok;
                        response.rejected += r.rejected;
                        if response.message.is_empty() {
                            response.message = r.message;
                        }
                    }
                    Err(e) if e.classify().is_retryable() => {
                        tracing::debug!(backend = %member.name, error = %e, "backend failed, routing its share to the others");
                        member.failed.fetch_add(part.items(), Ordering::Relaxed);
                        skip[i] = true;
                        let failures = member
                            .failures
                            .fetch_add(1, Ordering::Relaxed)
                            .saturating_add(1);
                        let factor = 1u64 << failures.saturating_sub(1).min(MAX_COOLDOWN_DOUBLINGS);
                        // From when it failed, not when the call began: a
                        // backend that takes longer than the cooldown to time
                        // out must still be skipped by the calls after it.
                        member.down_until.store(
                            self.now_ms()
                                .saturating_add(cooldown_ms.saturating_mul(factor)),
                            Ordering::Relaxed,
                        );
                        pending.push(part);
                        last_retryable = Some(e);
                        // A gateway that left shows here first: resolve again now.
                        self.failed.notify_one();
                    }
                    Err(e) => {
                        member.failed.fetch_add(part.items(), Ordering::Relaxed);
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
            // At least once: the layers above resend the whole batch (and
            // `call` counts what it delivered as duplicates).
            return Err(last_retryable.unwrap_or_else(no_backend));
        }
        call.succeeded = true;
        match first_permanent {
            Some(e) if call.delivered == 0 => Err(e),
            _ => Ok(response),
        }
    }
}

impl<S: Backend> Service<Batch> for LoadBalancer<S> {
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
