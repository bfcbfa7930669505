//! What the SDK processors and exporters share: the pipeline sender, the
//! cached resource and scope groups, the `block` policy's hold-back, and the
//! bounded wait for flush and shutdown.

use std::{
    borrow::Cow,
    collections::HashMap,
    future::Future,
    hash::{BuildHasher, BuildHasherDefault, DefaultHasher},
    sync::{
        Arc, RwLock,
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
    time::Duration,
};

use opentelemetry::InstrumentationScope;
use opentelemetry_proto::tonic::{
    common::v1::{InstrumentationScope as ProtoScope, KeyValue},
    resource::v1::Resource as ProtoResource,
};
use opentelemetry_sdk::{Resource, error::OTelSdkError};
use otlp_core::{Batch, Signal};
use otlp_pipeline::{Group, Item, Offer, Sender, TrySendError};
use tokio::runtime::{Handle, RuntimeFlavor};

use crate::{Otlp, resource_group, scope_group};

/// Instrumentation scopes whose encoded group a processor or exporter
/// caches; past this many, a scope is encoded per item.
pub const MAX_CACHED_SCOPES: usize = 256;

/// The state one processor or exporter keeps.
#[derive(Debug)]
pub(crate) struct Bridge {
    otlp: Arc<Otlp>,
    sender: Sender,
    /// The runtime the bridge was made in: flush and shutdown run there, and a
    /// producer outside any runtime is held back through it under `block`.
    handle: Option<Handle>,
    /// Whether the queue's overflow policy is `block`.
    block: bool,
    resource: Group,
    scopes: ScopeCache,
    flush_timeout: Duration,
}

/// Encoded scope groups, keyed by scope and (for logs) target.
///
/// Lookups take the read lock only. The entry of the last hit is compared
/// first (most programs send from one scope at a time), so a run of items of
/// one scope costs a comparison, not a hash of the whole scope. A miss hashes,
/// and a miss of the hash encodes the scope and inserts it under the write
/// lock while fewer than [`MAX_CACHED_SCOPES`] are held.
#[derive(Debug, Default)]
pub(crate) struct ScopeCache {
    inner: RwLock<Scopes>,
    /// 1 + the index in `Scopes::entries` of the last hit; 0 when none.
    last: AtomicUsize,
}

#[derive(Debug, Default)]
struct Scopes {
    /// Every cached entry, in insertion order (never removed).
    entries: Vec<ScopeEntry>,
    /// Indices into `entries` by the hash of (scope, target); a collision
    /// shares a bucket.
    buckets: HashMap<u64, Vec<usize>>,
}

#[derive(Debug)]
struct ScopeEntry {
    scope: InstrumentationScope,
    target: Option<String>,
    group: Group,
}

// === impl Bridge ===

impl Bridge {
    pub(crate) fn new(otlp: Arc<Otlp>, signal: Signal) -> Self {
        let block = matches!(otlp.config().queue.overflow, otlp_config::Overflow::Block);
        let flush_timeout = otlp.config().signal(signal).timeout;
        Self {
            sender: otlp.sender(),
            otlp,
            handle: Handle::try_current().ok(),
            block,
            resource: resource_group(&ProtoResource::default(), ""),
            scopes: ScopeCache::default(),
            flush_timeout,
        }
    }

    pub(crate) fn set_flush_timeout(&mut self, timeout: Duration) {
        self.flush_timeout = timeout;
    }

    pub(crate) fn set_resource(&mut self, resource: &Resource) {
        self.resource = encode_resource(resource);
    }

    pub(crate) fn resource(&self) -> &Group {
        &self.resource
    }

    pub(crate) fn scope(&self, scope: &InstrumentationScope, target: Option<&str>) -> Group {
        self.scopes.get(scope, target)
    }

    pub(crate) fn otlp(&self) -> &Arc<Otlp> {
        &self.otlp
    }

    /// Hands one item to the pipeline from a synchronous SDK hook.
    ///
    /// Drop policies never wait. Under `block` the calling thread is held
    /// back until there is room or the block deadline passes: outside a
    /// runtime through the captured handle, on a multi-thread runtime through
    /// `block_in_place`. A current-thread runtime cannot be blocked without
    /// stalling the pipeline it runs, so there the item is offered without
    /// waiting (and counted as dropped when the queue is full).
    pub(crate) fn deliver(&self, item: Item) -> Result<(), TrySendError> {
        if !self.block {
            return self.sender.try_send(item);
        }
        // Fast path: room in the queue, no blocking machinery at all.
        let item = match self.sender.offer(item) {
            Ok(()) => return Ok(()),
            Err(Offer::Refused(e)) => return Err(e),
            Err(Offer::Full(item)) => item,
        };
        match Handle::try_current() {
            Err(_) => match &self.handle {
                Some(handle) => handle.block_on(self.sender.send(item)),
                None => self.sender.try_send(item),
            },
            Ok(current) => match current.runtime_flavor() {
                RuntimeFlavor::MultiThread => {
                    tokio::task::block_in_place(|| current.block_on(self.sender.send(item)))
                }
                _ => self.sender.try_send(item),
            },
        }
    }

    /// Hands items to the pipeline from an SDK exporter's `export` future.
    ///
    /// Under `block` the future waits for room (up to the block deadline per
    /// item), see [`Bridge::run_async`].
    pub(crate) async fn deliver_all(&self, items: Vec<Item>) -> Result<(), OTelSdkError> {
        if !self.block {
            return first_error(items.into_iter().map(|i| self.sender.try_send(i)));
        }
        let sender = self.sender.clone();
        let send = async move {
            let mut results = Vec::with_capacity(items.len());
            for item in items {
                results.push(sender.send(item).await);
            }
            first_error(results)
        };
        self.run_async(send).await
    }

    /// Hands one encoded request to the pipeline from an exporter's future.
    pub(crate) async fn deliver_batch(&self, batch: Batch) -> Result<(), OTelSdkError> {
        if !self.block {
            return first_error([self.sender.try_send_batch(batch)]);
        }
        let sender = self.sender.clone();
        self.run_async(async move { first_error([sender.send_batch(batch).await]) })
            .await
    }

    /// Runs a waiting send as its own task (on the current runtime, else the
    /// captured one) and waits for it.
    ///
    /// A task, not an inline await: the SDK may poll `export` on a thread with
    /// no tokio context, and may drop the future on its export timeout. The
    /// pipeline's waiting `send` is not cancel safe, so the task keeps going
    /// and every item still ends accepted or counted as dropped.
    async fn run_async<F>(&self, fut: F) -> Result<(), OTelSdkError>
    where
        F: Future<Output = Result<(), OTelSdkError>> + Send + 'static,
    {
        match Handle::try_current().ok().or_else(|| self.handle.clone()) {
            Some(handle) => handle.spawn(fut).await.unwrap_or_else(|e| {
                Err(OTelSdkError::InternalFailure(format!(
                    "otlp bridge: the send task did not finish ({e}); the runtime that built the Otlp may be shutting down"
                )))
            }),
            None => Err(OTelSdkError::InternalFailure(
                "otlp bridge: no tokio runtime to wait for queue room in; create the exporter inside the runtime that built the Otlp".to_owned(),
            )),
        }
    }

    /// Waits until everything accepted so far is sent or failed, at most the flush timeout.
    pub(crate) fn flush(&self) -> Result<(), OTelSdkError> {
        let otlp = self.otlp.clone();
        self.wait(self.flush_timeout, async move { otlp.flush().await })
    }

    /// Shuts the pipeline down within `timeout` and reports what was left.
    pub(crate) fn shutdown(&self, timeout: Duration) -> Result<(), OTelSdkError> {
        let otlp = self.otlp.clone();
        // The pipeline returns by its deadline; the margin covers task start-up.
        let report = self.wait(timeout + SHUTDOWN_MARGIN, async move {
            otlp.shutdown(timeout).await
        })?;
        if report.drained {
            Ok(())
        } else {
            Err(OTelSdkError::InternalFailure(format!(
                "otlp shutdown deadline of {timeout:?} passed before the queue drained: {} items dropped, {} failed, {} left in the disk queue; allow a longer shutdown or check the collector is reachable",
                report.dropped, report.failed, report.left_queued
            )))
        }
    }

    /// Runs `fut` on the captured runtime and waits on a std channel for at
    /// most `timeout`, so that a blocked current-thread runtime cannot
    /// deadlock the caller: it times out instead.
    fn wait<F>(&self, timeout: Duration, fut: F) -> Result<F::Output, OTelSdkError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        let task = async move {
            // The receiver may have given up; nothing to do then.
            let _ = tx.send(fut.await);
        };
        let spawned = match &self.handle {
            Some(handle) => Some(handle.spawn(task)),
            None => {
                // No runtime was captured: drive the wait on a helper thread
                // with its own small runtime (the pipeline's tasks run on
                // theirs; only the wait happens here).
                let started = std::thread::Builder::new()
                    .name("otlp-sdk-wait".to_owned())
                    .spawn(move || {
                        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                            .enable_time()
                            .build()
                        {
                            rt.block_on(task);
                        }
                    });
                if let Err(e) = started {
                    return Err(OTelSdkError::InternalFailure(format!(
                        "otlp bridge: cannot start a thread to wait on ({e})"
                    )));
                }
                None
            }
        };
        match rx.recv_timeout(timeout) {
            Ok(out) => Ok(out),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Some(task) = spawned {
                    task.abort();
                }
                Err(OTelSdkError::Timeout(timeout))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(OTelSdkError::InternalFailure(
                "otlp bridge: the runtime that built the Otlp is shut down, so nothing can be flushed; flush or shut down before dropping the runtime".to_owned(),
            )),
        }
    }
}

