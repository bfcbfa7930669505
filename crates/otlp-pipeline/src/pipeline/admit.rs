//! Admission: room reserved in memory or on disk, overflow policies, whole-request intake and spilling to disk.

use super::*;

impl Shared {
    pub(super) async fn admit_waiting(&self, input: Input) -> Result<(), TrySendError> {
        // The common case, room now, reads no clock and registers no waiter.
        let mut input = match self.admit(input, true, DropReason::QueueFull) {
            Ok(()) => return Ok(()),
            Err(Refused::Dropped(e)) => return Err(e),
            Err(Refused::Wait(back)) => back,
        };
        let deadline = match self.config.queue.overflow {
            Overflow::Block { deadline } => Instant::now() + deadline,
            _ => Instant::now(),
        };
        // Bounded by the deadline: each turn either admits, drops, or waits.
        // The waiter is registered before the retry, so room released
        // between the retry and the wait is not missed.
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
    pub(super) fn admit_or_drop(
        &self,
        input: Input,
        reason: DropReason,
    ) -> Result<(), TrySendError> {
        match self.admit(input, false, reason) {
            Ok(()) => Ok(()),
            Err(Refused::Dropped(e)) => Err(e),
            Err(Refused::Wait(back)) => Err(self.drop_input(back, reason)),
        }
    }

    /// Reserves room for every part of one request and queues them all, or
    /// takes none (see [`Sender::admit_request`]).
    pub(super) fn admit_whole(&self, parts: Vec<Batch>, may_wait: bool) -> Result<(), Whole> {
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
        // Profiles requests never join (their dictionaries would merge): each
        // part is cut as a batch of its own.
        let alone = !signal.joins_by_concatenation();
        for part in parts {
            let cost = part.byte_size() as u64;
            let batcher = &core.batchers[signal.index()];
            if !batcher.is_empty()
                && (alone || batcher.charged() + cost > self.config.batch.max_batch_bytes)
            {
                self.cut(core, signal);
            }
            core.mem_items += part.items();
            core.mem_bytes += cost;
            core.mem_held[signal.index()] += cost;
            let batcher = &mut core.batchers[signal.index()];
            batcher.push_raw(part);
            if alone || batcher.items() >= self.config.batch.max_batch_size {
                self.cut(core, signal);
            }
        }
        self.publish(core, signal);
        Ok(())
    }

    /// Counts `input` as accepted and dropped for `reason`.
    pub(super) fn drop_input(&self, input: Input, reason: DropReason) -> TrySendError {
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
    pub(super) fn admit(
        &self,
        input: Input,
        may_wait: bool,
        full: DropReason,
    ) -> Result<(), Refused> {
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
        // A raw request of a signal that does not join (profiles) goes alone.
        let alone = matches!(input, Input::Raw(_)) && !signal.joins_by_concatenation();
        if !batcher.is_empty()
            && (alone || batcher.charged() + cost > self.config.batch.max_batch_bytes)
        {
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
        if alone || batcher.items() >= self.config.batch.max_batch_size {
            self.cut(core, signal);
        }
        self.publish(core, signal);
        Ok(())
    }

    /// Moves batches that waited in memory for a full disk onto the disk, oldest first.
    #[cfg(feature = "disk-queue")]
    pub(super) fn spill_to_disk(&self, core: &mut Core) {
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
}
