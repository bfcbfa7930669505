//! The persistent queue: append-only segment files with a CRC32 per record.
//!
//! A record is a 21-byte header followed by the encoded request:
//! `len: u32 LE | items: u64 LE | signal: u8 | header_crc: u32 LE | payload_crc: u32 LE`.
//! The header CRC covers the first 13 bytes, so a damaged payload can be skipped
//! (its length is still trusted) while a damaged header ends the readable part
//! of the segment, which recovery truncates. A segment file is deleted when all
//! its records are acknowledged; a record acknowledged in a segment that is
//! still on disk at a crash is delivered again (at-least-once).

use std::{
    collections::VecDeque,
    fs::{self, File, OpenOptions},
    io::{self, Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use bytes::Bytes;
use otlp_core::{Batch, Signal};

use crate::{DiskQueueConfig, FsyncPolicy, PipelineError};

const HEADER: u64 = 21;
const SUFFIX: &str = ".seg";

/// Where a record lives: its segment and the offset of its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RecordId {
    seq: u64,
    offset: u64,
}

/// A record that is stored and not yet handed to a worker.
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
    file: File,
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
    pub(crate) recovered: [u64; 3],
    /// Items in records whose payload was damaged or torn, per signal.
    pub(crate) corrupt: [u64; 3],
    /// Records whose header was damaged, so their items are unknown.
    pub(crate) corrupt_records: u64,
    /// Bytes cut off or skipped.
    pub(crate) corrupt_bytes: u64,
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
    held: [u64; 3],
    dirty: bool,
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
            held: [0; 3],
            dirty: false,
            last_sync: Instant::now(),
        };
        let mut rec = Recovery::default();
        for seq in seqs {
            let path = q.path(seq);
            // A segment that cannot even be read is skipped, never fatal: the
            // process must start whatever the directory holds.
            match q.recover_segment(seq, &path, &mut rec) {
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "disk queue: unreadable segment skipped");
                    rec.corrupt_records += 1;
                }
            }
        }
        if rec.corrupt_records > 0 || rec.corrupt.iter().any(|n| *n > 0) {
            tracing::warn!(
                dir = %dir.display(),
                records = rec.corrupt_records,
                bytes = rec.corrupt_bytes,
                "disk queue: corrupt data found and skipped at recovery"
            );
        }
        Ok((q, rec))
    }

    fn path(&self, seq: u64) -> PathBuf {
        segment_path(&self.dir, seq)
    }

    fn recover_segment(&mut self, seq: u64, path: &Path, rec: &mut Recovery) -> io::Result<()> {
        let mut file = OpenOptions::new().read(true).write(true).open(path)?;
        let file_len = file.metadata()?.len();
        let mut reader = io::BufReader::new(&mut file);
        let mut pos = 0u64;
        let mut live = 0u64;
        let mut truncate_at = None;
        let mut payload = Vec::new();
        while pos < file_len {
            let mut h = [0u8; HEADER as usize];
            if file_len - pos < HEADER {
                // A torn header: the process died while writing it.
                rec.corrupt_records += 1;
                truncate_at = Some(pos);
                break;
            }
            reader.read_exact(&mut h)?;
            let Some((len, items, signal)) = parse_header(&h) else {
                rec.corrupt_records += 1;
                truncate_at = Some(pos);
                break;
            };
            if file_len - pos - HEADER < len {
                // A torn payload: the header is intact, so the loss is known.
                rec.corrupt[signal.index()] += items;
                truncate_at = Some(pos);
                break;
            }
            payload.resize(len as usize, 0);
            reader.read_exact(&mut payload)?;
            let want = u32::from_le_bytes([h[17], h[18], h[19], h[20]]);
            if crc32fast::hash(&payload) == want {
                self.pending.push_back(Pending {
                    id: RecordId { seq, offset: pos },
                    epoch: 0,
                    cached: None,
                    len,
                    items,
                    signal,
                });
                self.held[signal.index()] += HEADER + len;
                rec.recovered[signal.index()] += items;
                live += 1;
            } else {
                // The length is trusted (header CRC), so skip just this record.
                rec.corrupt[signal.index()] += items;
                rec.corrupt_bytes += HEADER + len;
            }
            pos += HEADER + len;
        }
        drop(reader);
        let mut len = file_len;
        if let Some(at) = truncate_at {
            rec.corrupt_bytes += file_len - at;
            file.set_len(at)?;
            file.sync_all()?;
            len = at;
        }
        if live == 0 {
            drop(file);
            fs::remove_file(path)?;
        } else {
            self.total_bytes += len;
            self.segments.push_back(Segment { seq, len, live });
        }
        Ok(())
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
        let before = (
            self.segments.back().map_or(0, |s| s.len),
            self.segments.back().map_or(0, |s| s.live),
            self.total_bytes,
            self.held,
            self.pending.len(),
        );
        for batch in batches {
            if let Err(e) = self.append_one(batch, epoch, cache) {
                self.roll_back(before);
                return Err(e);
            }
        }
        self.maybe_sync();
        Ok(())
    }

    /// Undoes the records `append_all` wrote since `before` (segment length
    /// and live count, total bytes, held bytes, pending count).
    fn roll_back(&mut self, before: (u64, u64, u64, [u64; 3], usize)) {
        let (len, live, total, held, pending) = before;
        self.pending.truncate(pending);
        self.total_bytes = total;
        self.held = held;
        let Some(seg) = self.segments.back_mut() else {
            return;
        };
        seg.len = len;
        seg.live = live;
        let seq = seg.seq;
        let truncated = match self.writer.as_mut() {
            Some(w) => w.file.set_len(len).is_ok(),
            // `append_one` sealed the segment after a failed write.
            None => OpenOptions::new()
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
        if self.writer.is_none() && self.segments.back().is_some_and(|s| s.live == 0) {
            let last = self.segments.len() - 1;
            self.remove_segment(last);
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
            self.writer = Some(Writer { seq, file });
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
        let mut h = [0u8; HEADER as usize];
        h[0..4].copy_from_slice(&(len as u32).to_le_bytes());
        h[4..12].copy_from_slice(&batch.items().to_le_bytes());
        h[12] = signal_byte(batch.signal());
        let hcrc = crc32fast::hash(&h[0..13]);
        h[13..17].copy_from_slice(&hcrc.to_le_bytes());
        h[17..21].copy_from_slice(&crc32fast::hash(batch.bytes()).to_le_bytes());
        let res = w
            .file
            .write_all(&h)
            .and_then(|()| w.file.write_all(batch.bytes()))
            .and_then(|()| match self.fsync {
                FsyncPolicy::Always => w.file.sync_data(),
                _ => Ok(()),
            });
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
        self.dirty = !matches!(self.fsync, FsyncPolicy::Always);
        self.pending.push_back(Pending {
            id,
            epoch,
            cached: cache.then(|| batch.bytes().clone()),
            len,
            items: batch.items(),
            signal: batch.signal(),
        });
        Ok(())
    }

    /// Closes the writer's segment; later appends start a new one.
    fn seal(&mut self) {
        if let Some(w) = self.writer.take() {
            if !matches!(self.fsync, FsyncPolicy::Never) {
                let _ = w.file.sync_data();
            }
            self.dirty = false;
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
    /// `Ok` carries the record, its batch, its epoch and whether it was cached.
    pub(crate) fn take(&mut self) -> Option<Result<(RecordId, Batch, u64, bool), Unreadable>> {
        let mut p = self.pending.pop_front()?;
        if let Some(bytes) = p.cached.take() {
            return Some(Ok((
                p.id,
                Batch::new(p.signal, bytes, p.items),
                p.epoch,
                true,
            )));
        }
        match self.read(&p) {
            Ok(bytes) => Some(Ok((
                p.id,
                Batch::new(p.signal, bytes, p.items),
                p.epoch,
                false,
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
        f.read_exact(&mut h)?;
        let mut buf = vec![0u8; p.len as usize];
        f.read_exact(&mut buf)?;
        let want = u32::from_le_bytes([h[17], h[18], h[19], h[20]]);
        if parse_header(&h).is_none() || crc32fast::hash(&buf) != want {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "checksum mismatch",
            ));
        }
        Ok(Bytes::from(buf))
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

    /// Forces written data to disk if the interval policy says it is time.
    pub(crate) fn maybe_sync(&mut self) {
        if let (FsyncPolicy::Interval(every), true) = (self.fsync, self.dirty)
            && self.last_sync.elapsed() >= every
        {
            self.sync();
        }
    }

    /// Forces written data to disk now (unless the policy is `Never`).
    pub(crate) fn sync(&mut self) {
        if matches!(self.fsync, FsyncPolicy::Never) {
            return;
        }
        if let Some(w) = &self.writer
            && let Err(e) = w.file.sync_data()
        {
            tracing::warn!(error = %e, "disk queue: fsync failed");
        }
        self.dirty = false;
        self.last_sync = Instant::now();
    }

    /// Items stored and not yet taken, per signal.
    pub(crate) fn pending_items(&self) -> [u64; 3] {
        let mut n = [0; 3];
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

fn signal_byte(s: Signal) -> u8 {
    s.index() as u8
}

fn parse_header(h: &[u8; HEADER as usize]) -> Option<(u64, u64, Signal)> {
    let hcrc = u32::from_le_bytes([h[13], h[14], h[15], h[16]]);
    if crc32fast::hash(&h[0..13]) != hcrc {
        return None;
    }
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as u64;
    let mut items = [0u8; 8];
    items.copy_from_slice(&h[4..12]);
    let signal = *Signal::ALL.get(h[12] as usize)?;
    Some((len, u64::from_le_bytes(items), signal))
}
