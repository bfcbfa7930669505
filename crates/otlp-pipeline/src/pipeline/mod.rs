//! The pipeline: per-signal batchers, the bounded queue (memory or disk), the
//! export workers, and the producer handle.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    fmt,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use otlp_core::{
    Backlog, Batch, Classify, DropReason, ExportResponse, FailReason, NoopObserver, Observer,
    PipelineStage, Retryability, Signal,
};
use tokio::{runtime::Handle, sync::Notify, task::JoinHandle, time::Instant};
use tower::{Service, ServiceExt};

#[cfg(feature = "disk-queue")]
use crate::disk::{AppendError, DiskQueue, RecordId, SyncTicket};
use crate::{
    Item, Overflow, PipelineConfig, PipelineError, Refusal, ShutdownReport, Stats, TrySendError,
    batcher::{Batcher, Part},
    stats::Counters,
};

mod admit;
mod sender;
mod settle;
mod worker;

use self::{settle::*, worker::*};

/// The most export workers a pipeline runs.
pub const MAX_WORKERS: usize = 1024;

/// Batches telemetry, queues it within a memory limit, and exports it with N workers.
///
/// Build it with [`Pipeline::builder`], hand out [`Sender`]s to producers, and
/// end it with [`Pipeline::shutdown`]. Dropping a pipeline without shutting it
/// down stops its tasks and loses what the memory queue held.
pub struct Pipeline {
    shared: Arc<Shared>,
    tasks: Mutex<Tasks>,
}

/// Configures and builds a [`Pipeline`].
#[derive(Debug)]
pub struct PipelineBuilder {
    config: PipelineConfig,
    observer: Arc<dyn Observer>,
}

/// The producer handle: cheap to clone, usable from any thread.
///
/// No method touches the network: a full queue is handled by the overflow policy.
#[derive(Clone, Debug)]
pub struct Sender {
    shared: Arc<Shared>,
}

struct Shared {
    config: PipelineConfig,
    core: Mutex<Core>,
    counters: Counters,
    /// A batch was queued, or workers must re-check their stop flags.
    work: Notify,
    /// Memory was released, or the pipeline closed: blocked producers retry.
    space: Notify,
    /// Items were settled: `flush` and `shutdown` re-check.
    settled: Notify,
}

struct Core {
    batchers: [Batcher; Signal::COUNT],
    /// Cut batches waiting in memory (with the disk queue: those the disk could not take).
    queue: VecDeque<Queued>,
    /// The flush epoch: a flush waits for every item admitted in its epoch or before.
    epoch: u64,
    /// Unsettled items per epoch (batchers, queue, in flight, disk).
    outstanding: BTreeMap<u64, u64>,
    /// Items and bytes held in memory: batchers, queue and batches in flight.
    mem_items: u64,
    mem_bytes: u64,
    /// Memory bytes per signal.
    mem_held: [u64; Signal::COUNT],
    inflight: HashMap<u64, Flight>,
    next_id: u64,
    closed: bool,
    #[cfg(feature = "disk-queue")]
    disk: Option<DiskQueue>,
}

/// The pipeline's lock. With the disk queue, releasing it runs the fsync
/// the policy wants *after* the mutex is unlocked: whoever wrote syncs its
/// own writes before its call returns, and nobody else waits on that fsync.
struct CoreGuard<'a> {
    // Field order matters: `guard` unlocks before `sync` runs.
    guard: MutexGuard<'a, Core>,
    /// Sync whatever was written, whatever the interval (flush, shutdown).
    #[cfg(feature = "disk-queue")]
    force_sync: bool,
    #[cfg(feature = "disk-queue")]
    sync: PendingSync,
}

impl CoreGuard<'_> {
    /// On release, syncs everything written so far (unless the policy is
    /// `never`).
    #[cfg(feature = "disk-queue")]
    fn sync_on_release(&mut self) {
        self.force_sync = true;
    }
}

impl std::ops::Deref for CoreGuard<'_> {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.guard
    }
}

