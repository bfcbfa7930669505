//! Direct protobuf wire encoding of spans and log records: no temporary
//! `opentelemetry-proto` structs, no per-field allocation.
//!
//! The primitives here write OTLP messages field by field into a
//! [`BytesMut`], with prost's own varint, key and length functions. A nested
//! message is written in place: its length byte is reserved before the body
//! and patched after it, and only a body of 128 bytes or more (rare: a large
//! array or map) is shifted by the extra length bytes. The output is exactly
//! what prost produces for the same message: fields in tag order, proto3
//! defaults (0, empty) left out, oneof members always written.
//!
//! [`SpanRecord`] and [`LogRecord`] are the borrowed, allocation-free input of
//! the native path for callers who hold no prost structs; the SDK bridge
//! writes `SpanData` / `SdkLogRecord` through the same primitives.

mod record;

use std::cell::RefCell;

use bytes::{Bytes, BytesMut};
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};

pub use self::record::{AnyValue, Attribute, Event, Link, LogRecord, SpanRecord, Status};

/// Bytes a thread's scratch chunk is refilled with when it runs low.
///
/// Items are frozen slices of a shared chunk, so one allocation serves
/// dozens of spans; the chunk is freed when the last item cut from it is
/// dropped (the batcher copies item bytes, so that is soon).
const CHUNK: usize = 16 * 1024;

/// Below this spare capacity the scratch chunk is replaced before encoding.
const LOW_WATER: usize = 2 * 1024;

