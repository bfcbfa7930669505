//! The accepting walk: every byte of every received request passes through
//! [`walk`] once, so it answers only "valid or not" and leaves the error, its
//! path and its wording to the diagnosing walker of the parent module, which
//! runs only when this one says no.
//!
//! Each message has a table of what to do for each field tag (field number
//! and wire type together, as they are on the wire), worked out at compile
//! time from the schema ([`M::field`]): one lookup says whether to skip a
//! scalar, check a string or an id, descend into a message or refuse the
//! field, where the diagnosing walker looks the field up, then compares wire
//! types, then dispatches on the type.

use super::{FIXED32, FIXED64, LEN, M, MAX_ANY_VALUE_DEPTH, MAX_FIELD, Ty, VARINT};
use crate::wire::varint_at;

/// What to do with one field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum A {
    /// Skip a varint (a known integer field, or an unknown field).
    Varint,
    /// Skip 8 bytes.
    Fixed64,
    /// Skip 4 bytes.
    Fixed32,
    /// Skip a length-delimited payload (`bytes`, or an unknown field).
    Len,
    /// A `string`: UTF-8.
    Str,
    /// A trace or span id: empty or of this many bytes.
    Id(u8),
    /// A message field.
    Msg(M),
    /// A message holding one item (span, log record, data point): counted.
    Item(M),
    /// Packed repeated fixed64 / double: a multiple of 8 bytes.
    PackedFixed64,
    /// Packed repeated varints: a run of complete varints.
    PackedVarint,
    /// Refused: field number 0, a group wire type, or a wire type the schema
    /// does not have for this field.
    Bad,
}

/// How an unknown field (or a known one of a skipped type) is skipped.
const fn skip(wire: u8) -> A {
    match wire {
        VARINT => A::Varint,
        FIXED64 => A::Fixed64,
        LEN => A::Len,
        FIXED32 => A::Fixed32,
        _ => A::Bad,
    }
}

/// The action for field `number` with wire type `wire` in message `m`: what
/// the diagnosing walker accepts, and nothing else.
const fn action(m: M, number: u32, wire: u8) -> A {
    if number == 0 {
        return A::Bad;
    }
    let Some((_, ty)) = m.field(number) else {
        return skip(wire);
    };
    match (ty, wire) {
        (Ty::Msg(inner), LEN) => A::Msg(inner),
        (Ty::Item(inner), LEN) => A::Item(inner),
        (Ty::Str, LEN) => A::Str,
        (Ty::Bytes, LEN) => A::Len,
        (Ty::Id(n), LEN) => A::Id(n as u8),
        (Ty::Varint, VARINT) | (Ty::PackedVarint, VARINT) => A::Varint,
        (Ty::Fixed64, FIXED64) | (Ty::PackedFixed64, FIXED64) => A::Fixed64,
        (Ty::Fixed32, FIXED32) => A::Fixed32,
        (Ty::PackedFixed64, LEN) => A::PackedFixed64,
        (Ty::PackedVarint, LEN) => A::PackedVarint,
        _ => A::Bad,
    }
}

/// Tags (`number << 3 | wire`) below this have a table entry: every field
/// number the schema knows. Larger tags are unknown fields, skipped by wire
/// type.
const TAGS: usize = (MAX_FIELD + 1) << 3;

static ACTIONS: [[A; TAGS]; M::ALL.len()] = {
    let mut t = [[A::Bad; TAGS]; M::ALL.len()];
    let mut i = 0;
    while i < M::ALL.len() {
        let mut tag = 0;
        while tag < TAGS {
            t[i][tag] = action(M::ALL[i], (tag >> 3) as u32, (tag & 7) as u8);
            tag += 1;
        }
        i += 1;
    }
    t
};