impl std::ops::DerefMut for CoreGuard<'_> {
    fn deref_mut(&mut self) -> &mut Core {
        &mut self.guard
    }
}

#[cfg(feature = "disk-queue")]
impl Drop for CoreGuard<'_> {
    fn drop(&mut self) {
        // Taken while still locked (so the writer takes its own ticket), run
        // when `sync` drops, after `guard` unlocked.
        let force = self.force_sync;
        self.sync.0 = self.guard.disk.as_mut().and_then(|d| d.take_sync(force));
    }
}

/// An fsync to run when dropped.
#[cfg(feature = "disk-queue")]
struct PendingSync(Option<SyncTicket>);

#[cfg(feature = "disk-queue")]
impl Drop for PendingSync {
    fn drop(&mut self) {
        let Some(t) = self.0.take() else { return };
        // On a multi-thread runtime's worker, hand the worker's other tasks
        // to another thread while this one waits on the disk (otherwise two
        // fsyncs would stall every task on a two-thread runtime).
        let multi = Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if multi {
            tokio::task::block_in_place(|| t.run());
        } else {
            t.run();
        }
    }
}

/// Reads a pipeline's [`Backlog`] without keeping it alive
/// ([`Pipeline::backlog_probe`]).
#[derive(Clone, Debug)]
pub struct BacklogProbe(std::sync::Weak<Shared>);

impl BacklogProbe {
    /// The backlog now; `None` once the pipeline is gone.
    pub fn read(&self) -> Option<Backlog> {
        self.0.upgrade().map(|shared| shared.backlog())
    }
}

/// A cut batch waiting in memory for a worker.
#[derive(Debug)]
struct Queued {
    batch: Batch,
    /// The flush epoch it was cut in.
    epoch: u64,
    /// When it was queued (for the queue-wait stage).
    queued_at: Instant,
    /// Where its joined parts start (empty for a batch of one part).
    parts: Vec<Part>,
}

/// A batch handed to a worker and not yet settled.
#[derive(Debug)]
struct Flight {
    signal: Signal,
    items: u64,
    epoch: u64,
    /// When it began to wait: queued, or written to disk.
    since: Instant,
    /// A joined batch keeps its bytes (a reference, already charged) and
    /// parts, so that it can be bisected if the collector refuses it as invalid.
    bisect: Option<(Batch, Vec<Part>)>,
    /// Items and bytes charged to the memory limit (0 when it was read back
    /// from disk: only cached batches stay charged).
    mem_items: u64,
    mem_bytes: u64,
    #[cfg(feature = "disk-queue")]
    disk: Option<(RecordId, u64)>,
}

struct Tasks {
    workers: Vec<Worker>,
    timer: Option<JoinHandle<()>>,
    spawn: Box<dyn Fn(Arc<AtomicBool>) -> JoinHandle<()> + Send + Sync>,
    report: Option<ShutdownReport>,
}

struct Worker {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

/// The input of the admission path.
enum Input {
    Item(Item),
    Raw(Batch),
}

/// Why admission did not complete.
enum Refused {
    /// The `block` policy says wait for room; the input comes back.
    Wait(Input),
    /// Dropped and counted.
    Dropped(TrySendError),
}

/// Why [`Sender::offer`] did not take an item.
#[derive(Debug)]
pub enum Offer {
    /// The `block` queue is full: the item comes back, not accepted, not counted.
    Full(Item),
    /// The item was dropped and counted, as `try_send` would.
    Refused(TrySendError),
}

/// What a worker's export came to.
type Outcome = Result<ExportResponse, Failure>;

/// A failed export, as the pipeline needs to know it.
#[derive(Debug)]
struct Failure {
    class: Retryability,
    /// The collector refused the content ([`Classify::is_invalid_request`]).
    invalid: bool,
    message: String,
}

/// Why a whole request was not taken by [`Sender::admit_request`].
enum Whole {
    /// The `block` policy says wait for room; the parts come back.
    Wait(Vec<Batch>),
    /// Refused (and counted as refused).
    Refused(Refusal),
}

// === impl Pipeline ===

impl Pipeline {
    /// Starts configuring a pipeline.
    pub fn builder(config: PipelineConfig) -> PipelineBuilder {
        PipelineBuilder {
            config,
            observer: Arc::new(NoopObserver),
        }
    }

