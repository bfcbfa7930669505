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
use crate::disk::{AppendError, DiskQueue, RecordId};
use crate::{
    Item, Overflow, PipelineConfig, PipelineError, Refusal, ShutdownReport, Stats, TrySendError,
    batcher::{Batcher, Part},
    stats::Counters,
};

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
    batchers: [Batcher; 3],
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
    mem_held: [u64; 3],
    inflight: HashMap<u64, Flight>,
    next_id: u64,
    closed: bool,
    #[cfg(feature = "disk-queue")]
    disk: Option<DiskQueue>,
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
                mem_held: [0; 3],
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

// === impl Sender ===

impl Sender {
    /// Hands one item to its signal's batcher without waiting.
    ///
    /// # Errors
    ///
    /// [`TrySendError`] when the item was dropped (full queue under any policy,
    /// larger than the queue, or pipeline closed); the drop is counted.
    pub fn try_send(&self, item: Item) -> Result<(), TrySendError> {
        self.shared
            .admit_or_drop(Input::Item(item), DropReason::QueueFull)
    }

    /// Offers one item without waiting. Under the `block` policy a full queue
    /// hands the item back ([`Offer::Full`]) instead of dropping it, so a
    /// synchronous producer pays for a blocking wait only when there is no
    /// room; under the drop policies this is [`Sender::try_send`].
    ///
    /// # Errors
    ///
    /// [`Offer::Full`] with the item (not accepted, not counted) when a
    /// `block` queue is full; [`Offer::Refused`] when it was dropped and
    /// counted, as [`Sender::try_send`] would.
    pub fn offer(&self, item: Item) -> Result<(), Offer> {
        match self
            .shared
            .admit(Input::Item(item), true, DropReason::QueueFull)
        {
            Ok(()) => Ok(()),
            Err(Refused::Dropped(e)) => Err(Offer::Refused(e)),
            Err(Refused::Wait(Input::Item(item))) => Err(Offer::Full(item)),
            Err(Refused::Wait(input)) => Err(Offer::Refused(
                self.shared.drop_input(input, DropReason::QueueFull),
            )),
        }
    }

    /// Hands one item to its signal's batcher, waiting for room up to the
    /// `block` policy's deadline (other policies never wait).
    ///
    /// # Errors
    ///
    /// As [`Sender::try_send`]; with `block`, a deadline passed is
    /// [`TrySendError::Full`] with reason `block_timeout`.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: an item whose future is dropped while waiting is lost
    /// without being counted as accepted.
    pub async fn send(&self, item: Item) -> Result<(), TrySendError> {
        self.shared.admit_waiting(Input::Item(item)).await
    }