/// Extra time a shutdown wait allows over the pipeline's own deadline.
const SHUTDOWN_MARGIN: Duration = Duration::from_millis(500);

/// The first error of a run of sends, as the SDK's error.
fn first_error(
    results: impl IntoIterator<Item = Result<(), TrySendError>>,
) -> Result<(), OTelSdkError> {
    let mut dropped = 0u64;
    let mut first = None;
    for r in results {
        if let Err(e) = r {
            dropped += 1;
            first.get_or_insert(e);
        }
    }
    match first {
        None => Ok(()),
        Some(e) => Err(OTelSdkError::InternalFailure(format!(
            "otlp pipeline refused {dropped} of the exported entries (counted as dropped): {e}"
        ))),
    }
}

/// Encodes an SDK resource once as the resource group of every item.
pub(crate) fn encode_resource(resource: &Resource) -> Group {
    let proto = ProtoResource {
        attributes: resource.iter().map(KeyValue::from).collect(),
        ..Default::default()
    };
    resource_group(&proto, resource.schema_url().unwrap_or_default())
}

fn encode_scope(scope: &InstrumentationScope, target: Option<&str>) -> Group {
    let proto = ProtoScope::from((scope, target.map(|t| Cow::Owned(t.to_owned()))));
    scope_group(&proto, scope.schema_url().unwrap_or_default())
}