    /// A producer handle.
    pub fn sender(&self) -> Sender {
        Sender {
            shared: self.shared.clone(),
        }
    }

    /// What waits to be delivered now: each signal's oldest undelivered
    /// item's age, the queue's free bytes, and the bytes taken so far.
    pub fn backlog(&self) -> Backlog {
        self.shared.backlog()
    }

    /// A handle that reads [`backlog`](Self::backlog) later (at metric
    /// scrapes) without keeping the pipeline alive.
    pub fn backlog_probe(&self) -> BacklogProbe {
        BacklogProbe(Arc::downgrade(&self.shared))
    }

    /// A snapshot of the accounting, per signal.
    pub fn stats(&self) -> Stats {
        self.shared.counters.snapshot()
    }

    /// The number of running export workers.
    pub fn workers(&self) -> usize {
        self.lock_tasks()
            .workers
            .iter()
            .filter(|w| !w.stop.load(Ordering::Relaxed))
            .count()
    }

    /// Changes the number of export workers at run time (for adaptive concurrency).
    ///
    /// Removed workers finish the batch they are exporting first.
    ///
    /// # Errors
    ///
    /// [`PipelineError::InvalidConfig`] when `n` is 0 or above [`MAX_WORKERS`],
    /// [`PipelineError::Closed`] after shutdown.
    pub fn set_workers(&self, n: usize) -> Result<(), PipelineError> {
        if n == 0 || n > MAX_WORKERS {
            return Err(PipelineError::InvalidConfig {
                problems: vec![format!("workers is {n}: use 1 to {MAX_WORKERS}")],
            });
        }
        let mut tasks = self.lock_tasks();
        if tasks.report.is_some() {
            return Err(PipelineError::Closed);
        }
        // Forget workers that have exited after being stopped.
        tasks
            .workers
            .retain(|w| !(w.stop.load(Ordering::Relaxed) && w.handle.is_finished()));
        let mut active: Vec<usize> = (0..tasks.workers.len())
            .filter(|i| !tasks.workers[*i].stop.load(Ordering::Relaxed))
            .collect();
        while active.len() > n {
            if let Some(i) = active.pop() {
                tasks.workers[i].stop.store(true, Ordering::Relaxed);
            }
        }
        for _ in active.len()..n {
            let stop = Arc::new(AtomicBool::new(false));
            let handle = (tasks.spawn)(stop.clone());
            tasks.workers.push(Worker { stop, handle });
        }
        drop(tasks);
        // Wake idle workers so the stopped ones notice.
        self.shared.work.notify_waiters();
        Ok(())
    }

    /// Waits until everything accepted before the call is sent, dropped or failed.
    ///
    /// Open batches are cut at once. With an unreachable collector this waits
    /// as long as the inner service does; bound it with `tokio::time::timeout`
    /// or use [`Pipeline::shutdown`].
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future only stops waiting.
    pub async fn flush(&self) {
        let target = self.shared.cut_all(false);
        self.shared.wait_settled(target).await;
    }

