//! Request compression, once per batch: the first attempt compresses, and the
//! batch keeps the result for its retries ([`Batch::wire_form`]).

use bytes::Bytes;
use otlp_core::Batch;

use super::Compression;
use crate::TransportError;

/// Compresses request bodies with one algorithm at one level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Compressor {
    compression: Compression,
    level: u32,
}

impl Compression {
    /// The fastest level, the default: OTLP requests are repetitive enough
    /// that it already gets most of the ratio (on the benchmark's spans gzip
    /// 1 gives 18x, gzip 6 24x at a fifth of the speed).
    pub const DEFAULT_LEVEL: u32 = 1;

    /// The levels this compression accepts.
    pub const fn levels(self) -> std::ops::RangeInclusive<u32> {
        match self {
            Compression::None => 0..=0,
            Compression::Gzip => 1..=9,
            Compression::Zstd => 1..=19,
        }
    }
    /// `body` compressed as the exporter compresses a request at `level`
    /// (default [`Compression::DEFAULT_LEVEL`]): a copy of it for
    /// [`Compression::None`].
    ///
    /// # Errors
    ///
    /// [`TransportError::CompressionDisabled`] when the compression's
    /// feature is off, [`TransportError::CompressionLevel`] for a level
    /// outside [`Compression::levels`], [`TransportError::Compress`] when
    /// the encoder fails.
    pub fn compress(self, level: Option<u32>, body: &[u8]) -> Result<Bytes, TransportError> {
        Compressor::new(self, level)?.bytes(body)
    }
}

impl Compressor {
    /// Checks that `compression` is compiled in and `level` (default
    /// [`Compression::DEFAULT_LEVEL`]) is one it accepts.
    pub(crate) fn new(
        compression: Compression,
        level: Option<u32>,
    ) -> Result<Self, TransportError> {
        super::check_compression(compression)?;
        let level = match (compression, level) {
            (Compression::None, _) => 0,
            (_, None) => Compression::DEFAULT_LEVEL,
            (c, Some(l)) if c.levels().contains(&l) => l,
            (c, Some(l)) => {
                return Err(TransportError::CompressionLevel {
                    compression: c.as_str(),
                    level: l,
                    min: *c.levels().start(),
                    max: *c.levels().end(),
                });
            }
        };
        Ok(Self { compression, level })
    }

    pub(crate) fn compression(self) -> Compression {
        self.compression
    }

    /// The batch's request compressed, made by its first attempt and kept
    /// for the others; the encoded bytes themselves without compression.
    pub(crate) fn batch(self, batch: &Batch) -> Result<Bytes, TransportError> {
        match self.compression {
            Compression::None => Ok(batch.bytes().clone()),
            c => batch.wire_form(c.as_str(), |body| self.bytes(body)),
        }
    }

    /// `body` compressed (the body itself without compression).
    pub(crate) fn bytes(self, body: &[u8]) -> Result<Bytes, TransportError> {
        match self.compression {
            Compression::None => Ok(Bytes::copy_from_slice(body)),
            #[cfg(feature = "gzip")]
            Compression::Gzip => {
                use std::io::Write as _;
                // OTLP protobuf compresses 5-20x: a quarter is rarely regrown.
                let mut enc = flate2::write::GzEncoder::new(
                    Vec::with_capacity(body.len() / 4 + 64),
                    flate2::Compression::new(self.level),
                );
                enc.write_all(body)
                    .and_then(|()| enc.finish())
                    .map(kept)
                    .map_err(|source| TransportError::Compress {
                        compression: "gzip",
                        source,
                    })
            }
            #[cfg(feature = "zstd")]
            Compression::Zstd => zstd_compress(body, i32::try_from(self.level).unwrap_or(1))
                .map(kept)
                .map_err(|source| TransportError::Compress {
                    compression: "zstd",
                    source,
                }),
            #[allow(
                unreachable_patterns,
                reason = "reachable only when a compression feature is off"
            )]
            other => Err(TransportError::CompressionDisabled {
                compression: other.as_str(),
            }),
        }
    }
}

/// Compressed output as the batch keeps it: without the spare capacity the
/// encoder reserved (zstd reserves the input's size, gzip a quarter of it),
/// which would otherwise stay allocated for as long as the batch is queued.
#[cfg(any(feature = "gzip", feature = "zstd"))]
fn kept(mut out: Vec<u8>) -> Bytes {
    out.shrink_to_fit();
    Bytes::from(out)
}

/// zstd with a context kept per export worker thread and level: making one
/// (its tables) for every request costs about as much as compressing a
/// small one.
#[cfg(feature = "zstd")]
fn zstd_compress(body: &[u8], level: i32) -> std::io::Result<Vec<u8>> {
    use std::cell::RefCell;
    thread_local! {
        static CONTEXT: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
            const { RefCell::new(None) };
    }
    CONTEXT.with_borrow_mut(|slot| {
        let ctx = match slot {
            Some((l, ctx)) if *l == level => ctx,
            _ => &mut slot.insert((level, zstd::bulk::Compressor::new(level)?)).1,
        };
        ctx.compress(body)
    })
}

#[cfg(test)]
mod tests {
    use otlp_core::Signal;

    use super::*;

    #[test]
    fn levels_out_of_range_are_refused_with_the_range() {
        let err = Compressor::new(Compression::Gzip, Some(10))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("gzip") && err.contains("1") && err.contains("9"),
            "{err}"
        );
        assert!(Compressor::new(Compression::Zstd, Some(0)).is_err());
        assert!(Compressor::new(Compression::None, Some(99)).is_ok());
    }

    #[cfg(feature = "gzip")]
    #[test]
    fn a_batch_is_compressed_once_for_all_its_clones() {
        let c = Compressor::new(Compression::Gzip, None).unwrap();
        let batch = Batch::new(Signal::Traces, Bytes::from(vec![7u8; 10_000]), 1);
        let retry = batch.clone();
        let first = c.batch(&batch).unwrap();
        assert!(retry.has_wire_form("gzip"));
        let second = c.batch(&retry).unwrap();
        // The same allocation: the retry did not compress again.
        assert_eq!(first.as_ptr(), second.as_ptr());
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&second[..]), &mut out)
            .unwrap();
        assert_eq!(out, vec![7u8; 10_000]);
    }

    #[cfg(feature = "zstd")]
    #[test]
    fn zstd_reuses_its_context_and_round_trips_at_every_level() {
        let body: Vec<u8> = (0..100_000u32).map(|i| (i % 97) as u8).collect();
        for level in [1, 3, 1, 19] {
            let c = Compressor::new(Compression::Zstd, Some(level)).unwrap();
            let z = c.bytes(&body).unwrap();
            assert_eq!(zstd::bulk::decompress(&z, body.len()).unwrap(), body);
        }
    }
}
