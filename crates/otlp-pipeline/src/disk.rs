//! The persistent queue: append-only segment files with a CRC32 per record.
//!
//! A record is a 25-byte header followed by the encoded request:
//! `magic: "OQR1" | len: u32 LE | items: u64 LE | signal: u8 | header_crc: u32 LE | payload_crc: u32 LE`.
//! The signal is stored as traces 0, metrics 1, logs 2, profiles 3 (numbers
//! never reused or changed, so older segments read back as they were written).
//! The header CRC covers the first 17 bytes. Recovery reads each segment
//! whole and walks its records:
//! - a damaged payload under an intact header is skipped (its length and item
//!   count are trusted) and its items are counted as corrupt;
//! - a damaged header is passed by scanning for the next magic whose header
//!   CRC holds; the items of the bytes in between are unknown, so they are
//!   estimated from the bytes per item of the intact records and logged as an
//!   estimate;
//! - a segment damaged anywhere but a torn tail has its intact records copied
//!   into a fresh segment and is moved into `corrupt/` (never left in the live
//!   directory, so a restart does not count its loss twice); so is a file
//!   named like a segment that cannot be read at all (a directory, an
//!   unreadable file, one larger than [`MAX_SEGMENT_READ`]);
//! - a torn tail (the process died while appending) is cut off in place.
//!
//! Records of the first format (a 21-byte header without magic) are still
//! read. A segment file is deleted when all its records are acknowledged; a
//! record acknowledged in a segment that is still on disk at a crash is
//! delivered again (at-least-once).