    /// Stops intake, drains within `timeout`, stops the workers and reports.
    ///
    /// Always returns by the deadline, even with a dead collector. What the
    /// memory queue still holds then is dropped (reason `shutdown`); what the
    /// disk queue holds stays on disk for the next start (`left_queued`).
    /// Calling it again returns the first report.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: intake is already closed when the future is dropped,
    /// and the workers keep draining until the pipeline is dropped.
    pub async fn shutdown(&self, timeout: Duration) -> ShutdownReport {
        if let Some(r) = &self.lock_tasks().report {
            return r.clone();
        }
        let target = self.shared.cut_all(true);
        self.shared.space.notify_waiters();
        let drained = tokio::time::timeout(timeout, self.shared.wait_settled(target))
            .await
            .is_ok();
        let mut tasks = self.lock_tasks();
        if let Some(r) = &tasks.report {
            return r.clone();
        }
        for w in &tasks.workers {
            w.stop.store(true, Ordering::Relaxed);
            w.handle.abort();
        }
        if let Some(t) = tasks.timer.take() {
            t.abort();
        }
        let left_queued = self.shared.abandon();
        let stats = self.shared.counters.snapshot();
        let total = stats.total();
        let report = ShutdownReport {
            sent: total.sent,
            dropped: total.dropped_total(),
            failed: total.failed_total(),
            left_queued,
            drained,
            stats,
        };
        tasks.report = Some(report.clone());
        if !drained {
            tracing::warn!(
                ?timeout,
                left_queued,
                dropped = report.dropped,
                "pipeline shutdown deadline passed before the queue drained"
            );
        }
        report
    }

    fn lock_tasks(&self) -> MutexGuard<'_, Tasks> {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.space.notify_waiters();
        let mut tasks = self.lock_tasks();
        for w in &tasks.workers {
            w.handle.abort();
        }
        if let Some(t) = tasks.timer.take() {
            t.abort();
        }
    }
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("config", &self.shared.config)
            .field("counters", &self.shared.counters)
            .finish()
    }
}

// === impl PipelineBuilder ===

impl PipelineBuilder {
    /// Reports every accounting event to `observer` (e.g. Prometheus counters).
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = observer;
        self
    }

    /// The configuration being built.
    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }

    /// Validates the config, recovers the disk queue if any, and starts the
    /// workers and the batch timer on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// [`PipelineError::NoRuntime`] outside a tokio runtime,
    /// [`PipelineError::InvalidConfig`] listing every bad field,
    /// [`PipelineError::DiskQueueDisabled`] or [`PipelineError::Disk`] for the
    /// persistent queue.
    pub fn build<S>(self, service: S) -> Result<Pipeline, PipelineError>
    where
        S: Service<Batch, Response = ExportResponse> + Clone + Send + 'static,
        S::Future: Send,
        S::Error: Classify + fmt::Display + Send,
    {
        let runtime = Handle::try_current().map_err(|_| PipelineError::NoRuntime)?;
        self.config.validate()?;
        let counters = Counters::new(self.observer);
        #[allow(unused_mut)] // Only the disk queue recovers items.
        let mut outstanding = BTreeMap::new();
        #[cfg(feature = "disk-queue")]
        let disk = match &self.config.queue.persistent {
            None => None,
            Some(cfg) => {
                let (disk, rec) = DiskQueue::open(cfg)?;
                for s in Signal::ALL {
                    let i = s.index();
                    counters.recovered(s, rec.recovered[i] + rec.corrupt[i]);
                    counters.dropped(s, DropReason::Corrupt, rec.corrupt[i]);
                    counters.held(s, disk.held(s));
                }
                counters.corrupt_records(rec.corrupt_records);
                let recovered: u64 = rec.recovered.iter().sum();
                if recovered > 0 {
                    outstanding.insert(0, recovered);
                }
                Some(disk)
            }
        };
        #[cfg(not(feature = "disk-queue"))]
        if self.config.queue.persistent.is_some() {
            return Err(PipelineError::DiskQueueDisabled);
        }
        let shared = Arc::new(Shared {
            core: Mutex::new(Core {
                batchers: Signal::ALL.map(Batcher::new),
                queue: VecDeque::new(),
                epoch: 1,
                outstanding,
                mem_items: 0,
                mem_bytes: 0,
                mem_held: [0; Signal::COUNT],
                inflight: HashMap::new(),
                next_id: 0,
                closed: false,
                #[cfg(feature = "disk-queue")]
                disk,
            }),
            config: self.config,
            counters,
            work: Notify::new(),
            space: Notify::new(),
            settled: Notify::new(),
        });
        let spawn = {
            let shared = shared.clone();
            let runtime = runtime.clone();
            // The service need not be Sync: the spawner keeps it behind a mutex
            // and only ever clones it.
            let proto = Mutex::new(service);
            Box::new(move |stop: Arc<AtomicBool>| {
                let svc = proto.lock().unwrap_or_else(|e| e.into_inner()).clone();
                runtime.spawn(work(shared.clone(), svc, stop))
            })
        };
        let timer = runtime.spawn(tick(Arc::downgrade(&shared)));
        let pipeline = Pipeline {
            shared,
            tasks: Mutex::new(Tasks {
                workers: Vec::new(),
                timer: Some(timer),
                spawn,
                report: None,
            }),
        };
        pipeline.set_workers(pipeline.shared.config.workers)?;
        Ok(pipeline)
    }
}

