//! The per-signal batcher: appends each encoded item to its (resource, scope)
//! buffer as it arrives and writes the entry headers around the buffers at cut time.

use bytes::Bytes;
use otlp_core::{Batch, Signal};
use tokio::time::Instant;

use crate::item::{Group, Item, len_field_size, put_len_header};

/// Upper bound of a tag plus a length varint: what a new entry may add at cut time.
const ENTRY_OVERHEAD: u64 = 11;

/// A (resource, scope) buffer of this capacity or less is kept, emptied,
/// after a cut for the next batch of the same groups, so a steady producer
/// fills it without growing it again (no reallocation copies, no fresh
/// pages); a larger one is freed. Held at most once per group of the last
/// batch, outside the memory limit, like a `Vec`'s own spare capacity.
const KEEP_CAPACITY: usize = 2 * 1024 * 1024;

/// The open batch of one signal, grouped by resource and scope.
///
/// Each item's encoded body is appended to its (resource, scope) buffer as it
/// arrives, so the memory held is the encoded size; [`Batcher::cut`] writes
/// the `Resource*` (field 1) and `Scope*` (field 2) length headers around the
/// buffers, in one pass with one allocation. A batch made of exactly one
/// already-encoded request ([`Batcher::push_raw`]) is cut as that request's
/// own `Bytes`, without a copy (the relay path). The [`Pipeline`](crate::Pipeline)
/// runs one per signal; it is public for producers that batch on their own.
///
/// ```
/// use bytes::Bytes;
/// use otlp_core::Signal;
/// use otlp_pipeline::{Batcher, Group, Item};
///
/// let mut b = Batcher::new(Signal::Logs);
/// let item = Item::new(Signal::Logs, Group::empty(), Group::empty(), Bytes::from_static(b"\x09\x01\0\0\0\0\0\0\0"), 1);
/// b.push(item.clone());
/// b.push(item);
/// let batch = b.cut().expect("two items were pushed");
/// assert_eq!(batch.items(), 2);
/// assert_eq!(otlp_core::count_items(Signal::Logs, batch.bytes())?, 2);
/// assert!(b.cut().is_none(), "never an empty request");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Batcher {
    signal: Signal,
    /// The groups of the open batch, and (emptied) those of the last one;
    /// a scope holds items of the open batch when its buffer is not empty.
    resources: Vec<ResourceBuf>,
    /// Whether any item went to `resources` since the last cut.
    grouped: bool,
    /// Already-encoded requests from the raw path, appended after the grouped items.
    raw: Vec<Batch>,
    items: u64,
    /// Bytes charged to the memory budget: an upper bound of the cut size.
    charged: u64,
    /// When the first item of the open batch arrived.
    started: Option<Instant>,
}

#[derive(Debug)]
struct ResourceBuf {
    group: Group,
    scopes: Vec<ScopeBuf>,
}

#[derive(Debug)]
struct ScopeBuf {
    group: Group,
    /// The items, each as field 2 (tag, length, body).
    buf: Vec<u8>,
}

impl ResourceBuf {
    fn is_open(&self) -> bool {
        self.scopes.iter().any(ScopeBuf::is_open)
    }
}

impl ScopeBuf {
    /// Whether it holds items of the open batch (each adds a tag and a length).
    fn is_open(&self) -> bool {
        !self.buf.is_empty()
    }
}

// === impl Batcher ===

impl Batcher {
    /// An empty batcher for `signal`.
    pub fn new(signal: Signal) -> Self {
        Self {
            signal,
            resources: Vec::new(),
            grouped: false,
            raw: Vec::new(),
            items: 0,
            charged: 0,
            started: None,
        }
    }

    /// Items in the open batch.
    pub fn items(&self) -> u64 {
        self.items
    }

    /// An upper bound of the open batch's encoded size (what the memory limit counts).
    pub fn charged(&self) -> u64 {
        self.charged
    }

    /// Whether no batch is open.
    pub fn is_empty(&self) -> bool {
        !self.grouped && self.raw.is_empty()
    }

    fn open_resources(&self) -> impl Iterator<Item = &ResourceBuf> {
        self.resources.iter().filter(|r| r.is_open())
    }

    pub(crate) fn started(&self) -> Option<Instant> {
        self.started
    }

    /// The bytes `item` would add to [`Batcher::charged`] (at most).
    pub fn cost(&self, item: &Item) -> u64 {
        let mut cost = item.encoded_len() as u64;
        match self
            .resources
            .iter()
            .rev()
            .find(|r| r.group == item.resource)
        {
            Some(r) if r.is_open() => {
                if !r
                    .scopes
                    .iter()
                    .rev()
                    .any(|s| s.group == item.scope && s.is_open())
                {
                    cost += ENTRY_OVERHEAD + item.scope.len() as u64
                }
            }
            // A resource new to the open batch costs both headers.
            _ => cost += 2 * ENTRY_OVERHEAD + (item.resource.len() + item.scope.len()) as u64,
        }
        cost
    }

    /// Appends `item` to its (resource, scope) buffer. The item's signal is not checked.
    pub fn push(&mut self, item: Item) {
        let cost = self.cost(&item);
        self.push_costed(item, cost);
    }