use std::{
    collections::VecDeque,
    fs::{self, File, OpenOptions},
    io::{self, Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use otlp_core::{Batch, Signal};

use crate::{DiskQueueConfig, FsyncPolicy, PipelineError};

const MAGIC: [u8; 4] = *b"OQR1";
const HEADER: u64 = 25;
/// The header of the first record format: no magic, CRC over 13 bytes.
const LEGACY_HEADER: u64 = 21;
const SUFFIX: &str = ".seg";
/// Where recovery moves segments it cannot use, inside the queue directory.
pub(crate) const CORRUPT_DIR: &str = "corrupt";
/// The largest segment recovery reads; this agent never writes one near it
/// (segments are at most 64 MiB plus one request).
pub(crate) const MAX_SEGMENT_READ: u64 = 256 * 1024 * 1024;
/// Bytes per item assumed by an estimate when no intact record tells better.
const FALLBACK_BYTES_PER_ITEM: u64 = 256;

/// Where a record lives: its segment and the offset of its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RecordId {
    seq: u64,
    offset: u64,
}

/// A record that is stored and not yet handed to a worker.
/// A record [`DiskQueue::take`] hands out: its id, batch, epoch, whether
/// it was cached, and when it was written.
pub(crate) type Taken = (RecordId, Batch, u64, bool, Instant);

#[derive(Debug)]
struct Pending {
    id: RecordId,
    /// The pipeline's flush epoch (0 for records recovered at start).
    epoch: u64,
    /// The bytes, when the pipeline keeps them in memory too (charged to its limit).
    cached: Option<Bytes>,
    len: u64,
    items: u64,
    signal: Signal,
    /// When it was written (for a record recovered at start, its segment
    /// file's modification time).
    since: Instant,
}

#[derive(Debug)]
struct Segment {
    seq: u64,
    len: u64,
    /// Records not yet acknowledged.
    live: u64,
}

#[derive(Debug)]
struct Writer {
    seq: u64,
    /// Shared with [`SyncTicket`]s, which `fsync` it after the pipeline's
    /// lock is released.
    file: Arc<File>,
}

/// Files with writes the fsync policy wants forced to disk, taken under the
/// pipeline's lock and synced after it is released
/// ([`DiskQueue::take_sync`]), so no producer or worker waits on another
/// one's `fsync`.
#[derive(Debug)]
#[must_use = "a ticket syncs nothing until it is run"]
pub(crate) struct SyncTicket(Vec<Arc<File>>);

impl SyncTicket {
    /// Forces the files' written data to disk; a failure is logged (the
    /// data stays queued and is delivered, but may not survive a power loss).
    pub(crate) fn run(self) {
        for f in self.0 {
            if let Err(e) = f.sync_data() {
                tracing::warn!(error = %e, "disk queue: fsync failed; queued data is kept and delivered, but may not survive a power loss: check the disk");
            }
        }
    }
}

/// A stored record that could not be read back.
#[derive(Debug)]
pub(crate) struct Unreadable {
    pub(crate) id: RecordId,
    pub(crate) signal: Signal,
    pub(crate) items: u64,
    pub(crate) len: u64,
    pub(crate) epoch: u64,
}

/// What recovery found on start.
#[derive(Debug, Default)]
pub(crate) struct Recovery {
    /// Intact records found, per signal (items).
    pub(crate) recovered: [u64; Signal::COUNT],
    /// Items lost to damage, per signal: counted from intact headers, or
    /// estimated (see `estimated`) where no header could be read.
    pub(crate) corrupt: [u64; Signal::COUNT],
    /// The part of `corrupt` that is an estimate from bytes.
    pub(crate) estimated: [u64; Signal::COUNT],
    /// Runs of bytes that were no readable record (damaged headers, garbage,
    /// unreadable files), so their items are estimated.
    pub(crate) corrupt_records: u64,
    /// Bytes cut off or skipped.
    pub(crate) corrupt_bytes: u64,
}

/// A record header, of either format.
#[derive(Clone, Copy, Debug)]
struct Header {
    /// Header bytes (25, or 21 for the first format).
    size: u64,
    len: u64,
    items: u64,
    signal: Signal,
    payload_crc: u32,
}

/// One stretch of a segment, as recovery sees it.
#[derive(Debug)]
enum Piece {
    /// An intact record at `offset`.
    Record { offset: u64, header: Header },
    /// A record whose header is intact and payload is not (damaged, or cut
    /// short): its items are known.
    Damaged { header: Header, bytes: u64 },
    /// Bytes that are no record: what they held is unknown.
    Unknown { offset: u64, bytes: u64 },
}

/// A segment walked by [`scan`].
#[derive(Debug)]
struct Scan {
    pieces: Vec<Piece>,
    /// Where a torn last record begins, when the segment ends in one.
    torn_at: Option<u64>,
}

/// Bytes whose items recovery must estimate.
#[derive(Debug)]
struct Gap {
    path: PathBuf,
    offset: u64,
    bytes: u64,
    /// The signal of the nearest intact record in the same segment.
    hint: Option<Signal>,
}

/// Where the tail of the queue stood, so a failed append can be undone.
#[derive(Clone, Copy, Debug)]
struct Mark {
    segments: usize,
    /// The writer's segment and its length and live count.
    writer: Option<(u64, u64, u64)>,
    total: u64,
    held: [u64; Signal::COUNT],
    pending: usize,
}

/// Why an append did not store the batch.
#[derive(Debug)]
pub(crate) enum AppendError {
    /// The quota is full.
    Full,
    /// The write failed (ENOSPC, EIO, ...); nothing partial is left behind.
    Io(io::Error),
}

/// The on-disk queue state; the files are the truth, this is their index.
#[derive(Debug)]
pub(crate) struct DiskQueue {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    fsync: FsyncPolicy,
    /// Oldest first; the writer's segment, if any, is last.
    segments: VecDeque<Segment>,
    writer: Option<Writer>,
    pending: VecDeque<Pending>,
    next_seq: u64,
    total_bytes: u64,
    /// Bytes of unacknowledged records, per signal.
    held: [u64; Signal::COUNT],
    /// Written since the last [`SyncTicket`] was taken.
    dirty: bool,
    /// The interval policy's time has come (set by `check_interval`).
    due: bool,
    /// Sealed segments written since the last ticket, to sync with it.
    unsynced: Vec<Arc<File>>,
    last_sync: Instant,
}

// === impl DiskQueue ===

impl DiskQueue {
    /// Opens (creating) the queue directory and recovers every segment in it.
    pub(crate) fn open(cfg: &DiskQueueConfig) -> Result<(Self, Recovery), PipelineError> {
        let dir = cfg.dir.clone();
        let err = |action: &'static str| {
            let dir = dir.clone();
            move |source| PipelineError::Disk {
                dir,
                action,
                source,
            }
        };
        fs::create_dir_all(&dir).map_err(err("create directory"))?;
        let mut seqs = Vec::new();
        for entry in fs::read_dir(&dir).map_err(err("list segments"))? {
            let entry = entry.map_err(err("list segments"))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(hex) = name.strip_suffix(SUFFIX)
                && let Ok(seq) = u64::from_str_radix(hex, 16)
            {
                seqs.push(seq);
            }
        }
        seqs.sort_unstable();
        let mut q = DiskQueue {
            dir: dir.clone(),
            max_bytes: cfg.max_bytes,
            segment_bytes: (cfg.max_bytes / 8).clamp(4096, 64 * 1024 * 1024),
            fsync: cfg.fsync,
            segments: VecDeque::new(),
            writer: None,
            pending: VecDeque::new(),
            next_seq: seqs.last().map_or(0, |s| s + 1),
            total_bytes: 0,
            held: [0; Signal::COUNT],
            dirty: false,
            due: false,
            unsynced: Vec::new(),
            last_sync: Instant::now(),
        };
        let mut rec = Recovery::default();
        let mut gaps = Vec::new();
        let mut intact = (0u64, 0u64); // (bytes, items) of intact records
        for seq in seqs {
            let path = q.path(seq);
            // Whatever the directory holds, the process starts: a file that
            // cannot be used is moved aside and its loss counted.
            let (content, size) = match fs::metadata(&path) {
                Ok(m) if !m.is_file() => (Err("not a regular file".to_owned()), 0),
                Ok(m) if m.len() > MAX_SEGMENT_READ => (
                    Err(format!(
                        "{} bytes, larger than any segment this agent writes",
                        m.len()
                    )),
                    m.len(),
                ),
                Ok(m) => (fs::read(&path).map_err(|e| e.to_string()), m.len()),
                Err(e) => (Err(e.to_string()), 0),
            };
            match content {
                Ok(buf) => {
                    if let Err(e) =
                        q.recover_segment(seq, &path, &buf, &mut rec, &mut gaps, &mut intact)
                    {
                        tracing::warn!(file = %path.display(), error = %e, "disk queue: could not tidy a damaged segment; what it holds is counted, and may be counted again at the next start");
                    }
                }
                Err(why) => {
                    rec.corrupt_records += 1;
                    rec.corrupt_bytes += size;
                    gaps.push(Gap {
                        path: path.clone(),
                        offset: 0,
                        bytes: size,
                        hint: None,
                    });
                    q.move_aside(&path, &why);
                }
            }
        }
        estimate(&mut rec, &gaps, intact);
        if rec.corrupt.iter().any(|n| *n > 0) || rec.corrupt_bytes > 0 {
            tracing::warn!(
                dir = %dir.display(),
                items = rec.corrupt.iter().sum::<u64>(),
                items_estimated = rec.estimated.iter().sum::<u64>(),
                unreadable_runs = rec.corrupt_records,
                bytes = rec.corrupt_bytes,
                "disk queue: corrupt data found at recovery; its items are counted in otlp_items_dropped_total{{reason=\"corrupt\"}}"
            );
        }
        Ok((q, rec))
    }

    fn path(&self, seq: u64) -> PathBuf {
        segment_path(&self.dir, seq)
    }

    /// Indexes the records of segment `seq` (its bytes in `buf`), counts
    /// what is lost, and tidies the file (see the module docs).
    fn recover_segment(
        &mut self,
        seq: u64,
        path: &Path,
        buf: &[u8],
        rec: &mut Recovery,
        gaps: &mut Vec<Gap>,
        intact: &mut (u64, u64),
    ) -> io::Result<()> {
        let scan = scan(buf);
        let mut records = Vec::new();
        let mut damage = 0usize;
        for (i, piece) in scan.pieces.iter().enumerate() {
            match *piece {
                Piece::Record { offset, header } => {
                    rec.recovered[header.signal.index()] += header.items;
                    intact.0 += header.size + header.len;
                    intact.1 += header.items;
                    records.push((offset, header));
                }
                Piece::Damaged { header, bytes } => {
                    damage += 1;
                    rec.corrupt[header.signal.index()] += header.items;
                    rec.corrupt_bytes += bytes;
                }
                Piece::Unknown { offset, bytes } => {
                    damage += 1;
                    rec.corrupt_records += 1;
                    rec.corrupt_bytes += bytes;
                    let near = |p: &Piece| match p {
                        Piece::Record { header, .. } | Piece::Damaged { header, .. } => {
                            Some(header.signal)
                        }
                        Piece::Unknown { .. } => None,
                    };
                    let hint = scan.pieces[..i]
                        .iter()
                        .rev()
                        .find_map(near)
                        .or_else(|| scan.pieces[i + 1..].iter().find_map(near));
                    gaps.push(Gap {
                        path: path.to_owned(),
                        offset,
                        bytes,
                        hint,
                    });
                }
            }
        }
        let only_torn = damage == 0 || (damage == 1 && scan.torn_at.is_some());
        if only_torn {
            let mut len = buf.len() as u64;
            if let Some(at) = scan.torn_at {
                let file = OpenOptions::new().write(true).open(path)?;
                file.set_len(at)?;
                file.sync_all()?;
                len = at;
            }
            if records.is_empty() {
                return fs::remove_file(path);
            }
            self.index_in_place(seq, len, &records);
            return Ok(());
        }
        // Damage inside the segment: keep its intact records in a fresh
        // segment, then move the original aside as evidence.
        if !records.is_empty()
            && let Err(e) = self.rewrite(buf, &records)
        {
            tracing::warn!(file = %path.display(), error = %e, "disk queue: could not copy the intact records of a damaged segment; it stays in place");
            self.index_in_place(seq, buf.len() as u64, &records);
            return Ok(());
        }
        self.move_aside(path, "damaged records inside the segment");
        Ok(())
    }

    /// Indexes intact `records` of segment `seq` where they are.
    fn index_in_place(&mut self, seq: u64, len: u64, records: &[(u64, Header)]) {
        // The segment's last write, as an instant, for the backlog age.
        let now = Instant::now();
        let since = fs::metadata(self.path(seq))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .and_then(|age| now.checked_sub(age))
            .unwrap_or(now);
        for &(offset, h) in records {
            self.pending.push_back(Pending {
                id: RecordId { seq, offset },
                epoch: 0,
                cached: None,
                len: h.len,
                items: h.items,
                signal: h.signal,
                since,
            });
            // As `ack` takes it off (a first-format header is 4 bytes shorter).
            self.held[h.signal.index()] += HEADER + h.len;
        }
        self.total_bytes += len;
        self.segments.push_back(Segment {
            seq,
            len,
            live: records.len() as u64,
        });
    }

    /// Copies intact `records` (in `buf`) into a new segment, durably; on
    /// failure nothing of it is left.
    fn rewrite(&mut self, buf: &[u8], records: &[(u64, Header)]) -> io::Result<()> {
        let mark = self.mark();
        for &(offset, h) in records {
            let at = (offset + h.size) as usize;
            let payload = Bytes::copy_from_slice(&buf[at..at + h.len as usize]);
            if let Err(e) = self.append_one(&Batch::new(h.signal, payload, h.items), 0, false) {
                self.roll_back(mark);
                return Err(match e {
                    AppendError::Io(e) => e,
                    AppendError::Full => io::Error::other("disk queue quota full"),
                });
            }
        }
        // Recovery runs before the pipeline exists: syncing inline holds no one up.
        let synced = self.writer.as_ref().map_or(Ok(()), |w| w.file.sync_data());
        if let Err(e) = synced {
            self.roll_back(mark);
            return Err(e);
        }
        self.dirty = false;
        self.seal();
        Ok(())
    }

    /// Moves `path` into the `corrupt/` folder, naming both in the log.
    fn move_aside(&self, path: &Path, why: &str) {
        let aside = self.dir.join(CORRUPT_DIR);
        let name = path
            .file_name()
            .map_or_else(|| "segment".into(), |n| n.to_string_lossy().into_owned());
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut dest = aside.join(format!("{name}.{stamp}"));
        // Bounded: a name is taken at most once per second per segment.
        for k in 1..1000 {
            if !dest.exists() {
                break;
            }
            dest = aside.join(format!("{name}.{stamp}.{k}"));
        }
        match fs::create_dir_all(&aside).and_then(|()| fs::rename(path, &dest)) {
            Ok(()) => tracing::warn!(
                file = %path.display(),
                moved_to = %dest.display(),
                reason = why,
                "disk queue: unusable segment moved out of the queue; its loss is counted as corrupt; keep the file to investigate, or delete it"
            ),
            Err(e) => tracing::error!(
                file = %path.display(),
                error = %e,
                reason = why,
                "disk queue: could not move an unusable segment out of the queue directory; delete it by hand, or its loss is counted again at the next start"
            ),
        }
    }

    /// The bytes a record takes on disk beyond its payload.
    pub(crate) const RECORD_OVERHEAD: u64 = HEADER;

    /// Quota left, in bytes (record headers included in what it must hold).
    pub(crate) fn free_bytes(&self) -> u64 {
        self.max_bytes.saturating_sub(self.total_bytes)
    }

    /// Stores `batch`, cut in flush `epoch`, durably (per the fsync policy) at
    /// the tail; `cache` keeps its bytes in memory so `take` needs no read.
    pub(crate) fn append(
        &mut self,
        batch: &Batch,
        epoch: u64,
        cache: bool,
    ) -> Result<(), AppendError> {
        self.append_all(std::slice::from_ref(batch), epoch, cache)
    }

    /// Stores every batch (one record each, in order) or none of them: on
    /// any failure the files and the index are as they were before the call.
    /// All records of one call go into one segment.
    pub(crate) fn append_all(
        &mut self,
        batches: &[Batch],
        epoch: u64,
        cache: bool,
    ) -> Result<(), AppendError> {
        let need: u64 = batches.iter().map(|b| HEADER + b.byte_size() as u64).sum();
        if batches.is_empty() {
            return Ok(());
        }
        if self.total_bytes + need > self.max_bytes {
            return Err(AppendError::Full);
        }
        let active_len = self.segments.back().map_or(0, |s| s.len);
        if self.writer.is_some() && active_len > 0 && active_len + need > self.segment_bytes {
            self.seal();
        }
        let mark = self.mark();
        for batch in batches {
            if let Err(e) = self.append_one(batch, epoch, cache) {
                self.roll_back(mark);
                return Err(e);
            }
        }
        Ok(())
    }

    fn mark(&self) -> Mark {
        Mark {
            segments: self.segments.len(),
            writer: self.writer.as_ref().and_then(|w| {
                let seg = self.segments.back()?;
                Some((w.seq, seg.len, seg.live))
            }),
            total: self.total_bytes,
            held: self.held,
            pending: self.pending.len(),
        }
    }

    /// Undoes the records written since `mark`: segments opened since go
    /// whole, the writer's segment is cut back to its length then.
    fn roll_back(&mut self, mark: Mark) {
        self.pending.truncate(mark.pending);
        while self.segments.len() > mark.segments {
            let Some(seg) = self.segments.pop_back() else {
                break;
            };
            if self.writer.as_ref().is_some_and(|w| w.seq == seg.seq) {
                self.writer = None;
            }
            let path = self.path(seg.seq);
            if let Err(e) = fs::remove_file(&path)
                && e.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(path = %path.display(), error = %e, "disk queue: could not delete a refused request's segment; it may be delivered once more after a restart");
            }
        }
        self.total_bytes = mark.total;
        self.held = mark.held;
        let Some((seq, len, live)) = mark.writer else {
            return;
        };
        let Some(seg) = self.segments.iter_mut().find(|s| s.seq == seq) else {
            return;
        };
        seg.len = len;
        seg.live = live;
        let truncated = match self.writer.as_mut() {
            Some(w) if w.seq == seq => w.file.set_len(len).is_ok(),
            // `append_one` sealed the segment after a failed write.
            _ => OpenOptions::new()
                .write(true)
                .open(segment_path(&self.dir, seq))
                .and_then(|f| f.set_len(len))
                .is_ok(),
        };
        if !truncated {
            tracing::warn!(
                path = %segment_path(&self.dir, seq).display(),
                "disk queue: could not cut a refused request's records off the segment; they may be delivered once more after a restart"
            );
            self.seal();
        }
    }

    /// Writes one record at the tail of the writer's segment.
    fn append_one(&mut self, batch: &Batch, epoch: u64, cache: bool) -> Result<(), AppendError> {
        let len = batch.byte_size() as u64;
        let rec_len = HEADER + len;
        if self.writer.is_none() {
            let seq = self.next_seq;
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.path(seq))
                .map_err(AppendError::Io)?;
            self.next_seq += 1;
            self.writer = Some(Writer {
                seq,
                file: Arc::new(file),
            });
            self.segments.push_back(Segment {
                seq,
                len: 0,
                live: 0,
            });
        }
        let (Some(w), Some(seg)) = (self.writer.as_mut(), self.segments.back_mut()) else {
            return Err(AppendError::Io(io::Error::other(
                "disk queue writer missing",
            )));
        };
        let h = encode_header(len, batch.items(), batch.signal(), batch.bytes());
        // The fsync the policy asks for runs after the pipeline's lock is
        // released (`take_sync`), before the producer's call returns.
        let mut file = &*w.file;
        let res = file
            .write_all(&h)
            .and_then(|()| file.write_all(batch.bytes()));
        if let Err(e) = res {
            // Roll back a partial write so the segment stays readable; if even
            // that fails, recovery truncates the torn tail on the next start.
            let rollback_failed = w.file.set_len(seg.len).is_err();
            if rollback_failed {
                self.seal();
            }
            return Err(AppendError::Io(e));
        }
        let id = RecordId {
            seq: seg.seq,
            offset: seg.len,
        };
        seg.len += rec_len;
        seg.live += 1;
        self.total_bytes += rec_len;
        self.held[batch.signal().index()] += rec_len;
        self.dirty = !matches!(self.fsync, FsyncPolicy::Never);
        self.pending.push_back(Pending {
            id,
            epoch,
            cached: cache.then(|| batch.bytes().clone()),
            len,
            items: batch.items(),
            signal: batch.signal(),
            since: Instant::now(),
        });
        Ok(())
    }

    /// Closes the writer's segment; later appends start a new one.
    fn seal(&mut self) {
        if let Some(w) = self.writer.take() {
            if self.dirty {
                // Synced with the next ticket, outside the pipeline's lock.
                self.unsynced.push(w.file.clone());
            }
            if let Some(i) = self.segments.iter().position(|s| s.seq == w.seq)
                && self.segments[i].live == 0
            {
                self.remove_segment(i);
            }
        }
    }

    fn remove_segment(&mut self, i: usize) {
        if let Some(seg) = self.segments.remove(i) {
            self.total_bytes -= seg.len;
            if let Err(e) = fs::remove_file(self.path(seg.seq)) {
                tracing::warn!(seq = seg.seq, error = %e, "disk queue: could not delete an acknowledged segment");
            }
        }
    }

    /// Reads the oldest stored record; `Err` is a record that could not be read
    /// back (the caller acknowledges it and counts it as corrupt).
    /// `Ok` carries the record, its batch, its epoch, whether it was cached
    /// and when it was written.
    pub(crate) fn take(&mut self) -> Option<Result<Taken, Unreadable>> {
        let mut p = self.pending.pop_front()?;
        if let Some(bytes) = p.cached.take() {
            return Some(Ok((
                p.id,
                Batch::new(p.signal, bytes, p.items),
                p.epoch,
                true,
                p.since,
            )));
        }
        match self.read(&p) {
            Ok(bytes) => Some(Ok((
                p.id,
                Batch::new(p.signal, bytes, p.items),
                p.epoch,
                false,
                p.since,
            ))),
            Err(e) => {
                tracing::warn!(seq = p.id.seq, offset = p.id.offset, error = %e, "disk queue: record unreadable, dropped as corrupt");
                Some(Err(Unreadable {
                    id: p.id,
                    signal: p.signal,
                    items: p.items,
                    len: p.len,
                    epoch: p.epoch,
                }))
            }
        }
    }

    fn read(&self, p: &Pending) -> io::Result<Bytes> {
        let mut f = File::open(self.path(p.id.seq))?;
        f.seek(SeekFrom::Start(p.id.offset))?;
        let mut h = [0u8; HEADER as usize];
        f.read_exact(&mut h[..4])?;
        let size = if h[..4] == MAGIC {
            HEADER
        } else {
            LEGACY_HEADER
        };
        f.read_exact(&mut h[4..size as usize])?;
        let mut buf = vec![0u8; p.len as usize];
        f.read_exact(&mut buf)?;
        match header_at(&h[..size as usize], 0) {
            Some(h) if h.len == p.len && crc32fast::hash(&buf) == h.payload_crc => {
                Ok(Bytes::from(buf))
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "checksum mismatch",
            )),
        }
    }

    /// Acknowledges a record taken earlier: it will not be delivered again.
    pub(crate) fn ack(&mut self, id: RecordId, signal: Signal, len: u64) {
        self.held[signal.index()] = self.held[signal.index()].saturating_sub(HEADER + len);
        let Some(i) = self.segments.iter().position(|s| s.seq == id.seq) else {
            return;
        };
        let seg = &mut self.segments[i];
        seg.live = seg.live.saturating_sub(1);
        if seg.live > 0 {
            return;
        }
        let is_writer = self.writer.as_ref().is_some_and(|w| w.seq == id.seq);
        if is_writer {
            // Everything written so far is acknowledged: start afresh so the
            // file can go and a restart does not deliver it again.
            self.seal();
        } else {
            self.remove_segment(i);
        }
    }

    /// Marks the interval policy's sync as due once its time has come (the
    /// pipeline's tick calls it; the next [`DiskQueue::take_sync`] syncs).
    pub(crate) fn check_interval(&mut self) {
        if let (FsyncPolicy::Interval(every), true) = (self.fsync, self.dirty)
            && self.last_sync.elapsed() >= every
        {
            self.due = true;
        }
    }

    /// The fsync the policy wants now, to run once the pipeline's lock is
    /// released: after every write under `always`, when the interval is due
    /// under `interval`, never under `never`. `force` (flush, shutdown) takes
    /// it whenever something was written.
    pub(crate) fn take_sync(&mut self, force: bool) -> Option<SyncTicket> {
        let wanted = match self.fsync {
            FsyncPolicy::Never => false,
            FsyncPolicy::Always => true,
            FsyncPolicy::Interval(_) => self.due || force,
        };
        if !(wanted && self.dirty) {
            return None;
        }
        self.dirty = false;
        self.due = false;
        self.last_sync = Instant::now();
        let mut files = std::mem::take(&mut self.unsynced);
        files.extend(self.writer.as_ref().map(|w| w.file.clone()));
        Some(SyncTicket(files))
    }

    /// Items stored and not yet taken, per signal.
    pub(crate) fn pending_items(&self) -> [u64; Signal::COUNT] {
        let mut n = [0; Signal::COUNT];
        for p in &self.pending {
            n[p.signal.index()] += p.items;
        }
        n
    }

    /// Bytes of unacknowledged records of `signal`.
    pub(crate) fn held(&self, signal: Signal) -> u64 {
        self.held[signal.index()]
    }

    /// Whether records wait to be taken.
    /// When the oldest stored record of each signal was written.
    pub(crate) fn oldest(&self) -> [Option<Instant>; Signal::COUNT] {
        let mut out = [None; Signal::COUNT];
        // Bounded by the pending records; stops once every signal is found.
        for p in &self.pending {
            let slot = &mut out[p.signal.index()];
            if slot.is_none() {
                *slot = Some(p.since);
                if out.iter().all(Option::is_some) {
                    break;
                }
            }
        }
        out
    }

    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The longest the interval policy lets data wait unsynced.
    pub(crate) fn sync_interval(&self) -> Option<Duration> {
        match self.fsync {
            FsyncPolicy::Interval(d) => Some(d),
            _ => None,
        }
    }
}