// === impl ScopeCache ===

impl ScopeCache {
    /// The encoded group of `scope` (its name replaced by `target` when set).
    pub(crate) fn get(&self, scope: &InstrumentationScope, target: Option<&str>) -> Group {
        {
            let scopes = self.inner.read().unwrap_or_else(|e| e.into_inner());
            // The relaxed load is only a hint: the entry is compared in full.
            let last = self.last.load(Ordering::Relaxed);
            if let Some(e) = last.checked_sub(1).and_then(|i| scopes.entries.get(i))
                && e.matches(scope, target)
            {
                return e.group.clone();
            }
        }
        let key = BuildHasherDefault::<DefaultHasher>::default().hash_one((scope, target));
        {
            let scopes = self.inner.read().unwrap_or_else(|e| e.into_inner());
            if let Some(i) = scopes.find(key, scope, target) {
                self.last.store(i + 1, Ordering::Relaxed);
                return scopes.entries[i].group.clone();
            }
        }
        let group = encode_scope(scope, target);
        let mut scopes = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if scopes.entries.len() < MAX_CACHED_SCOPES && scopes.find(key, scope, target).is_none() {
            let i = scopes.entries.len();
            scopes.entries.push(ScopeEntry {
                scope: scope.clone(),
                target: target.map(str::to_owned),
                group: group.clone(),
            });
            scopes.buckets.entry(key).or_default().push(i);
            self.last.store(i + 1, Ordering::Relaxed);
        }
        group
    }