    /// Appends `item`; `cost` is what [`Batcher::cost`] returned for it.
    pub(crate) fn push_costed(&mut self, item: Item, cost: u64) {
        self.started.get_or_insert_with(Instant::now);
        self.grouped = true;
        self.items += item.count;
        self.charged += cost;
        // Most producers use one resource and few scopes: search from the most recent.
        let r = match self
            .resources
            .iter()
            .rposition(|r| r.group == item.resource)
        {
            // A kept entry opened again goes last: the cut writes the groups
            // in the order the open batch first used them.
            Some(i) if !self.resources[i].is_open() => {
                let r = self.resources.remove(i);
                self.resources.push(r);
                let last = self.resources.len() - 1;
                &mut self.resources[last]
            }
            Some(i) => &mut self.resources[i],
            None => {
                self.resources.push(ResourceBuf {
                    group: item.resource,
                    scopes: Vec::new(),
                });
                let last = self.resources.len() - 1;
                &mut self.resources[last]
            }
        };
        let s = match r.scopes.iter().rposition(|s| s.group == item.scope) {
            Some(i) if !r.scopes[i].is_open() => {
                let s = r.scopes.remove(i);
                r.scopes.push(s);
                let last = r.scopes.len() - 1;
                &mut r.scopes[last]
            }
            Some(i) => &mut r.scopes[i],
            None => {
                r.scopes.push(ScopeBuf {
                    group: item.scope,
                    buf: Vec::new(),
                });
                let last = r.scopes.len() - 1;
                &mut r.scopes[last]
            }
        };
        s.buf.reserve(len_field_size(item.body.len()));
        put_len_header(&mut s.buf, 2, item.body.len());
        s.buf.extend_from_slice(&item.body);
    }

    /// Appends an already-encoded request (joined by appending its bytes;
    /// alone in a batch, it is cut as the same `Bytes`, uncopied).
    pub fn push_raw(&mut self, batch: Batch) {
        self.started.get_or_insert_with(Instant::now);
        self.items += batch.items();
        self.charged += batch.byte_size() as u64;
        self.raw.push(batch);
    }

    /// Cuts the open batch, or returns `None` when nothing is open (an empty
    /// request is never emitted).
    pub fn cut(&mut self) -> Option<Batch> {
        self.cut_charged().map(|(b, _, _)| b)
    }

    /// Cuts the open batch, returning it with the bytes that were charged for
    /// it and, when it joins several parts (the grouped items, each received
    /// request), where each part starts: the pipeline bisects along them when
    /// the collector refuses the joined batch as invalid.
    pub(crate) fn cut_charged(&mut self) -> Option<(Batch, u64, Vec<Part>)> {
        if self.is_empty() {
            return None;
        }
        // A batch made of exactly one received request is that request: hand
        // on its bytes (a reference count) instead of copying ~hundreds of KiB.
        if !self.grouped && self.raw.len() == 1 {
            let batch = self.raw.pop()?;
            let charged = self.charged;
            self.reset();
            return Some((batch, charged, Vec::new()));
        }
        let mut scope_lens = Vec::new();
        let mut resource_lens = Vec::with_capacity(self.resources.len());
        let mut total = 0;
        for r in self.open_resources() {
            let mut rlen = r.group.len();
            for s in r.scopes.iter().filter(|s| s.is_open()) {
                let slen = s.group.len() + s.buf.len();
                scope_lens.push(slen);
                rlen += len_field_size(slen);
            }
            resource_lens.push(rlen);
            total += len_field_size(rlen);
        }
        total += self.raw.iter().map(Batch::byte_size).sum::<usize>();
        let mut out = Vec::with_capacity(total);
        let mut si = 0;
        for (r, rlen) in self.open_resources().zip(&resource_lens) {
            put_len_header(&mut out, 1, *rlen);
            out.extend_from_slice(r.group.as_bytes());
            for s in r.scopes.iter().filter(|s| s.is_open()) {
                put_len_header(&mut out, 2, scope_lens[si]);
                si += 1;
                out.extend_from_slice(s.group.as_bytes());
                out.extend_from_slice(&s.buf);
            }
        }
        let mut parts = Vec::with_capacity(self.raw.len() + 1);
        if self.grouped {
            let grouped = self.items - self.raw.iter().map(Batch::items).sum::<u64>();
            parts.push(Part {
                offset: 0,
                items: grouped,
            });
        }
        for b in &self.raw {
            parts.push(Part {
                offset: out.len(),
                items: b.items(),
            });
            out.extend_from_slice(b.bytes());
        }
        debug_assert_eq!(out.len(), total);
        let batch = Batch::new(self.signal, Bytes::from(out), self.items);
        let charged = self.charged;
        self.reset();
        if parts.len() < 2 {
            parts.clear();
        }
        Some((batch, charged, parts))
    }

    /// Empties the open batch after a cut.
    fn reset(&mut self) {
        // Keep the buffers of this batch's groups, emptied, for the next
        // batch; forget the groups it did not use.
        for r in &mut self.resources {
            r.scopes
                .retain(|s| s.is_open() && s.buf.capacity() <= KEEP_CAPACITY);
            for s in &mut r.scopes {
                s.buf.clear();
            }
        }
        self.resources.retain(|r| !r.scopes.is_empty());
        self.grouped = false;
        self.raw.clear();
        self.items = 0;
        self.charged = 0;
        self.started = None;
    }
}

/// Where one joined part of a cut batch starts, and how many items it has.
///
/// Protobuf concatenation makes every run of consecutive parts a valid
/// request of its own: `bytes[part.offset..next.offset]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Part {
    pub(crate) offset: usize,
    pub(crate) items: u64,
}

#[cfg(test)]
mod tests;