/// The path of segment `seq` in `dir`.
pub(crate) fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:016x}{SUFFIX}"))
}

fn encode_header(len: u64, items: u64, signal: Signal, payload: &[u8]) -> [u8; HEADER as usize] {
    let mut h = [0u8; HEADER as usize];
    h[0..4].copy_from_slice(&MAGIC);
    h[4..8].copy_from_slice(&(len as u32).to_le_bytes());
    h[8..16].copy_from_slice(&items.to_le_bytes());
    h[16] = signal_code(signal);
    let hcrc = crc32fast::hash(&h[0..17]);
    h[17..21].copy_from_slice(&hcrc.to_le_bytes());
    h[21..25].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
    h
}

/// The number a record header stores for its signal. Fixed forever: records
/// written by earlier versions (traces 0, metrics 1, logs 2) must read back
/// as the same signal; a new signal takes the next number.
const fn signal_code(signal: Signal) -> u8 {
    match signal {
        Signal::Traces => 0,
        Signal::Metrics => 1,
        Signal::Logs => 2,
        Signal::Profiles => 3,
    }
}

/// The signal of a header's stored number, `None` for a number no version wrote.
const fn signal_of_code(code: u8) -> Option<Signal> {
    match code {
        0 => Some(Signal::Traces),
        1 => Some(Signal::Metrics),
        2 => Some(Signal::Logs),
        3 => Some(Signal::Profiles),
        _ => None,
    }
}

