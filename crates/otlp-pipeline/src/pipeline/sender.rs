//! `Sender`: the producers' handle (items, encoded requests, whole-request admission).

use super::*;

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