/// Whether message `m` in `buf` is valid, counting its items into `items`;
/// `depth` is the `AnyValue` nesting so far.
pub(super) fn walk(m: M, buf: &[u8], depth: usize, items: &mut u64) -> bool {
    let row = &ACTIONS[m as usize];
    let end = buf.len();
    let mut pos = 0;
    while pos < end {
        let b = buf[pos];
        let key = if b < 0x80 {
            pos += 1;
            u64::from(b)
        } else {
            match varint_at(buf, &mut pos) {
                Ok(key) => key,
                Err(_) => return false,
            }
        };
        let a = if key < TAGS as u64 {
            row[key as usize]
        } else if key >> 3 > u64::from(u32::MAX) {
            A::Bad
        } else {
            skip((key & 7) as u8)
        };
        // One dispatch per field: each length-delimited kind reads its own
        // payload.
        if !field(a, buf, &mut pos, depth, items) {
            return false;
        }
    }
    true
}

/// Whether `s` is ASCII: a word at a time without a call, for the short
/// strings (keys, names, values) that make up most of a request; long ones
/// go to the standard library's check.
#[inline(always)]
fn ascii(s: &[u8]) -> bool {
    let n = s.len();
    if n < 8 {
        return s.iter().fold(0, |acc, b| acc | b) < 0x80;
    }
    if n > 64 {
        return s.is_ascii();
    }
    let word = |i: usize| {
        s.get(i..i + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
            .map_or(u64::MAX, u64::from_le_bytes)
    };
    let mut acc = word(n - 8);
    let mut i = 0;
    while i + 8 <= n {
        acc |= word(i);
        i += 8;
    }
    acc & 0x8080_8080_8080_8080 == 0
}

#[inline(always)]
fn utf8(p: &[u8]) -> bool {
    ascii(p) || std::str::from_utf8(p).is_ok()
}

#[inline(always)]
fn inner_ok(inner: M, payload: &[u8], depth: usize, items: &mut u64) -> bool {
    if payload.is_empty() {
        return true;
    }
    let depth = if matches!(inner, M::ArrayValue | M::KvList) {
        depth + 1
    } else {
        depth
    };
    depth <= MAX_ANY_VALUE_DEPTH
        && match inner {
            M::KeyValue => key_value(payload, depth, items),
            M::AnyValue => any_value(payload, depth, items),
            M::Span => span(payload, depth, items),
            M::Event => event(payload, depth, items),
            M::LogRecord => log_record(payload, depth, items),
            _ => walk(inner, payload, depth, items),
        }
}

/// [`walk`] for an item message, expecting its fields in the order of their
/// declaration in the .proto files, which is the order prost and the
/// Collector's pdata write them in (each entry: tag, what to do, whether
/// repeated). Unrolled, with the action known at each step: one
/// well-predicted comparison per field instead of a jump through the table.
/// A field absent where the list has it costs one comparison; what is left
/// when the list is through (fields in another order, unknown fields) is
/// walked by [`walk`], fields being independent of each other.
macro_rules! in_order {
    ($m:expr, $buf:ident, $depth:ident, $items:ident, [$(($tag:expr, $a:expr, $repeated:expr)),* $(,)?]) => {{
        let mut pos = 0usize;
        $(
            loop {
                if !at($buf, pos, $tag) {
                    break;
                }
                pos += if $tag < 0x80 { 1 } else { 2 };
                if !field($a, $buf, &mut pos, $depth, $items) {
                    // Invalid here is invalid for the general walker too.
                    return false;
                }
                if !$repeated {
                    break;
                }
            }
        )*
        pos == $buf.len() || $buf.get(pos..).is_some_and(|rest| walk($m, rest, $depth, $items))
    }};
}

fn span(buf: &[u8], depth: usize, items: &mut u64) -> bool {
    in_order!(
        M::Span,
        buf,
        depth,
        items,
        [
            (0x0a, A::Id(16), false),
            (0x12, A::Id(8), false),
            (0x1a, A::Str, false),
            (0x22, A::Id(8), false),
            // Field 16, flags, declared after parent_span_id: tag 0x85 0x01.
            (0x0185, A::Fixed32, false),
            (0x2a, A::Str, false),
            (0x30, A::Varint, false),
            (0x39, A::Fixed64, false),
            (0x41, A::Fixed64, false),
            (0x4a, A::Msg(M::KeyValue), true),
            (0x50, A::Varint, false),
            (0x5a, A::Msg(M::Event), true),
            (0x60, A::Varint, false),
            (0x6a, A::Msg(M::Link), true),
            (0x70, A::Varint, false),
            (0x7a, A::Msg(M::Status), false),
        ]
    )
}

fn event(buf: &[u8], depth: usize, items: &mut u64) -> bool {
    in_order!(
        M::Event,
        buf,
        depth,
        items,
        [
            (0x09, A::Fixed64, false),
            (0x12, A::Str, false),
            (0x1a, A::Msg(M::KeyValue), true),
            (0x20, A::Varint, false),
        ]
    )
}

fn log_record(buf: &[u8], depth: usize, items: &mut u64) -> bool {
    in_order!(
        M::LogRecord,
        buf,
        depth,
        items,
        [
            (0x09, A::Fixed64, false),
            // Field 11, observed_time_unix_nano, declared second.
            (0x59, A::Fixed64, false),
            (0x10, A::Varint, false),
            (0x1a, A::Str, false),
            (0x2a, A::Msg(M::AnyValue), false),
            (0x32, A::Msg(M::KeyValue), true),
            (0x38, A::Varint, false),
            (0x45, A::Fixed32, false),
            (0x4a, A::Id(16), false),
            (0x52, A::Id(8), false),
            (0x62, A::Str, false),
        ]
    )
}

/// Whether the tag at `pos` is `tag` (one byte, or two with the second in
/// the high byte).
#[inline(always)]
fn at(buf: &[u8], pos: usize, tag: u16) -> bool {
    if tag < 0x80 {
        buf.get(pos) == Some(&(tag as u8))
    } else {
        buf.get(pos) == Some(&(tag as u8)) && buf.get(pos + 1) == Some(&((tag >> 8) as u8))
    }
}

/// One field's check, its tag read (in [`in_order`] `a` is a constant, so
/// the match folds away).
#[inline(always)]
fn field(a: A, buf: &[u8], pos: &mut usize, depth: usize, items: &mut u64) -> bool {
    match a {
        A::Varint => skip_varint(buf, pos),
        A::Fixed64 => {
            *pos += 8;
            *pos <= buf.len()
        }
        A::Fixed32 => {
            *pos += 4;
            *pos <= buf.len()
        }
        A::Len => len_payload(buf, pos).is_some(),
        A::Str => matches!(len_payload(buf, pos), Some(p) if utf8(p)),
        A::Id(n) => {
            matches!(len_payload(buf, pos), Some(p) if p.is_empty() || p.len() == usize::from(n))
        }
        A::Msg(inner) => match len_payload(buf, pos) {
            Some(p) => inner_ok(inner, p, depth, items),
            None => false,
        },
        A::Item(inner) => match len_payload(buf, pos) {
            Some(p) => {
                *items += 1;
                inner_ok(inner, p, depth, items)
            }
            None => false,
        },
        A::PackedFixed64 => {
            matches!(len_payload(buf, pos), Some(p) if p.len().is_multiple_of(8))
        }
        A::PackedVarint => matches!(
            len_payload(buf, pos),
            Some(p) if super::check_packed_varints(p).is_ok()
        ),
        A::Bad => false,
    }
}

/// [`walk`] for `KeyValue`, the most frequent message: the usual shape in a
/// straight line, anything else field by field in declaration order.
fn key_value(buf: &[u8], depth: usize, items: &mut u64) -> bool {
    // The shape nearly every attribute has, checked in a straight line:
    // `0x0a len key 0x12 len value`, both lengths one byte, an ASCII key and
    // a value holding one scalar.
    if let [0x0a, klen, rest @ ..] = buf
        && let Some((key, rest)) = rest.split_at_checked(usize::from(*klen))
        && let [0x12, vlen, value @ ..] = rest
        && *klen < 0x80
        && *vlen < 0x80
        && value.len() == usize::from(*vlen)
        && ascii(key)
        && one_scalar(value)
    {
        return true;
    }
    in_order!(
        M::KeyValue,
        buf,
        depth,
        items,
        [(0x0a, A::Str, false), (0x12, A::Msg(M::AnyValue), false),]
    )
}

/// Whether `value` is an `AnyValue` of exactly one scalar field in its
/// shortest form: an ASCII string of fewer than 128 bytes, an int or bool,
/// a double. `false` only means "not this shape", not "invalid".
#[inline(always)]
fn one_scalar(value: &[u8]) -> bool {
    match value {
        [0x0a, len, s @ ..] => *len < 0x80 && s.len() == usize::from(*len) && ascii(s),
        // A varint: every byte but the last has the continuation bit.
        [0x10 | 0x18, v @ ..] => match v.split_last() {
            Some((last, init)) => *last < 0x80 && init.len() < 9 && init.iter().all(|b| *b >= 0x80),
            None => false,
        },
        [0x21, d @ ..] => d.len() == 8,
        _ => false,
    }
}

/// [`walk`] for `AnyValue`: its one field found in declaration order.
fn any_value(buf: &[u8], depth: usize, items: &mut u64) -> bool {
    in_order!(
        M::AnyValue,
        buf,
        depth,
        items,
        [
            (0x0a, A::Str, false),
            (0x10, A::Varint, false),
            (0x18, A::Varint, false),
            (0x21, A::Fixed64, false),
            (0x2a, A::Msg(M::ArrayValue), false),
            (0x32, A::Msg(M::KvList), false),
            (0x3a, A::Len, false),
            (0x40, A::Varint, false),
        ]
    )
}

#[inline(always)]
fn skip_varint(buf: &[u8], pos: &mut usize) -> bool {
    match buf.get(*pos) {
        Some(&b) if b < 0x80 => {
            *pos += 1;
            true
        }
        _ => varint_at(buf, pos).is_ok(),
    }
}

/// Reads a length prefix at `*pos` and moves past the payload it announces.
#[inline(always)]
fn len_payload<'a>(buf: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let n = match buf.get(*pos) {
        Some(&b) if b < 0x80 => {
            *pos += 1;
            usize::from(b)
        }
        Some(&b0) => match buf.get(*pos + 1) {
            Some(&b1) if b1 < 0x80 => {
                *pos += 2;
                usize::from(b0 & 0x7f) | (usize::from(b1) << 7)
            }
            _ => usize::try_from(varint_at(buf, pos).ok()?).ok()?,
        },
        None => return None,
    };
    let start = *pos;
    if n > buf.len() - start {
        return None;
    }
    *pos = start + n;
    Some(&buf[start..start + n])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_follows_the_schema() {
        // Span.trace_id (1, LEN) is an id of 16; as fixed64 it is refused.
        assert_eq!(ACTIONS[M::Span as usize][(1 << 3) | 2], A::Id(16));
        assert_eq!(ACTIONS[M::Span as usize][(1 << 3) | 1], A::Bad);
        // Span.flags is field 16, the last with an entry.
        assert_eq!(ACTIONS[M::Span as usize][(16 << 3) | 5], A::Fixed32);
        // Field 0 and group wire types are refused, unknown fields skipped.
        assert_eq!(ACTIONS[M::Span as usize][2], A::Bad);
        assert_eq!(ACTIONS[M::Span as usize][(9 << 3) | 3], A::Bad);
        assert_eq!(ACTIONS[M::Status as usize][(1 << 3) | 2], A::Len);
        assert_eq!(
            ACTIONS[M::ScopeSpans as usize][(2 << 3) | 2],
            A::Item(M::Span)
        );
    }
}