    /// Scopes held in the cache.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .entries
            .len()
    }
}

// === impl Scopes ===

impl Scopes {
    /// The index of the entry of (scope, target), whose hash is `key`.
    fn find(&self, key: u64, scope: &InstrumentationScope, target: Option<&str>) -> Option<usize> {
        self.buckets.get(&key).and_then(|bucket| {
            bucket
                .iter()
                .copied()
                .find(|&i| self.entries[i].matches(scope, target))
        })
    }
}

// === impl ScopeEntry ===

impl ScopeEntry {
    fn matches(&self, scope: &InstrumentationScope, target: Option<&str>) -> bool {
        self.target.as_deref() == target && self.scope == *scope
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_cache_reuses_one_encoding_per_scope_and_target() {
        let cache = ScopeCache::default();
        let a = InstrumentationScope::builder("a").with_version("1").build();
        let first = cache.get(&a, None);
        let again = cache.get(&a, None);
        // A hit hands out a clone of the cached bytes, not a fresh encoding.
        assert_eq!(first.as_bytes().as_ptr(), again.as_bytes().as_ptr());
        let targeted = cache.get(&a, Some("my_target"));
        assert_ne!(first, targeted);
        assert_eq!(cache.len(), 2);
        assert_eq!(first, encode_scope(&a, None));
    }

    #[test]
    fn scope_cache_stops_growing_at_its_bound_and_still_encodes() {
        let cache = ScopeCache::default();
        for i in 0..MAX_CACHED_SCOPES + 10 {
            let s = InstrumentationScope::builder(format!("scope-{i}")).build();
            assert_eq!(cache.get(&s, None), encode_scope(&s, None));
        }
        assert_eq!(cache.len(), MAX_CACHED_SCOPES);
        let late =
            InstrumentationScope::builder(format!("scope-{}", MAX_CACHED_SCOPES + 5)).build();
        let one = cache.get(&late, None);
        let two = cache.get(&late, None);
        assert_eq!(one, two);
        assert_ne!(one.as_bytes().as_ptr(), two.as_bytes().as_ptr());
    }

    #[test]
    fn scope_cache_last_hit_never_answers_for_another_scope() {
        let cache = ScopeCache::default();
        let a = InstrumentationScope::builder("a").build();
        let a2 = InstrumentationScope::builder("a").with_version("2").build();
        let b = InstrumentationScope::builder("b").build();
        // Alternate so that the last hit is always the other scope or target.
        for _ in 0..3 {
            assert_eq!(cache.get(&a, None), encode_scope(&a, None));
            assert_eq!(cache.get(&a, Some("t")), encode_scope(&a, Some("t")));
            assert_eq!(cache.get(&a2, None), encode_scope(&a2, None));
            assert_eq!(cache.get(&b, None), encode_scope(&b, None));
            assert_eq!(cache.get(&b, None), encode_scope(&b, None));
        }
        assert_eq!(cache.len(), 4);
        // A hit through the last-hit entry is still the cached encoding.
        let first = cache.get(&b, None);
        let again = cache.get(&b, None);
        assert_eq!(first.as_bytes().as_ptr(), again.as_bytes().as_ptr());
    }
}
