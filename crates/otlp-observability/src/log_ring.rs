//! The log ring: the last N `tracing` events kept in memory for
//! `/debug/logs`, with a small analysis (counts by level, recent errors, top
//! targets).
//!
//! The ring is allocated once: N entries, each with a message buffer of the
//! maximum message length. Recording an event formats it into a per-thread
//! scratch buffer, then copies at most that many bytes into the oldest slot,
//! so each event costs O(1), allocates nothing after warm-up, and the ring's
//! memory never grows, however many events pass through it.

use std::{
    cell::RefCell,
    collections::HashMap,
    fmt::{self, Write as _},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use serde::Serialize;
use tracing::{Event, Level, Subscriber, field::Field};
use tracing_subscriber::{Layer, layer::Context};

/// A `tracing_subscriber` layer keeping the last events in a fixed ring.
///
/// Cloning is cheap; clones share the ring. Install one clone as a layer and
/// hand another to the admin server.
///
/// ```
/// use otlp_observability::LogRing;
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let ring = LogRing::new(100, 256);
/// let subscriber = tracing_subscriber::registry().with(ring.clone());
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::error!(endpoint = "http://collector:4317", "export failed");
/// });
/// let analysis = ring.analysis();
/// assert_eq!(analysis.by_level.error, 1);
/// assert_eq!(analysis.recent_errors[0].message, "export failed endpoint=\"http://collector:4317\"");
/// ```
#[derive(Clone)]
pub struct LogRing {
    inner: Arc<Inner>,
}

/// One recorded event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LogEntry {
    /// When it happened, in milliseconds since the Unix epoch.
    pub timestamp_unix_ms: u64,
    /// `ERROR`, `WARN`, `INFO`, `DEBUG` or `TRACE`.
    pub level: &'static str,
    /// The event's target (usually its module path).
    pub target: &'static str,
    /// The message followed by the other fields as `key=value`, truncated.
    pub message: String,
    /// Whether the message was cut to the ring's maximum length.
    pub truncated: bool,
}

/// Event counts by level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LevelCounts {
    /// `ERROR` events.
    pub error: u64,
    /// `WARN` events.
    pub warn: u64,
    /// `INFO` events.
    pub info: u64,
    /// `DEBUG` events.
    pub debug: u64,
    /// `TRACE` events.
    pub trace: u64,
}

/// What the ring says about recent logging.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LogAnalysis {
    /// Events seen since the ring was created, by level.
    pub by_level: LevelCounts,
    /// Events seen since the ring was created.
    pub total: u64,
    /// Events held in the ring now.
    pub retained: usize,
    /// Events held in the ring now, by level.
    pub retained_by_level: LevelCounts,
    /// The most recent `ERROR` events held, newest first.
    pub recent_errors: Vec<LogEntry>,
    /// The targets with the most events held, most first, with their counts.
    pub top_targets: Vec<(&'static str, usize)>,
}

struct Inner {
    ring: Mutex<Ring>,
    capacity: usize,
    max_message_len: usize,
    counts: [AtomicU64; 5],
}

struct Ring {
    slots: Box<[Slot]>,
    /// The slot the next event goes into.
    next: usize,
    /// Slots filled so far (at most the capacity).
    len: usize,
}

struct Slot {
    timestamp_unix_ms: u64,
    level: Level,
    target: &'static str,
    message: String,
    truncated: bool,
}

/// Writes into a `String` up to a byte limit, cutting at a character boundary.
struct Bounded<'a> {
    buf: &'a mut String,
    limit: usize,
    truncated: bool,
}

struct Visitor<'a, 'b> {
    out: &'a mut Bounded<'b>,
}

thread_local! {
    static SCRATCH: RefCell<String> = const { RefCell::new(String::new()) };
}

// === impl LogRing ===