fn le32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

fn le64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// The header at `pos`, when one is there whole with a matching CRC.
fn header_at(buf: &[u8], pos: usize) -> Option<Header> {
    let h = buf.get(pos..)?;
    let (size, fields, crc_at) = if h.starts_with(&MAGIC) {
        (HEADER, 4, 17)
    } else {
        (LEGACY_HEADER, 0, 13)
    };
    let h = h.get(..size as usize)?;
    if crc32fast::hash(&h[..crc_at]) != le32(&h[crc_at..]) {
        return None;
    }
    Some(Header {
        size,
        len: u64::from(le32(&h[fields..])),
        items: le64(&h[fields + 4..]),
        signal: signal_of_code(h[fields + 12])?,
        payload_crc: le32(&h[crc_at + 4..]),
    })
}

/// The offset of the next valid (current-format) header at or after `from`.
fn next_header(buf: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(i) = buf.get(at..)?.windows(MAGIC.len()).position(|w| w == MAGIC) {
        if header_at(buf, at + i).is_some() {
            return Some(at + i);
        }
        at += i + 1;
    }
    None
}

/// Walks a segment's bytes into records and damage (see the module docs).
fn scan(buf: &[u8]) -> Scan {
    let n = buf.len();
    let mut pieces = Vec::new();
    let mut torn_at = None;
    let mut pos = 0usize;
    while pos < n {
        let Some(h) = header_at(buf, pos) else {
            let next = next_header(buf, pos + 1);
            let end = next.unwrap_or(n);
            if next.is_none() && ((n - pos) as u64) < HEADER {
                // A header cut short: the process died while appending it.
                torn_at = Some(pos as u64);
            }
            pieces.push(Piece::Unknown {
                offset: pos as u64,
                bytes: (end - pos) as u64,
            });
            pos = end;
            continue;
        };
        let end = pos + (h.size + h.len) as usize;
        if end <= n {
            let payload = &buf[pos + h.size as usize..end];
            pieces.push(if crc32fast::hash(payload) == h.payload_crc {
                Piece::Record {
                    offset: pos as u64,
                    header: h,
                }
            } else {
                Piece::Damaged {
                    header: h,
                    bytes: (end - pos) as u64,
                }
            });
            pos = end;
        } else {
            // Cut short: the process died while appending it.
            let next = next_header(buf, pos + 1);
            if next.is_none() {
                torn_at = Some(pos as u64);
            }
            let end = next.unwrap_or(n);
            pieces.push(Piece::Damaged {
                header: h,
                bytes: (end - pos) as u64,
            });
            pos = end;
        }
    }
    Scan { pieces, torn_at }
}

