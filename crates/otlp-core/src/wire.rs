//! A minimal protobuf wire-format reader and writer, just enough to walk OTLP
//! export requests without decoding them into structs.
//!
//! Every OTLP export request has the same two-level shape: the request holds
//! repeated `Resource*` entries in field 1, each holds repeated `Scope*`
//! entries in field 2, and each scope holds the items (spans, metrics, log
//! records) in field 2. Walking only these levels is enough to count items and
//! to split a request, at a fraction of the cost of a full decode.

use crate::error::DecodeError;

/// Protobuf wire types that OTLP uses. Groups (3, 4) are deprecated and refused.
pub(crate) const VARINT: u8 = 0;
pub(crate) const FIXED64: u8 = 1;
pub(crate) const LEN: u8 = 2;
pub(crate) const FIXED32: u8 = 5;

/// One field read from a message.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Field<'a> {
    /// The field number.
    pub(crate) number: u32,
    /// The payload of a length-delimited field (empty for other wire types).
    pub(crate) payload: &'a [u8],
    /// Whether the field is length-delimited.
    pub(crate) is_len: bool,
    /// The whole field, tag included, exactly as it was on the wire.
    pub(crate) raw: &'a [u8],
}

/// Iterates over the fields of one message.
#[derive(Debug)]
pub(crate) struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        varint_at(self.buf, &mut self.pos)
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|&end| end <= self.buf.len())
            .ok_or(DecodeError::Truncated { offset: self.pos })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let start = self.pos;
        let res = (|| {
            let key = self.varint()?;
            let wire = (key & 0x7) as u8;
            let number = u32::try_from(key >> 3)
                .ok()
                .filter(|&n| n > 0)
                .ok_or(DecodeError::BadTag { offset: start })?;
            let mut payload: &'a [u8] = &[];
            match wire {
                VARINT => {
                    self.varint()?;
                }
                FIXED64 => {
                    self.take(8)?;
                }
                FIXED32 => {
                    self.take(4)?;
                }
                LEN => {
                    let len = usize::try_from(self.varint()?)
                        .map_err(|_| DecodeError::Truncated { offset: self.pos })?;
                    payload = self.take(len)?;
                }
                other => {
                    return Err(DecodeError::BadWireType {
                        offset: start,
                        wire_type: other,
                    });
                }
            }
            Ok(Field {
                number,
                payload,
                is_len: wire == LEN,
                raw: &self.buf[start..self.pos],
            })
        })();
        if res.is_err() {
            // Stop after the first error: the rest of the buffer is not trustworthy.
            self.pos = self.buf.len();
        }
        Some(res)
    }
}

/// Reads a length-delimited field's payload, refusing other wire types where
/// OTLP requires a message.
pub(crate) fn message<'a>(field: &Field<'a>) -> Result<&'a [u8], DecodeError> {
    if field.is_len {
        Ok(field.payload)
    } else {
        Err(DecodeError::NotAMessage {
            field: field.number,
        })
    }
}

/// The encoded length of a varint.
/// Reads the varint at `*pos`, refusing what prost refuses: more than ten
/// bytes, or a tenth byte that overflows 64 bits.
pub(crate) fn varint_at(buf: &[u8], pos: &mut usize) -> Result<u64, DecodeError> {
    let mut value: u64 = 0;
    for i in 0..10 {
        let Some(&b) = buf.get(*pos) else {
            return Err(DecodeError::Truncated { offset: *pos });
        };
        *pos += 1;
        if i == 9 && b > 1 {
            return Err(DecodeError::BadVarint { offset: *pos });
        }
        value |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Ok(value);
        }
    }
    Err(DecodeError::BadVarint { offset: *pos })
}

pub(crate) fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Appends a varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends the tag and length prefix of a length-delimited field.
pub(crate) fn put_len_header(out: &mut Vec<u8>, number: u32, len: usize) {
    put_varint(out, (u64::from(number) << 3) | u64::from(LEN));
    put_varint(out, len as u64);
}

/// The size of a length-delimited field with a payload of `len` bytes.
pub(crate) fn len_field_size(number: u32, len: usize) -> usize {
    varint_len((u64::from(number) << 3) | u64::from(LEN)) + varint_len(len as u64) + len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trips() {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v));
            let mut f = Fields::new(&out);
            assert_eq!(f.varint().unwrap(), v);
        }
    }

    #[test]
    fn truncated_and_bad_input_are_errors_not_panics() {
        // A LEN field claiming 5 bytes with only 2 present.
        let buf = [0x0a, 0x05, 0x01, 0x02];
        let r: Result<Vec<_>, _> = Fields::new(&buf).collect();
        assert!(matches!(r, Err(DecodeError::Truncated { .. })));
        // Wire type 3 (start group) is refused.
        let buf = [0x0b];
        let r: Result<Vec<_>, _> = Fields::new(&buf).collect();
        assert!(matches!(
            r,
            Err(DecodeError::BadWireType { wire_type: 3, .. })
        ));
        // Field number 0 is invalid.
        let buf = [0x02, 0x00];
        let r: Result<Vec<_>, _> = Fields::new(&buf).collect();
        assert!(matches!(r, Err(DecodeError::BadTag { .. })));
        // An over-long varint.
        let buf = [0xff; 11];
        let r: Result<Vec<_>, _> = Fields::new(&buf).collect();
        assert!(matches!(r, Err(DecodeError::BadVarint { .. })));
    }
}