impl LogRing {
    /// The default number of events kept.
    pub const DEFAULT_CAPACITY: usize = 1000;
    /// The default maximum message length in bytes.
    pub const DEFAULT_MAX_MESSAGE_LEN: usize = 512;
    /// How many recent errors the analysis lists.
    pub const RECENT_ERRORS: usize = 10;
    /// How many targets the analysis lists.
    pub const TOP_TARGETS: usize = 5;

    /// A ring of `capacity` events (at least 1), each message cut to
    /// `max_message_len` bytes. All memory is allocated here.
    pub fn new(capacity: usize, max_message_len: usize) -> Self {
        let capacity = capacity.max(1);
        let slots = (0..capacity)
            .map(|_| Slot {
                timestamp_unix_ms: 0,
                level: Level::INFO,
                target: "",
                message: String::with_capacity(max_message_len),
                truncated: false,
            })
            .collect();
        Self {
            inner: Arc::new(Inner {
                ring: Mutex::new(Ring {
                    slots,
                    next: 0,
                    len: 0,
                }),
                capacity,
                max_message_len,
                counts: Default::default(),
            }),
        }
    }

    /// How many events the ring holds at most.
    pub fn capacity(&self) -> usize {
        self.inner.capacity
    }

    /// Records one event directly (without `tracing`).
    pub fn push(&self, level: Level, target: &'static str, message: &str) {
        self.inner.counts[level_index(level)].fetch_add(1, Ordering::Relaxed);
        let mut cut = message.len().min(self.inner.max_message_len);
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        self.store(level, target, &message[..cut], cut < message.len());
    }

    fn record_event(&self, event: &Event<'_>) {
        let meta = event.metadata();
        let level = *meta.level();
        self.inner.counts[level_index(level)].fetch_add(1, Ordering::Relaxed);
        let limit = self.inner.max_message_len;
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut buf) => {
                buf.clear();
                let mut bounded = Bounded::new(&mut buf, limit);
                event.record(&mut Visitor { out: &mut bounded });
                let truncated = bounded.truncated;
                self.store(level, meta.target(), &buf, truncated);
            }
            // An event logged while formatting another one's fields (from a
            // field's Debug impl) on this thread: keep it without fields
            // rather than lose it.
            Err(_) => self.store(level, meta.target(), meta.name(), true),
        });
    }

    fn store(&self, level: Level, target: &'static str, message: &str, truncated: bool) {
        let timestamp_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        let mut ring = self.lock();
        let index = ring.next;
        let capacity = ring.slots.len();
        if let Some(slot) = ring.slots.get_mut(index) {
            slot.timestamp_unix_ms = timestamp_unix_ms;
            slot.level = level;
            slot.target = target;
            slot.message.clear();
            // `message` is at most `max_message_len` bytes, the capacity
            // reserved for the slot, so this never reallocates.
            slot.message.push_str(message);
            slot.truncated = truncated;
        }
        ring.next = (index + 1) % capacity;
        ring.len = (ring.len + 1).min(capacity);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        // A panic while holding the lock leaves the ring consistent (every
        // write is to one slot), so a poisoned lock is still usable.
        self.inner.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The events held, oldest first, at most `limit` of the newest.
    pub fn entries(&self, limit: usize) -> Vec<LogEntry> {
        let ring = self.lock();
        let take = ring.len.min(limit);
        let capacity = ring.slots.len();
        (0..take)
            .rev()
            .filter_map(|back| {
                let i = (ring.next + capacity - 1 - back) % capacity;
                ring.slots.get(i).map(Slot::to_entry)
            })
            .collect()
    }

    /// Counts by level, recent errors and top targets.
    pub fn analysis(&self) -> LogAnalysis {
        let entries = self.entries(self.inner.capacity);
        let mut retained_by_level = LevelCounts::default();
        let mut targets: HashMap<&'static str, usize> = HashMap::new();
        for e in &entries {
            retained_by_level.add(e.level);
            *targets.entry(e.target).or_default() += 1;
        }
        let mut top_targets: Vec<_> = targets.into_iter().collect();
        top_targets.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        top_targets.truncate(Self::TOP_TARGETS);
        let recent_errors = entries
            .iter()
            .rev()
            .filter(|e| e.level == "ERROR")
            .take(Self::RECENT_ERRORS)
            .cloned()
            .collect();
        let c = |i: usize| self.inner.counts[i].load(Ordering::Relaxed);
        let by_level = LevelCounts {
            trace: c(0),
            debug: c(1),
            info: c(2),
            warn: c(3),
            error: c(4),
        };
        LogAnalysis {
            total: by_level.error + by_level.warn + by_level.info + by_level.debug + by_level.trace,
            by_level,
            retained: entries.len(),
            retained_by_level,
            recent_errors,
            top_targets,
        }
    }

    /// The heap bytes the ring holds: the slots plus every message buffer's
    /// capacity. It is fixed at creation; tests check it stays so.
    pub fn retained_bytes(&self) -> usize {
        let ring = self.lock();
        ring.slots.len() * std::mem::size_of::<Slot>()
            + ring
                .slots
                .iter()
                .map(|s| s.message.capacity())
                .sum::<usize>()
    }

    /// `{"analysis": ..., "events": [...]}` with at most `limit` events, the
    /// body of `/debug/logs`.
    pub fn to_json(&self, limit: usize) -> String {
        #[derive(Serialize)]
        struct Body {
            analysis: LogAnalysis,
            events: Vec<LogEntry>,
        }
        let body = Body {
            analysis: self.analysis(),
            events: self.entries(limit),
        };
        serde_json::to_string(&body).unwrap_or_else(|_| String::from("{\"events\":[]}"))
    }
}

