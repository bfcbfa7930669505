//! Cutting batches, handing them to workers, settling each outcome (sent, dropped, failed, bisected) and shutdown's abandon.

use super::*;

impl Shared {
    /// Cuts `signal`'s open batch and queues it (on disk when configured).
    pub(super) fn cut(&self, core: &mut Core, signal: Signal) {
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
    pub(super) fn cut_all(&self, close: bool) -> u64 {
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
            core.sync_on_release();
        }
        let epoch = core.epoch;
        core.epoch += 1;
        epoch
    }

    /// Waits until no item admitted in `epoch` or before is unsettled.
    pub(super) async fn wait_settled(&self, epoch: u64) {
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
    pub(super) fn take(&self) -> Option<(u64, Batch)> {
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
    pub(super) fn settle(&self, id: u64, outcome: Outcome) {
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
    pub(super) fn abandon(&self) -> u64 {
        let mut guard = self.lock();
        let core = &mut *guard;
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
        core.mem_held = [0; Signal::COUNT];
        #[cfg(feature = "disk-queue")]
        if let Some(disk) = core.disk.as_ref() {
            left += disk.pending_items().iter().sum::<u64>();
        }
        for s in Signal::ALL {
            self.publish(core, s);
        }
        #[cfg(feature = "disk-queue")]
        guard.sync_on_release();
        self.settled.notify_waiters();
        left
    }

    /// Publishes `signal`'s held bytes (memory and disk).
    pub(super) fn publish(&self, core: &Core, signal: Signal) {
        #[allow(unused_mut)]
        let mut bytes = core.mem_held[signal.index()];
        #[cfg(feature = "disk-queue")]
        if let Some(d) = &core.disk {
            bytes += d.held(signal);
        }
        self.counters.held(signal, bytes);
    }

    /// Cuts batches whose timeout passed; syncs the disk per its interval.
    pub(super) fn on_tick(&self, now: Instant) {
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
            // Synced when the lock is released, outside it.
            d.check_interval();
        }
    }

    pub(super) fn tick_period(&self) -> Duration {
        #[allow(unused_mut)]
        let mut p = self.config.batch.batch_timeout / 4;
        #[cfg(feature = "disk-queue")]
        if let Some(i) = self.lock().disk.as_ref().and_then(DiskQueue::sync_interval) {
            p = p.min(i);
        }
        p.max(Duration::from_millis(1))
    }
}

/// `items` of flush `epoch` were settled.
pub(super) fn leave(outstanding: &mut BTreeMap<u64, u64>, epoch: u64, items: u64) {
    if let Some(n) = outstanding.get_mut(&epoch) {
        *n = n.saturating_sub(items);
        if *n == 0 {
            outstanding.remove(&epoch);
        }
    }
}

/// Splits a joined batch at its middle part boundary into two queued halves
/// of the same epoch, each a slice of the same bytes with its own parts.
pub(super) fn bisect(batch: &Batch, parts: &[Part]) -> (Queued, Queued) {
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