// === impl Shared ===

impl Shared {
    /// What waits to be delivered now (see [`Backlog`]).
    fn backlog(&self) -> Backlog {
        let shared = self;
        let now = Instant::now();
        let mut since: [Option<Instant>; Signal::COUNT] = [None; Signal::COUNT];
        let mut older = |signal: Signal, at: Instant| {
            let slot = &mut since[signal.index()];
            if slot.is_none_or(|s| at < s) {
                *slot = Some(at);
            }
        };
        let core = shared.lock();
        for signal in Signal::ALL {
            if let Some(at) = core.batchers[signal.index()].started() {
                older(signal, at);
            }
        }
        // Bounded by the queue and the batches in flight.
        for q in &core.queue {
            older(q.batch.signal(), q.queued_at);
        }
        for f in core.inflight.values() {
            older(f.signal, f.since);
        }
        let q = &shared.config.queue;
        #[allow(unused_mut, reason = "only the disk queue changes it")]
        let mut free_bytes = q.max_bytes.saturating_sub(core.mem_bytes);
        #[cfg(feature = "disk-queue")]
        if let Some(disk) = core.disk.as_ref() {
            for (signal, at) in Signal::ALL.into_iter().zip(disk.oldest()) {
                if let Some(at) = at {
                    older(signal, Instant::from_std(at));
                }
            }
            free_bytes = disk.free_bytes();
        }
        drop(core);
        Backlog {
            oldest: since.map(|s| s.map(|at| now.saturating_duration_since(at))),
            free_bytes,
            intake_bytes: shared.counters.intake_bytes(),
        }
    }

    fn lock(&self) -> CoreGuard<'_> {
        // A panic elsewhere while holding the lock leaves counts that are still
        // consistent (every update is a single step), so keep going.
        CoreGuard {
            guard: self.core.lock().unwrap_or_else(|e| e.into_inner()),
            #[cfg(feature = "disk-queue")]
            force_sync: false,
            #[cfg(feature = "disk-queue")]
            sync: PendingSync(None),
        }
    }

    /// Cuts a raw request, in one pass, into parts that fit `max_batch_bytes`
    /// and `max_batch_size` (a unit that cannot be split travels alone).
    fn fit(&self, batch: Batch) -> Vec<Batch> {
        let max = usize::try_from(self.config.batch.max_batch_bytes).unwrap_or(usize::MAX);
        let max_items = self.config.batch.max_batch_size.max(1);
        match batch.split_to_fit(max_items, max) {
            Ok(parts) => parts,
            // Malformed bytes cannot be cut; they are sent (and refused) whole.
            Err(_) => vec![batch],
        }
    }
}

// === impl Core ===

impl Core {
    fn release(&mut self, signal: Signal, items: u64, bytes: u64) {
        self.mem_items = self.mem_items.saturating_sub(items);
        self.mem_bytes = self.mem_bytes.saturating_sub(bytes);
        let held = &mut self.mem_held[signal.index()];
        *held = held.saturating_sub(bytes);
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}