thread_local! {
    static SCRATCH: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// Runs `write` on this thread's scratch chunk and returns what it wrote.
///
/// Falls back to a fresh buffer when the thread-local is unavailable (thread
/// teardown) or already borrowed, so it never panics.
pub(crate) fn encode_with(write: impl FnOnce(&mut BytesMut)) -> Bytes {
    let mut write = Some(write);
    let done = SCRATCH.try_with(|cell| {
        let mut buf = cell.try_borrow_mut().ok()?;
        let write = write.take()?;
        if buf.capacity() - buf.len() < LOW_WATER {
            buf.reserve(CHUNK);
        }
        write(&mut buf);
        Some(buf.split().freeze())
    });
    match (done, write) {
        (Ok(Some(bytes)), _) => bytes,
        (_, Some(write)) => {
            let mut buf = BytesMut::with_capacity(512);
            write(&mut buf);
            buf.freeze()
        }
        // `write` was taken, so the thread-local path returned its bytes above.
        (_, None) => Bytes::new(),
    }
}

// === wire primitives ===

/// Writes a varint: one byte inline for the common case (keys of fields
/// 1-15, lengths and counts below 128), prost's `encode_varint` otherwise.
///
/// Profiling the native bench showed prost's out-of-line varint loop at 8%
/// of the producer; nearly every varint of a span is a single byte.
#[inline(always)]
fn put_varint(buf: &mut BytesMut, value: u64) {
    if value < 0x80 {
        buf.extend_from_slice(&[value as u8]);
    } else {
        encode_varint(value, buf);
    }
}

/// Writes a field key; keys of fields 1-15 are one byte.
#[inline(always)]
fn put_key(buf: &mut BytesMut, tag: u32, wire_type: WireType) {
    if tag < 16 {
        // The key is `tag << 3 | wire type`, below 128 for these tags.
        buf.extend_from_slice(&[((tag << 3) | wire_type as u32) as u8]);
    } else {
        encode_key(tag, wire_type, buf);
    }
}

/// Starts a length-delimited field `tag`: writes its key and one length
/// byte, and returns where the body starts (for [`close`]).
#[inline]
pub(crate) fn open(buf: &mut BytesMut, tag: u32) -> usize {
    if tag < 16 {
        buf.extend_from_slice(&[((tag << 3) | WireType::LengthDelimited as u32) as u8, 0]);
    } else {
        encode_key(tag, WireType::LengthDelimited, buf);
        buf.extend_from_slice(&[0]);
    }
    buf.len()
}

/// Ends the field [`open`] started: patches its length, shifting the body
/// when the length needs more than the one byte reserved.
#[inline]
pub(crate) fn close(buf: &mut BytesMut, start: usize) {
    let len = buf.len() - start;
    if len < 0x80 {
        buf[start - 1] = len as u8;
        return;
    }
    let width = encoded_len_varint(len as u64);
    let extra = width - 1;
    buf.extend_from_slice(&[0; 9][..extra]);
    buf.copy_within(start..start + len, start + extra);
    let mut slot = &mut buf[start - 1..start - 1 + width];
    encode_varint(len as u64, &mut slot);
}

/// A string field, left out when empty (proto3 default).
#[inline]
pub(crate) fn string(buf: &mut BytesMut, tag: u32, value: &str) {
    if !value.is_empty() {
        bytes_always(buf, tag, value.as_bytes());
    }
}

/// A bytes field, left out when empty (proto3 default).
#[inline]
pub(crate) fn bytes(buf: &mut BytesMut, tag: u32, value: &[u8]) {
    if !value.is_empty() {
        bytes_always(buf, tag, value);
    }
}

/// A length-delimited field written even when empty (a oneof member).
#[inline]
pub(crate) fn bytes_always(buf: &mut BytesMut, tag: u32, value: &[u8]) {
    if tag < 16 && value.len() < 0x80 {
        buf.reserve(2 + value.len());
        buf.extend_from_slice(&[
            ((tag << 3) | WireType::LengthDelimited as u32) as u8,
            value.len() as u8,
        ]);
    } else {
        put_key(buf, tag, WireType::LengthDelimited);
        put_varint(buf, value.len() as u64);
    }
    buf.extend_from_slice(value);
}

/// A varint field (uint32, uint64, int64, enum, bool), left out when 0.
#[inline]
pub(crate) fn varint(buf: &mut BytesMut, tag: u32, value: u64) {
    if value != 0 {
        varint_always(buf, tag, value);
    }
}

/// A varint field written even when 0 (a oneof member).
#[inline]
pub(crate) fn varint_always(buf: &mut BytesMut, tag: u32, value: u64) {
    put_key(buf, tag, WireType::Varint);
    put_varint(buf, value);
}

/// An int32 / enum field: negative values are sign-extended to 10 bytes, as prost does.
#[inline]
pub(crate) fn int32(buf: &mut BytesMut, tag: u32, value: i32) {
    varint(buf, tag, i64::from(value) as u64);
}

/// A fixed64 field, left out when 0.
#[inline]
pub(crate) fn fixed64(buf: &mut BytesMut, tag: u32, value: u64) {
    if value != 0 {
        put_key(buf, tag, WireType::SixtyFourBit);
        buf.extend_from_slice(&value.to_le_bytes());
    }
}

/// A fixed32 field, left out when 0.
#[inline]
pub(crate) fn fixed32(buf: &mut BytesMut, tag: u32, value: u32) {
    if value != 0 {
        put_key(buf, tag, WireType::ThirtyTwoBit);
        buf.extend_from_slice(&value.to_le_bytes());
    }
}

/// A double field written even when 0 (a oneof member).
#[inline]
pub(crate) fn double_always(buf: &mut BytesMut, tag: u32, value: f64) {
    put_key(buf, tag, WireType::SixtyFourBit);
    buf.extend_from_slice(&value.to_bits().to_le_bytes());
}

/// Field numbers of the OTLP messages written here (opentelemetry-proto 1.x).
pub(crate) mod tags {
    // AnyValue (oneof value).
    pub(crate) const ANY_STRING: u32 = 1;
    pub(crate) const ANY_BOOL: u32 = 2;
    pub(crate) const ANY_INT: u32 = 3;
    pub(crate) const ANY_DOUBLE: u32 = 4;
    pub(crate) const ANY_ARRAY: u32 = 5;
    pub(crate) const ANY_KVLIST: u32 = 6;
    pub(crate) const ANY_BYTES: u32 = 7;
    // ArrayValue.values and KeyValueList.values.
    pub(crate) const LIST_VALUES: u32 = 1;
    // KeyValue.
    pub(crate) const KV_KEY: u32 = 1;
    pub(crate) const KV_VALUE: u32 = 2;
    // Span.
    pub(crate) const SPAN_TRACE_ID: u32 = 1;
    pub(crate) const SPAN_SPAN_ID: u32 = 2;
    pub(crate) const SPAN_TRACE_STATE: u32 = 3;
    pub(crate) const SPAN_PARENT_SPAN_ID: u32 = 4;
    pub(crate) const SPAN_NAME: u32 = 5;
    pub(crate) const SPAN_KIND: u32 = 6;
    pub(crate) const SPAN_START: u32 = 7;
    pub(crate) const SPAN_END: u32 = 8;
    pub(crate) const SPAN_ATTRIBUTES: u32 = 9;
    pub(crate) const SPAN_DROPPED_ATTRIBUTES: u32 = 10;
    pub(crate) const SPAN_EVENTS: u32 = 11;
    pub(crate) const SPAN_DROPPED_EVENTS: u32 = 12;
    pub(crate) const SPAN_LINKS: u32 = 13;
    pub(crate) const SPAN_DROPPED_LINKS: u32 = 14;
    pub(crate) const SPAN_STATUS: u32 = 15;
    pub(crate) const SPAN_FLAGS: u32 = 16;
    // Span.Event.
    pub(crate) const EVENT_TIME: u32 = 1;
    pub(crate) const EVENT_NAME: u32 = 2;
    pub(crate) const EVENT_ATTRIBUTES: u32 = 3;
    pub(crate) const EVENT_DROPPED_ATTRIBUTES: u32 = 4;
    // Span.Link.
    pub(crate) const LINK_TRACE_ID: u32 = 1;
    pub(crate) const LINK_SPAN_ID: u32 = 2;
    pub(crate) const LINK_TRACE_STATE: u32 = 3;
    pub(crate) const LINK_ATTRIBUTES: u32 = 4;
    pub(crate) const LINK_DROPPED_ATTRIBUTES: u32 = 5;
    pub(crate) const LINK_FLAGS: u32 = 6;
    // Status.
    pub(crate) const STATUS_MESSAGE: u32 = 2;
    pub(crate) const STATUS_CODE: u32 = 3;
    // LogRecord.
    pub(crate) const LOG_TIME: u32 = 1;
    pub(crate) const LOG_SEVERITY_NUMBER: u32 = 2;
    pub(crate) const LOG_SEVERITY_TEXT: u32 = 3;
    pub(crate) const LOG_BODY: u32 = 5;
    pub(crate) const LOG_ATTRIBUTES: u32 = 6;
    pub(crate) const LOG_DROPPED_ATTRIBUTES: u32 = 7;
    pub(crate) const LOG_FLAGS: u32 = 8;
    pub(crate) const LOG_TRACE_ID: u32 = 9;
    pub(crate) const LOG_SPAN_ID: u32 = 10;
    pub(crate) const LOG_OBSERVED_TIME: u32 = 11;
    pub(crate) const LOG_EVENT_NAME: u32 = 12;
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn close_patches_one_byte_lengths_in_place() {
        let mut buf = BytesMut::new();
        let start = open(&mut buf, 1);
        buf.extend_from_slice(b"abc");
        close(&mut buf, start);
        assert_eq!(&buf[..], &[0x0a, 3, b'a', b'b', b'c']);
    }

    #[test]
    fn close_shifts_bodies_that_need_a_longer_length() {
        for len in [127usize, 128, 300, 16_383, 16_384, 70_000] {
            let body = vec![7u8; len];
            let mut buf = BytesMut::new();
            buf.extend_from_slice(b"x");
            let start = open(&mut buf, 5);
            buf.extend_from_slice(&body);
            close(&mut buf, start);
            let mut want = b"x".to_vec();
            prost::encoding::bytes::encode(5, &body, &mut want);
            assert_eq!(&buf[..], &want[..], "body of {len} bytes");
        }
    }

    #[test]
    fn scalar_fields_match_prost_defaults_and_encoding() {
        let status = opentelemetry_proto::tonic::trace::v1::Status {
            message: String::new(),
            code: 2,
        };
        let mut buf = BytesMut::new();
        string(&mut buf, tags::STATUS_MESSAGE, "");
        int32(&mut buf, tags::STATUS_CODE, 2);
        assert_eq!(&buf[..], &status.encode_to_vec()[..]);
        let mut neg = BytesMut::new();
        int32(&mut neg, 3, -1);
        let mut want = Vec::new();
        prost::encoding::int32::encode(3, &-1, &mut want);
        assert_eq!(&neg[..], &want[..]);
    }

    #[test]
    fn keys_and_varints_of_every_width_match_prost() {
        for tag in [1u32, 15, 16, 2047, 2048, 536_870_911] {
            for value in [
                0u64,
                1,
                127,
                128,
                16_383,
                16_384,
                u64::from(u32::MAX),
                u64::MAX,
            ] {
                let mut got = BytesMut::new();
                varint_always(&mut got, tag, value);
                fixed64(&mut got, tag, value);
                fixed32(&mut got, tag, value as u32);
                let mut want = Vec::new();
                prost::encoding::uint64::encode(tag, &value, &mut want);
                if value != 0 {
                    prost::encoding::fixed64::encode(tag, &value, &mut want);
                }
                if value as u32 != 0 {
                    prost::encoding::fixed32::encode(tag, &(value as u32), &mut want);
                }
                assert_eq!(&got[..], &want[..], "tag {tag} value {value}");
            }
            for len in [0usize, 1, 127, 128, 300] {
                let body = vec![1u8; len];
                let mut got = BytesMut::new();
                bytes_always(&mut got, tag, &body);
                let start = open(&mut got, tag);
                got.extend_from_slice(&body);
                close(&mut got, start);
                let mut want = Vec::new();
                prost::encoding::bytes::encode(tag, &body, &mut want);
                prost::encoding::bytes::encode(tag, &body, &mut want);
                assert_eq!(&got[..], &want[..], "tag {tag} len {len}");
            }
        }
    }

    #[test]
    fn encode_with_hands_out_independent_items_from_one_chunk() {
        let a = encode_with(|b| b.extend_from_slice(b"first"));
        let b = encode_with(|b| b.extend_from_slice(b"second"));
        assert_eq!(&a[..], b"first");
        assert_eq!(&b[..], b"second");
        // Many items in a row keep their own bytes across chunk refills.
        let items: Vec<Bytes> = (0..10_000u32)
            .map(|i| encode_with(|b| b.extend_from_slice(&i.to_le_bytes())))
            .collect();
        for (i, item) in items.iter().enumerate() {
            assert_eq!(&item[..], &(i as u32).to_le_bytes());
        }
    }
}