    /// Hands an already-encoded export request to the batcher without waiting.
    ///
    /// Small requests are joined by appending bytes; one larger than
    /// `max_batch_bytes` is split until its parts fit (or cannot be split).
    ///
    /// # Errors
    ///
    /// As [`Sender::try_send`]; the first error of the parts is returned.
    pub fn try_send_batch(&self, batch: Batch) -> Result<(), TrySendError> {
        if batch.items() == 0 {
            // Nothing to deliver: an empty envelope is never sent upstream.
            return Ok(());
        }
        let mut first_err = None;
        for part in self.shared.fit(batch) {
            if let Err(e) = self
                .shared
                .admit_or_drop(Input::Raw(part), DropReason::QueueFull)
            {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Hands an already-encoded export request to the batcher, waiting for
    /// room per the `block` policy.
    ///
    /// # Errors
    ///
    /// As [`Sender::send`].
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe, as [`Sender::send`].
    pub async fn send_batch(&self, batch: Batch) -> Result<(), TrySendError> {
        if batch.items() == 0 {
            return Ok(());
        }
        let mut first_err = None;
        for part in self.shared.fit(batch) {
            if let Err(e) = self.shared.admit_waiting(Input::Raw(part)).await {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Takes a whole received request, or none of it: the agent's intake,
    /// which acknowledges the request to its sender only on `Ok`.
    ///
    /// The request is split into parts of at most `max_batch_size` items and
    /// `max_batch_bytes` bytes, and room for *every* part is reserved before
    /// any is queued. With the disk queue, the parts are written to disk
    /// (one record each, all or none) before this returns, so an `Ok` request
    /// survives `kill -9`; a full disk refuses the request whatever the
    /// overflow policy, and nothing on disk is ever evicted. Without it, the
    /// parts are held in memory; `drop_oldest` may evict queued (already
    /// acknowledged) batches to make room, counted as dropped (`evicted`),
    /// and only when that makes room for the whole request. A request with
    /// no items is taken as a no-op (never sent upstream).
    ///
    /// Under the `block` policy this waits for room up to the deadline;
    /// otherwise it never waits.
    ///
    /// # Errors
    ///
    /// [`Refusal`] when nothing was taken: the sender should retry later
    /// ([`Refusal::Full`]), send less ([`Refusal::TooLarge`]), or go
    /// elsewhere ([`Refusal::Closed`]). Refused items are counted as refused,
    /// not as accepted or dropped.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a dropped future has taken nothing.
    pub async fn admit_request(&self, batch: Batch) -> Result<(), Refusal> {
        if batch.items() == 0 {
            return Ok(());
        }
        let (signal, items) = (batch.signal(), batch.items());
        let mut parts = self.shared.fit(batch);
        let deadline = match self.shared.config.queue.overflow {
            Overflow::Block { deadline } => Some(Instant::now() + deadline),
            _ => None,
        };
        // Bounded by the deadline: each turn admits, refuses, or waits for room.
        loop {
            let space = self.shared.space.notified();
            tokio::pin!(space);
            space.as_mut().enable();
            let may_wait = deadline.is_some_and(|d| Instant::now() < d);
            match self.shared.admit_whole(parts, may_wait) {
                Ok(()) => return Ok(()),
                Err(Whole::Refused(r)) => {
                    self.shared.counters.refused(signal, r.reason(), items);
                    return Err(r);
                }
                Err(Whole::Wait(back)) => parts = back,
            }
            if let Some(d) = deadline {
                // A timeout ends the wait; the next turn refuses (may_wait is false).
                let _ = tokio::time::timeout_at(d, space).await;
            }
        }
    }

    /// Cuts every open batch now and queues it, returning the number of items
    /// that are still only in memory.
    ///
    /// With the disk queue, a return of 0 means everything accepted before
    /// this call is on disk (durable against `kill -9`; against power loss per
    /// the fsync policy). A positive return happens only under the `block`
    /// policy while the disk quota is full: those batches wait in memory and
    /// move to disk as acknowledgements free space; call again later. Without
    /// the disk queue it returns the items held in memory.
    pub fn commit(&self) -> u64 {
        self.shared.cut_all(false);
        self.shared
            .lock()
            .queue
            .iter()
            .map(|q| q.batch.items())
            .sum()
    }
}

// === impl Shared ===

impl Shared {
    /// What waits to be delivered now (see [`Backlog`]).
    fn backlog(&self) -> Backlog {
        let shared = self;
        let now = Instant::now();
        let mut since: [Option<Instant>; 3] = [None; 3];
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

    fn lock(&self) -> MutexGuard<'_, Core> {
        // A panic elsewhere while holding the lock leaves counts that are still
        // consistent (every update is a single step), so keep going.
        self.core.lock().unwrap_or_else(|e| e.into_inner())
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

    async fn admit_waiting(&self, mut input: Input) -> Result<(), TrySendError> {
        let deadline = match self.config.queue.overflow {
            Overflow::Block { deadline } => Instant::now() + deadline,
            _ => Instant::now(),
        };
        // Bounded by the deadline: each turn either admits, drops, or waits.
        loop {
            let space = self.space.notified();
            tokio::pin!(space);
            space.as_mut().enable();
            match self.admit(input, true, DropReason::QueueFull) {
                Ok(()) => return Ok(()),
                Err(Refused::Dropped(e)) => return Err(e),
                Err(Refused::Wait(back)) => input = back,
            }
            if Instant::now() >= deadline || tokio::time::timeout_at(deadline, space).await.is_err()
            {
                // One last try: room may have appeared right at the deadline.
                return self.admit_or_drop(input, DropReason::BlockTimeout);
            }
        }
    }

    /// Admits `input` without waiting; what would have to wait is dropped
    /// and counted with `reason` (the one `admit -> Refused` answer of
    /// `try_send`, `try_send_batch` and a `block` wait's last try).
    fn admit_or_drop(&self, input: Input, reason: DropReason) -> Result<(), TrySendError> {
        match self.admit(input, false, reason) {
            Ok(()) => Ok(()),
            Err(Refused::Dropped(e)) => Err(e),
            Err(Refused::Wait(back)) => Err(self.drop_input(back, reason)),
        }
    }

    /// Reserves room for every part of one request and queues them all, or
    /// takes none (see [`Sender::admit_request`]).
    fn admit_whole(&self, parts: Vec<Batch>, may_wait: bool) -> Result<(), Whole> {
        let q = &self.config.queue;
        let Some(signal) = parts.first().map(Batch::signal) else {
            return Ok(());
        };
        let items: u64 = parts.iter().map(Batch::items).sum();
        let bytes: u64 = parts.iter().map(|b| b.byte_size() as u64).sum();
        let mut core = self.lock();
        let core = &mut *core;
        if core.closed {
            return Err(Whole::Refused(Refusal::Closed));
        }
        let full = |reason| {
            Whole::Refused(Refusal::Full {
                reason,
                items,
                bytes,
            })
        };
        #[cfg(feature = "disk-queue")]
        if let Some(disk) = core.disk.as_mut() {
            let need = bytes + parts.len() as u64 * DiskQueue::RECORD_OVERHEAD;
            if let Some(p) = &q.persistent
                && need > p.max_bytes
            {
                return Err(Whole::Refused(Refusal::TooLarge {
                    items,
                    bytes: need,
                    setting: "queue.persistent.max_bytes",
                    limit: p.max_bytes,
                }));
            }
            if disk.free_bytes() < need {
                return Err(if may_wait {
                    Whole::Wait(parts)
                } else {
                    full(DropReason::DiskFull)
                });
            }
            // While memory is plentiful, written parts also stay cached in
            // memory (charged), so workers need not read them back.
            let cache = core.mem_bytes + bytes <= q.max_bytes / 2
                && core.mem_items + items <= q.max_items / 2;
            let epoch = core.epoch;
            if let Err(e) = disk.append_all(&parts, epoch, cache) {
                if let AppendError::Io(e) = &e {
                    tracing::warn!(error = %e, "disk queue: write failed; request refused with back-pressure (nothing of it was stored)");
                }
                return Err(if may_wait {
                    Whole::Wait(parts)
                } else {
                    full(DropReason::DiskFull)
                });
            }
            self.counters.accepted(signal, items);
            self.counters.took_bytes(bytes);
            *core.outstanding.entry(epoch).or_default() += items;
            if cache {
                core.mem_items += items;
                core.mem_bytes += bytes;
                core.mem_held[signal.index()] += bytes;
            }
            self.publish(core, signal);
            self.counters.depth(signal);
            for _ in 0..parts.len().min(self.config.workers) {
                self.work.notify_one();
            }
            return Ok(());
        }
        if items > q.max_items {
            return Err(Whole::Refused(Refusal::TooLarge {
                items,
                bytes,
                setting: "queue.max_items",
                limit: q.max_items,
            }));
        }
        if bytes > q.max_bytes {
            return Err(Whole::Refused(Refusal::TooLarge {
                items,
                bytes,
                setting: "queue.max_bytes",
                limit: q.max_bytes,
            }));
        }
        let fits =
            |c: &Core| c.mem_bytes + bytes <= q.max_bytes && c.mem_items + items <= q.max_items;
        if !fits(core) {
            let evictable = matches!(q.overflow, Overflow::DropOldest) && {
                let (qi, qb) = core.queue.iter().fold((0, 0), |(i, b), e| {
                    (i + e.batch.items(), b + e.batch.byte_size() as u64)
                });
                core.mem_bytes - qb.min(core.mem_bytes) + bytes <= q.max_bytes
                    && core.mem_items - qi.min(core.mem_items) + items <= q.max_items
            };
            if !evictable {
                return Err(
                    if may_wait && matches!(q.overflow, Overflow::Block { .. }) {
                        Whole::Wait(parts)
                    } else {
                        full(DropReason::QueueFull)
                    },
                );
            }
            // Bounded: each turn evicts one queued batch, and evicting all of
            // them makes room (checked above).
            while !fits(core) {
                let Some(Queued {
                    batch: b, epoch, ..
                }) = core.queue.pop_front()
                else {
                    break;
                };
                core.release(b.signal(), b.items(), b.byte_size() as u64);
                leave(&mut core.outstanding, epoch, b.items());
                tracing::warn!(
                    signal = %b.signal(),
                    items = b.items(),
                    "memory queue full: oldest queued batch evicted (drop_oldest) to take a new request"
                );
                self.counters
                    .dropped(b.signal(), DropReason::Evicted, b.items());
                self.publish(core, b.signal());
                self.settled.notify_waiters();
            }
        }
        self.counters.accepted(signal, items);
        self.counters.took_bytes(bytes);
        *core.outstanding.entry(core.epoch).or_default() += items;
        for part in parts {
            let cost = part.byte_size() as u64;
            let batcher = &core.batchers[signal.index()];
            if !batcher.is_empty() && batcher.charged() + cost > self.config.batch.max_batch_bytes {
                self.cut(core, signal);
            }
            core.mem_items += part.items();
            core.mem_bytes += cost;
            core.mem_held[signal.index()] += cost;
            let batcher = &mut core.batchers[signal.index()];
            batcher.push_raw(part);
            if batcher.items() >= self.config.batch.max_batch_size {
                self.cut(core, signal);
            }
        }
        self.publish(core, signal);
        Ok(())
    }

    /// Counts `input` as accepted and dropped for `reason`.
    fn drop_input(&self, input: Input, reason: DropReason) -> TrySendError {
        let (signal, items) = match &input {
            Input::Item(i) => (i.signal, i.count),
            Input::Raw(b) => (b.signal(), b.items()),
        };
        self.counters.accepted(signal, items);
        self.counters.dropped(signal, reason, items);
        TrySendError::Full { reason, items }
    }

    /// Puts `input` into its batcher if the memory limit allows; applies the
    /// overflow policy when it does not. `may_wait` says the caller can wait;
    /// `full` is the drop reason when there is no room and no waiting.
    fn admit(&self, input: Input, may_wait: bool, full: DropReason) -> Result<(), Refused> {
        let q = &self.config.queue;
        let (signal, items) = match &input {
            Input::Item(i) => (i.signal, i.count),
            Input::Raw(b) => (b.signal(), b.items()),
        };
        let mut core = self.lock();
        let core = &mut *core;
        if core.closed {
            self.counters.accepted(signal, items);
            self.counters.dropped(signal, DropReason::Shutdown, items);
            return Err(Refused::Dropped(TrySendError::Closed));
        }
        let cost_of = |b: &Batcher, input: &Input| match input {
            Input::Item(i) => b.cost(i),
            Input::Raw(b) => b.byte_size() as u64,
        };
        let mut cost = cost_of(&core.batchers[signal.index()], &input);
        let batcher = &core.batchers[signal.index()];
        if !batcher.is_empty() && batcher.charged() + cost > self.config.batch.max_batch_bytes {
            self.cut(core, signal);
            // A fresh batch has no group entries yet: the item costs their headers.
            cost = cost_of(&core.batchers[signal.index()], &input);
        }
        if cost > q.max_bytes || items > q.max_items {
            self.counters.accepted(signal, items);
            self.counters.dropped(signal, DropReason::Oversized, items);
            return Err(Refused::Dropped(TrySendError::Oversized {
                bytes: cost,
                limit: q.max_bytes,
            }));
        }
        // Make room, per policy. Bounded: each turn evicts one queued batch.
        while core.mem_bytes + cost > q.max_bytes || core.mem_items + items > q.max_items {
            let evicted = match q.overflow {
                Overflow::DropOldest => core.queue.pop_front(),
                _ => None,
            };
            match evicted {
                Some(Queued {
                    batch: b, epoch, ..
                }) => {
                    core.release(b.signal(), b.items(), b.byte_size() as u64);
                    leave(&mut core.outstanding, epoch, b.items());
                    self.settled.notify_waiters();
                    self.counters
                        .dropped(b.signal(), DropReason::Evicted, b.items());
                    self.publish(core, b.signal());
                }
                None if may_wait && matches!(q.overflow, Overflow::Block { .. }) => {
                    return Err(Refused::Wait(input));
                }
                None => {
                    self.counters.accepted(signal, items);
                    self.counters.dropped(signal, full, items);
                    return Err(Refused::Dropped(TrySendError::Full {
                        reason: full,
                        items,
                    }));
                }
            }
        }
        self.counters.accepted(signal, items);
        self.counters.took_bytes(cost);
        *core.outstanding.entry(core.epoch).or_default() += items;
        core.mem_items += items;
        core.mem_bytes += cost;
        core.mem_held[signal.index()] += cost;
        let batcher = &mut core.batchers[signal.index()];
        match input {
            Input::Item(i) => batcher.push_costed(i, cost),
            Input::Raw(b) => batcher.push_raw(b),
        }
        if batcher.items() >= self.config.batch.max_batch_size {
            self.cut(core, signal);
        }
        self.publish(core, signal);
        Ok(())
    }

    /// Moves batches that waited in memory for a full disk onto the disk, oldest first.
    #[cfg(feature = "disk-queue")]
    fn spill_to_disk(&self, core: &mut Core) {
        let Some(disk) = core.disk.as_mut() else {
            return;
        };
        let mut moved = false;
        // Bounded: each turn moves one batch or stops.
        while let Some(front) = core.queue.front() {
            if disk.append(&front.batch, front.epoch, false).is_err() {
                break;
            }
            if let Some(Queued { batch: b, .. }) = core.queue.pop_front() {
                let (signal, items, size) = (b.signal(), b.items(), b.byte_size() as u64);
                let held = &mut core.mem_held[signal.index()];
                *held = held.saturating_sub(size);
                core.mem_items = core.mem_items.saturating_sub(items);
                core.mem_bytes = core.mem_bytes.saturating_sub(size);
                moved = true;
            }
        }
        if moved {
            self.space.notify_waiters();
        }
    }

    /// Cuts `signal`'s open batch and queues it (on disk when configured).
    fn cut(&self, core: &mut Core, signal: Signal) {
        let opened = core.batchers[signal.index()].started();
        let Some((batch, charged, parts)) = core.batchers[signal.index()].cut_charged() else {
            return;
        };
        if let Some(opened) = opened {
            self.counters
                .stage_time(signal, PipelineStage::Batch, opened.elapsed());
        }
        let size = batch.byte_size() as u64;
        let epoch = core.epoch;
        // The charge was an upper bound of the size: give back the difference.
        core.release(signal, 0, charged - size.min(charged));
        #[cfg(feature = "disk-queue")]
        if let Some(disk) = core.disk.as_mut() {
            // While memory is plentiful, a written batch also stays cached in
            // memory (still charged), so workers need not read it back.
            let cache = core.mem_bytes <= self.config.queue.max_bytes / 2
                && core.mem_items <= self.config.queue.max_items / 2;
            match disk.append(&batch, epoch, cache) {
                Ok(()) => {
                    if !cache {
                        core.release(signal, batch.items(), size);
                    }
                    self.space.notify_waiters();
                    self.work.notify_one();
                    self.counters.depth(signal);
                    return;
                }
                Err(e) => {
                    if let AppendError::Io(e) = &e {
                        tracing::warn!(error = %e, "disk queue: write failed, treated as a full disk");
                    }
                    if !matches!(self.config.queue.overflow, Overflow::Block { .. }) {
                        tracing::warn!(
                            signal = %signal,
                            items = batch.items(),
                            "disk queue full: batch dropped (disk_full)"
                        );
                        core.release(signal, batch.items(), size);
                        leave(&mut core.outstanding, epoch, batch.items());
                        self.counters
                            .dropped(signal, DropReason::DiskFull, batch.items());
                        self.space.notify_waiters();
                        self.settled.notify_waiters();
                        return;
                    }
                    // `block`: the batch waits in memory, within the memory limit,
                    // so producers block once that fills up too.
                }
            }
        }
        core.queue.push_back(Queued {
            batch,
            epoch,
            queued_at: Instant::now(),
            parts,
        });
        self.work.notify_one();
        self.counters.depth(signal);
    }

    /// Cuts every open batch and starts a new flush epoch; `close` also stops
    /// intake. Returns the epoch that ended, which `wait_settled` waits for.
    fn cut_all(&self, close: bool) -> u64 {
        let mut core = self.lock();
        if close {
            core.closed = true;
        }
        for s in Signal::ALL {
            self.cut(&mut core, s);
            self.publish(&core, s);
        }
        #[cfg(feature = "disk-queue")]
        {
            self.spill_to_disk(&mut core);
            if let Some(d) = core.disk.as_mut() {
                d.sync();
            }
        }
        let epoch = core.epoch;
        core.epoch += 1;
        epoch
    }

    /// Waits until no item admitted in `epoch` or before is unsettled.
    async fn wait_settled(&self, epoch: u64) {
        // Bounded by the caller's deadline; each turn waits for a settlement.
        loop {
            let settled = self.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            let oldest = self.lock().outstanding.keys().next().copied();
            if oldest.is_none_or(|e| e > epoch) {
                return;
            }
            settled.await;
        }
    }

    /// Takes the oldest queued batch for a worker.
    fn take(&self) -> Option<(u64, Batch)> {
        let mut core = self.lock();
        let core = &mut *core;
        #[cfg(feature = "disk-queue")]
        if let Some(disk) = core.disk.as_mut() {
            // Bounded: each turn removes one pending record.
            while disk.has_pending() {
                match disk.take() {
                    Some(Ok((rid, batch, epoch, cached, since))) => {
                        let id = core.next_id;
                        core.next_id += 1;
                        let flight = Flight {
                            signal: batch.signal(),
                            items: batch.items(),
                            epoch,
                            since: Instant::from_std(since),
                            bisect: None,
                            mem_items: if cached { batch.items() } else { 0 },
                            mem_bytes: if cached { batch.byte_size() as u64 } else { 0 },
                            disk: Some((rid, batch.byte_size() as u64)),
                        };
                        core.inflight.insert(id, flight);
                        return Some((id, batch));
                    }
                    Some(Err(bad)) => {
                        disk.ack(bad.id, bad.signal, bad.len);
                        leave(&mut core.outstanding, bad.epoch, bad.items);
                        self.counters
                            .dropped(bad.signal, DropReason::Corrupt, bad.items);
                        self.settled.notify_waiters();
                    }
                    None => break,
                }
            }
        }
        let Queued {
            batch,
            epoch,
            queued_at,
            parts,
        } = core.queue.pop_front()?;
        self.counters.stage_time(
            batch.signal(),
            PipelineStage::QueueWait,
            queued_at.elapsed(),
        );
        let id = core.next_id;
        core.next_id += 1;
        core.inflight.insert(
            id,
            Flight {
                signal: batch.signal(),
                items: batch.items(),
                epoch,
                since: queued_at,
                bisect: (!parts.is_empty()).then(|| (batch.clone(), parts)),
                mem_items: batch.items(),
                mem_bytes: batch.byte_size() as u64,
                #[cfg(feature = "disk-queue")]
                disk: None,
            },
        );
        Some((id, batch))
    }

    /// Records the outcome of batch `id`, unless shutdown already settled it.
    fn settle(&self, id: u64, outcome: Outcome) {
        let mut core = self.lock();
        let Some(mut f) = core.inflight.remove(&id) else {
            return;
        };
        if let Err(failure) = &outcome
            && failure.invalid
            && let Some((batch, parts)) = f.bisect.take()
        {
            // The collector refused the joined batch's content: one sender's
            // request may be bad. Send the halves again, front of the queue,
            // so that only the bad part fails (bounded: every turn halves).
            let (mut left, mut right) = bisect(&batch, &parts);
            left.epoch = f.epoch;
            right.epoch = f.epoch;
            tracing::info!(
                signal = %f.signal,
                parts = parts.len(),
                items = f.items,
                error = %failure.message,
                "collector refused a joined batch as invalid; retrying its halves to isolate the bad request"
            );
            // The halves are slices of the same bytes, still charged in memory.
            core.queue.push_front(right);
            core.queue.push_front(left);
            drop(core);
            self.work.notify_one();
            self.work.notify_one();
            return;
        }
        let (signal, items) = (f.signal, f.items);
        core.release(signal, f.mem_items, f.mem_bytes);
        #[cfg(feature = "disk-queue")]
        if let (Some((rid, len)), Some(disk)) = (f.disk, core.disk.as_mut()) {
            disk.ack(rid, signal, len);
            self.spill_to_disk(&mut core);
        }
        self.publish(&core, signal);
        // The counters move before the items leave their epoch, under the same
        // lock, so a flush that returns always sees them settled.
        let failure = match outcome {
            Ok(resp) => {
                let rejected = resp.rejected.min(items);
                self.counters.sent(signal, items - rejected);
                self.counters
                    .failed_because(signal, FailReason::Rejected, rejected, &resp.message);
                (rejected > 0).then_some((FailReason::Rejected, rejected, resp.message))
            }
            Err(Failure { class, message, .. }) => {
                let reason = match class {
                    Retryability::Permanent => FailReason::Permanent,
                    Retryability::TooLarge => FailReason::TooLarge,
                    Retryability::Retryable | Retryability::Throttled(_) => {
                        FailReason::RetriesExhausted
                    }
                };
                self.counters
                    .failed_because(signal, reason, items, &message);
                Some((reason, items, message))
            }
        };
        leave(&mut core.outstanding, f.epoch, items);
        drop(core);
        if let Some((reason, n, message)) = failure {
            tracing::warn!(
                %signal,
                items = n,
                %reason,
                last_error = %message,
                "export given up: items counted as failed; the last error says why"
            );
        }
        self.counters.depth(signal);
        self.space.notify_waiters();
        self.settled.notify_waiters();
    }

    /// After the workers stopped: settles what the memory holds as dropped
    /// (shutdown) and returns the items the disk keeps for the next start.
    fn abandon(&self) -> u64 {
        let mut core = self.lock();
        let core = &mut *core;
        #[allow(unused_mut)] // Only the disk queue adds to it.
        let mut left = 0;
        for (_, f) in core.inflight.drain() {
            #[cfg(feature = "disk-queue")]
            if f.disk.is_some() {
                left += f.items;
                continue;
            }
            leave(&mut core.outstanding, f.epoch, f.items);
            self.counters
                .dropped(f.signal, DropReason::Shutdown, f.items);
        }
        for Queued {
            batch: b, epoch, ..
        } in core.queue.drain(..)
        {
            leave(&mut core.outstanding, epoch, b.items());
            self.counters
                .dropped(b.signal(), DropReason::Shutdown, b.items());
        }
        core.mem_items = 0;
        core.mem_bytes = 0;
        core.mem_held = [0; 3];
        #[cfg(feature = "disk-queue")]
        if let Some(disk) = core.disk.as_mut() {
            disk.sync();
            left += disk.pending_items().iter().sum::<u64>();
        }
        for s in Signal::ALL {
            self.publish(core, s);
        }
        self.settled.notify_waiters();
        left
    }

    /// Publishes `signal`'s held bytes (memory and disk).
    fn publish(&self, core: &Core, signal: Signal) {
        #[allow(unused_mut)]
        let mut bytes = core.mem_held[signal.index()];
        #[cfg(feature = "disk-queue")]
        if let Some(d) = &core.disk {
            bytes += d.held(signal);
        }
        self.counters.held(signal, bytes);
    }

    /// Cuts batches whose timeout passed; syncs the disk per its interval.
    fn on_tick(&self, now: Instant) {
        let timeout = self.config.batch.batch_timeout;
        let mut core = self.lock();
        for s in Signal::ALL {
            if core.batchers[s.index()]
                .started()
                .is_some_and(|t| now.duration_since(t) >= timeout)
            {
                self.cut(&mut core, s);
                self.publish(&core, s);
            }
        }
        #[cfg(feature = "disk-queue")]
        if let Some(d) = core.disk.as_mut() {
            d.maybe_sync();
        }
    }

    fn tick_period(&self) -> Duration {
        #[allow(unused_mut)]
        let mut p = self.config.batch.batch_timeout / 4;
        #[cfg(feature = "disk-queue")]
        if let Some(i) = self.lock().disk.as_ref().and_then(DiskQueue::sync_interval) {
            p = p.min(i);
        }
        p.max(Duration::from_millis(1))
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

/// `items` of flush `epoch` were settled.
fn leave(outstanding: &mut BTreeMap<u64, u64>, epoch: u64, items: u64) {
    if let Some(n) = outstanding.get_mut(&epoch) {
        *n = n.saturating_sub(items);
        if *n == 0 {
            outstanding.remove(&epoch);
        }
    }
}

/// One export worker: waits for the service to be ready, then for a batch.
async fn work<S>(shared: Arc<Shared>, proto: S, stop: Arc<AtomicBool>)
where
    S: Service<Batch, Response = ExportResponse> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Classify + fmt::Display + Send,
{
    let mut svc = proto.clone();
    while !stop.load(Ordering::Relaxed) {
        // Readiness first, so back-pressure keeps batches in the queue, where
        // the overflow policy can act on them.
        if let Err(e) = svc.ready().await {
            tracing::warn!(error = %e, "export service failed while becoming ready; retrying with a fresh clone");
            tokio::time::sleep(Duration::from_millis(100)).await;
            svc = proto.clone();
            continue;
        }
        let Some((id, batch)) = next_batch(&shared, &stop).await else {
            return;
        };
        let outcome = svc.call(batch).await.map_err(|e| Failure {
            class: e.classify(),
            invalid: e.is_invalid_request(),
            message: e.to_string(),
        });
        shared.settle(id, outcome);
    }
}

async fn next_batch(shared: &Shared, stop: &AtomicBool) -> Option<(u64, Batch)> {
    loop {
        let work = shared.work.notified();
        tokio::pin!(work);
        work.as_mut().enable();
        if stop.load(Ordering::Relaxed) {
            return None;
        }
        if let Some(next) = shared.take() {
            return Some(next);
        }
        work.await;
    }
}

/// Splits a joined batch at its middle part boundary into two queued halves
/// of the same epoch, each a slice of the same bytes with its own parts.
fn bisect(batch: &Batch, parts: &[Part]) -> (Queued, Queued) {
    let mid = parts.len() / 2;
    let at = parts[mid].offset;
    let bytes = batch.bytes();
    let half = |range: std::ops::Range<usize>, ps: &[Part], base: usize| {
        let items = ps.iter().map(|p| p.items).sum();
        let parts: Vec<Part> = if ps.len() < 2 {
            Vec::new()
        } else {
            ps.iter()
                .map(|p| Part {
                    offset: p.offset - base,
                    items: p.items,
                })
                .collect()
        };
        (Batch::new(batch.signal(), bytes.slice(range), items), parts)
    };
    let (l, lp) = half(0..at, &parts[..mid], 0);
    let (r, rp) = half(at..bytes.len(), &parts[mid..], at);
    (
        Queued {
            batch: l,
            epoch: 0,
            queued_at: Instant::now(),
            parts: lp,
        },
        Queued {
            batch: r,
            epoch: 0,
            queued_at: Instant::now(),
            parts: rp,
        },
    )
}

/// The batch timer; ends when the pipeline is gone.
async fn tick(shared: std::sync::Weak<Shared>) {
    let period = match shared.upgrade() {
        Some(s) => s.tick_period(),
        None => return,
    };
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let now = interval.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        shared.on_tick(now);
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}