/// Counts the items of unreadable bytes as corrupt, estimated from the bytes
/// per item of the intact records (`intact`: bytes, items), and logs each.
fn estimate(rec: &mut Recovery, gaps: &[Gap], intact: (u64, u64)) {
    let per_item = match intact {
        (bytes, items) if items > 0 => (bytes / items).max(1),
        _ => FALLBACK_BYTES_PER_ITEM,
    };
    let busiest = Signal::ALL
        .into_iter()
        .max_by_key(|s| (rec.recovered[s.index()], std::cmp::Reverse(s.index())))
        .unwrap_or(Signal::Traces);
    for gap in gaps {
        let items = gap.bytes.div_ceil(per_item);
        let signal = gap.hint.unwrap_or(busiest);
        rec.corrupt[signal.index()] += items;
        rec.estimated[signal.index()] += items;
        tracing::warn!(
            file = %gap.path.display(),
            offset = gap.offset,
            bytes = gap.bytes,
            items_estimated = items,
            bytes_per_item = per_item,
            signal = signal.as_str(),
            signal_known = gap.hint.is_some(),
            "disk queue: bytes that hold no readable record were skipped; their item count is an estimate (bytes / bytes per item of the intact records)"
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn record(items: u64, payload: &[u8]) -> Vec<u8> {
        let mut r = encode_header(payload.len() as u64, items, Signal::Logs, payload).to_vec();
        r.extend_from_slice(payload);
        r
    }

    fn legacy_record(items: u64, payload: &[u8]) -> Vec<u8> {
        let mut h = [0u8; LEGACY_HEADER as usize];
        h[0..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        h[4..12].copy_from_slice(&items.to_le_bytes());
        h[12] = 1; // metrics, as the first format wrote it
        let crc = crc32fast::hash(&h[..13]);
        h[13..17].copy_from_slice(&crc.to_le_bytes());
        h[17..21].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
        let mut r = h.to_vec();
        r.extend_from_slice(payload);
        r
    }

    fn kinds(scan: &Scan) -> Vec<(&'static str, u64)> {
        scan.pieces
            .iter()
            .map(|p| match p {
                Piece::Record { header, .. } => ("record", header.items),
                Piece::Damaged { header, .. } => ("damaged", header.items),
                Piece::Unknown { bytes, .. } => ("unknown", *bytes),
            })
            .collect()
    }

    #[test]
    fn stored_signal_numbers_are_those_earlier_versions_wrote() {
        // Written by the version before profiles: traces 0, metrics 1, logs 2.
        let old = [
            (0u8, Signal::Traces),
            (1, Signal::Metrics),
            (2, Signal::Logs),
        ];
        for (code, signal) in old {
            let mut r = record(5, b"payload");
            r[16] = code;
            let crc = crc32fast::hash(&r[..17]);
            r[17..21].copy_from_slice(&crc.to_le_bytes());
            assert_eq!(header_at(&r, 0).unwrap().signal, signal, "code {code}");
        }
        for signal in Signal::ALL {
            assert_eq!(signal_of_code(signal_code(signal)), Some(signal));
            let r = encode_header(1, 1, signal, b"x");
            assert_eq!(r[16], signal_code(signal));
        }
        assert_eq!(signal_code(Signal::Profiles), 3, "the next free number");
        assert_eq!(signal_of_code(4), None);
    }

    #[test]
    fn records_of_the_first_format_are_read() {
        let mut buf = legacy_record(3, b"old");
        buf.extend(legacy_record(4, b"older"));
        let scan = scan(&buf);
        assert_eq!(kinds(&scan), [("record", 3), ("record", 4)]);
        assert!(scan.torn_at.is_none());
        let h = header_at(&buf, 0).unwrap();
        assert_eq!(
            (h.size, h.len, h.signal),
            (LEGACY_HEADER, 3, Signal::Metrics)
        );
    }

    #[test]
    fn a_length_past_the_end_under_a_valid_crc_resyncs_on_the_next_record() {
        // A header whose CRC was recomputed over a length that is too large.
        let mut bad = record(5, b"payload");
        bad[4..8].copy_from_slice(&1000u32.to_le_bytes());
        let crc = crc32fast::hash(&bad[..17]);
        bad[17..21].copy_from_slice(&crc.to_le_bytes());
        let mut buf = bad;
        buf.extend(record(6, b"next"));
        assert_eq!(kinds(&scan(&buf)), [("damaged", 5), ("record", 6)]);
    }

    #[test]
    fn a_torn_tail_is_told_apart_from_damage_inside() {
        let mut buf = record(1, b"one");
        let whole = buf.len();
        buf.extend(&record(2, b"two")[..10]);
        let torn = scan(&buf);
        assert_eq!(kinds(&torn), [("record", 1), ("unknown", 10)]);
        assert_eq!(torn.torn_at, Some(whole as u64));

        let mut buf = record(1, b"one");
        buf.extend(&record(2, b"a longer payload")[..30]);
        let torn = scan(&buf);
        assert_eq!(kinds(&torn), [("record", 1), ("damaged", 2)]);
        assert_eq!(torn.torn_at, Some(whole as u64));

        let mut buf = record(1, b"one");
        buf.extend([0u8; 40]);
        buf.extend(record(3, b"three"));
        let inside = scan(&buf);
        assert_eq!(
            kinds(&inside),
            [("record", 1), ("unknown", 40), ("record", 3)]
        );
        assert!(inside.torn_at.is_none());
    }

    #[test]
    fn estimates_use_the_intact_bytes_per_item_and_the_nearest_signal() {
        let mut rec = Recovery::default();
        rec.recovered[Signal::Logs.index()] = 10;
        let gap = |bytes, hint| Gap {
            path: PathBuf::from("x.seg"),
            offset: 0,
            bytes,
            hint,
        };
        let gaps = [gap(1000, Some(Signal::Metrics)), gap(1, None), gap(0, None)];
        estimate(&mut rec, &gaps, (2000, 10));
        // 1000 bytes at 200 bytes per item; 1 byte is still one item.
        assert_eq!(rec.corrupt[Signal::Metrics.index()], 5);
        assert_eq!(rec.corrupt[Signal::Logs.index()], 1, "the busiest signal");
        assert_eq!(rec.estimated, rec.corrupt);
        let mut none = Recovery::default();
        estimate(&mut none, &[gap(512, None)], (0, 0));
        assert_eq!(
            none.corrupt[Signal::Traces.index()],
            512 / FALLBACK_BYTES_PER_ITEM
        );
    }
}