impl Default for LogRing {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY, Self::DEFAULT_MAX_MESSAGE_LEN)
    }
}

impl fmt::Debug for LogRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogRing")
            .field("capacity", &self.inner.capacity)
            .field("max_message_len", &self.inner.max_message_len)
            .finish_non_exhaustive()
    }
}

impl<S: Subscriber> Layer<S> for LogRing {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        self.record_event(event);
    }
}

fn level_index(level: Level) -> usize {
    match level {
        Level::TRACE => 0,
        Level::DEBUG => 1,
        Level::INFO => 2,
        Level::WARN => 3,
        Level::ERROR => 4,
    }
}

// === impl Slot ===

impl Slot {
    fn to_entry(&self) -> LogEntry {
        LogEntry {
            timestamp_unix_ms: self.timestamp_unix_ms,
            level: self.level.as_str(),
            target: self.target,
            message: self.message.clone(),
            truncated: self.truncated,
        }
    }
}

// === impl LevelCounts ===

impl LevelCounts {
    fn add(&mut self, level: &str) {
        match level {
            "ERROR" => self.error += 1,
            "WARN" => self.warn += 1,
            "INFO" => self.info += 1,
            "DEBUG" => self.debug += 1,
            _ => self.trace += 1,
        }
    }
}

// === impl Bounded ===

impl<'a> Bounded<'a> {
    fn new(buf: &'a mut String, limit: usize) -> Self {
        Self {
            buf,
            limit,
            truncated: false,
        }
    }
}

impl fmt::Write for Bounded<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.limit.saturating_sub(self.buf.len());
        if s.len() <= room {
            self.buf.push_str(s);
            return Ok(());
        }
        let mut cut = room;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        self.buf.push_str(&s[..cut]);
        self.truncated = true;
        // Stop the formatter early: the rest would be thrown away anyway.
        Err(fmt::Error)
    }
}

// === impl Visitor ===

impl tracing::field::Visit for Visitor<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.separate();
            let _ = self.out.write_str(value);
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.out.truncated {
            return;
        }
        self.separate();
        let _ = if field.name() == "message" {
            write!(self.out, "{value:?}")
        } else {
            write!(self.out, "{}={value:?}", field.name())
        };
    }
}

impl Visitor<'_, '_> {
    fn separate(&mut self) {
        if !self.out.buf.is_empty() {
            let _ = self.out.write_str(" ");
        }
    }
}

#[cfg(test)]
mod tests;
