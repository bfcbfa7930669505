//! Reading an HTTP request body under the size limits, and decompressing it
//! while counting, so that a gzip bomb stops at the limit.

use bytes::Bytes;
#[cfg(feature = "http")]
use http_body_util::BodyExt;
#[cfg(feature = "http")]
use hyper::body::Incoming;

#[cfg(feature = "http")]
use crate::receive::budget::Collect;
use crate::receive::budget::{Reservation, Spent};

/// A `Content-Encoding` the HTTP receiver accepts (the gRPC receiver decodes
/// gzip messages through [`decode`] too).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(
    not(feature = "http"),
    allow(dead_code, reason = "without HTTP only gzip is decoded, for gRPC")
)]
pub(crate) enum Encoding {
    /// No encoding (`identity` or absent).
    Identity,
    /// `gzip` (RFC 1952), possibly several members.
    #[cfg(feature = "gzip")]
    Gzip,
    /// `deflate` (zlib, RFC 1950), as the Python OTLP exporter sends it.
    #[cfg(feature = "gzip")]
    Deflate,
    /// `zstd` (RFC 8878), one or more frames.
    #[cfg(feature = "zstd")]
    Zstd,
}

/// Why a body could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// Over a size limit (HTTP 413).
    TooLarge(String),
    /// Cut short or not in the declared encoding (HTTP 400).
    Malformed(String),
    /// The intake budget is spent for now (HTTP 503 with `Retry-After`).
    Busy(String),
    /// The whole body did not arrive within the body read timeout (HTTP 408).
    TimedOut(String),
}

impl From<Spent> for BodyError {
    fn from(s: Spent) -> Self {
        match s {
            Spent::Busy { .. } => BodyError::Busy(s.message()),
            Spent::TooLarge { .. } => BodyError::TooLarge(s.message()),
        }
    }
}

// === impl Encoding ===

#[cfg(feature = "http")]
impl Encoding {
    /// The exporter's name for a request compressed this way, when it
    /// sends that compression too (gzip, zstd; `deflate` it never sends).
    pub(crate) fn wire_form(self) -> Option<&'static str> {
        match self {
            Encoding::Identity => None,
            #[cfg(feature = "gzip")]
            Encoding::Gzip => Some("gzip"),
            #[cfg(feature = "gzip")]
            Encoding::Deflate => None,
            #[cfg(feature = "zstd")]
            Encoding::Zstd => Some("zstd"),
        }
    }
}

#[cfg(feature = "http")]
impl Encoding {
    /// Parses a `Content-Encoding` value, `None` when it is not supported.
    pub(crate) fn parse(value: Option<&str>) -> Option<Self> {
        let v = value.map(str::trim).unwrap_or("");
        if v.is_empty() || v.eq_ignore_ascii_case("identity") {
            return Some(Encoding::Identity);
        }
        #[cfg(feature = "gzip")]
        {
            if v.eq_ignore_ascii_case("gzip") || v.eq_ignore_ascii_case("x-gzip") {
                return Some(Encoding::Gzip);
            }
            if v.eq_ignore_ascii_case("deflate") {
                return Some(Encoding::Deflate);
            }
        }
        #[cfg(feature = "zstd")]
        if v.eq_ignore_ascii_case("zstd") {
            return Some(Encoding::Zstd);
        }
        None
    }

    /// The encodings this build accepts, for error messages.
    pub(crate) const fn supported() -> &'static str {
        match (cfg!(feature = "gzip"), cfg!(feature = "zstd")) {
            (true, true) => "identity, gzip, deflate or zstd",
            (true, false) => "identity, gzip or deflate (this build has no 'zstd' feature)",
            (false, true) => "identity or zstd (this build has no 'gzip' feature)",
            (false, false) => "identity (this build has no 'gzip' or 'zstd' feature)",
        }
    }
}

/// Reads the whole body into `collect`, refusing it as soon as it passes
/// `limit` bytes, when the intake budget cannot hold the next frame, or when
/// it has not ended within `timeout`.
///
/// # Cancel safety
///
/// Dropping the future drops what was read and gives its bytes back.
#[cfg(feature = "http")]
pub(crate) async fn read_body(
    mut body: Incoming,
    limit: usize,
    mut collect: Collect,
    timeout: std::time::Duration,
) -> Result<(Bytes, Reservation), BodyError> {
    let read = async {
        // Bounded by `limit`: every frame adds to the length checked here.
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                BodyError::Malformed(format!(
                    "request body could not be read: {e}; the client cut it short"
                ))
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if collect.len() + data.len() > limit {
                return Err(BodyError::TooLarge(format!(
                    "request body is larger than the receiver's limit of {limit} bytes; send smaller batches"
                )));
            }
            collect.push(data)?;
        }
        Ok(collect.finish())
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(r) => r,
        Err(_) => Err(BodyError::TimedOut(format!(
            "request body not received within {timeout:?} (the body read timeout); send the whole body promptly"
        ))),
    }
}

/// Decodes `data` in `encoding`, refusing it once the output passes `limit`.
///
/// Output grows in steps and never past `limit` (plus one read buffer), so
/// memory stays flat however well the input compresses; every step is
/// reserved from `reservation` first.
pub(crate) fn decode(
    encoding: Encoding,
    data: Bytes,
    limit: usize,
    reservation: &mut Reservation,
) -> Result<Bytes, BodyError> {
    // Identity needs no reservation; a build without codecs has only it.
    #[cfg(not(any(feature = "gzip", feature = "zstd")))]
    let _ = reservation;
    match encoding {
        Encoding::Identity => {
            if data.len() > limit {
                return Err(too_large_decompressed(limit));
            }
            Ok(data)
        }
        #[cfg(feature = "gzip")]
        Encoding::Gzip => read_bounded(
            flate2::read::MultiGzDecoder::new(&data[..]),
            "gzip",
            limit,
            reservation,
        ),
        #[cfg(feature = "gzip")]
        Encoding::Deflate => read_bounded(
            flate2::read::ZlibDecoder::new(&data[..]),
            "deflate",
            limit,
            reservation,
        ),
        #[cfg(feature = "zstd")]
        Encoding::Zstd => decode_zstd(&data, limit, reservation),
    }
}

/// The largest zstd window the receivers accept: what `zstd` levels 1-19
/// use (only `--ultra` levels and `--long` need more).
#[cfg(feature = "zstd")]
pub(crate) const MAX_ZSTD_WINDOW: u64 = 8 << 20;

/// Decodes zstd frames with the decoder's window (the memory it takes
/// besides the output) reserved from the intake budget first: the size the
/// first frame declares, which every later frame must stay within.
#[cfg(feature = "zstd")]
fn decode_zstd(
    data: &[u8],
    limit: usize,
    reservation: &mut Reservation,
) -> Result<Bytes, BodyError> {
    let malformed = |e: std::io::Error| {
        BodyError::Malformed(format!(
            "request body is not valid zstd: {e}; check the Content-Encoding header"
        ))
    };
    let window = zstd_window(data)
        .ok_or_else(|| malformed(std::io::Error::other("no zstd frame header")))?;
    if window > MAX_ZSTD_WINDOW {
        return Err(BodyError::TooLarge(format!(
            "zstd frame declares a {window}-byte window, over the receiver's {MAX_ZSTD_WINDOW}; compress at level 19 or below, without --long"
        )));
    }
    // A power of two at least the window, at least zstd's minimum (1 KiB).
    let log = window.max(1 << 10).next_power_of_two().trailing_zeros();
    let window = 1usize << log;
    reservation.grow(window)?;
    let decoded = zstd::stream::read::Decoder::with_buffer(data)
        .and_then(|mut d| d.window_log_max(log).map(|()| d))
        .map_err(malformed)
        .and_then(|d| read_bounded(d, "zstd", limit, reservation));
    reservation.shrink(window);
    decoded
}

/// The window size the first zstd frame in `data` declares (RFC 8878
/// 3.1.1.1), `None` when `data` does not begin with a zstd frame header.
#[cfg(feature = "zstd")]
fn zstd_window(data: &[u8]) -> Option<u64> {
    const MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
    if data.get(..4)? != MAGIC {
        return None;
    }
    let descriptor = *data.get(4)?;
    if descriptor & 0x20 == 0 {
        // Not single-segment: a window descriptor follows.
        let wd = *data.get(5)?;
        let base = 1u64 << (10 + u32::from(wd >> 3));
        return Some(base + base / 8 * u64::from(wd & 7));
    }
    // Single segment: the window is the frame content size.
    let dictionary = [0usize, 1, 2, 4][usize::from(descriptor & 3)];
    let size = [1usize, 2, 4, 8][usize::from(descriptor >> 6)];
    let start = 5 + dictionary;
    let field = data.get(start..start + size)?;
    let mut le = [0u8; 8];
    le.get_mut(..size)?.copy_from_slice(field);
    let value = u64::from_le_bytes(le);
    Some(if size == 2 { value + 256 } else { value })
}

fn too_large_decompressed(limit: usize) -> BodyError {
    BodyError::TooLarge(format!(
        "decompressed request body is larger than the receiver's limit of {limit} bytes; send smaller batches"
    ))
}

#[cfg(any(feature = "gzip", feature = "zstd"))]
fn read_bounded(
    mut reader: impl std::io::Read,
    name: &str,
    limit: usize,
    reservation: &mut Reservation,
) -> Result<Bytes, BodyError> {
    const CHUNK: usize = 16 * 1024;
    reservation.grow(CHUNK)?;
    let mut out: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => {
                reservation.shrink(CHUNK);
                return Ok(Bytes::from(out));
            }
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(BodyError::Malformed(format!(
                    "request body is not valid {name}: {e}; check the Content-Encoding header"
                )));
            }
        };
        if out.len() + n > limit {
            return Err(too_large_decompressed(limit));
        }
        if out.capacity() - out.len() < n {
            // Grow geometrically but never past the limit.
            let target = (out.capacity() * 2).max(out.len() + n).min(limit);
            reservation.grow(target - out.capacity())?;
            out.reserve_exact(target - out.len());
        }
        out.extend_from_slice(&buf[..n]);
    }
}

#[cfg(all(test, feature = "gzip"))]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::receive::budget::IntakeBudget;

    fn dec(e: Encoding, data: Bytes, limit: usize) -> Result<Bytes, BodyError> {
        decode(
            e,
            data,
            limit,
            &mut IntakeBudget::new(1 << 30).reservation(),
        )
    }

    fn gzip(data: &[u8]) -> std::io::Result<Bytes> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data)?;
        Ok(Bytes::from(enc.finish()?))
    }

    #[test]
    fn gzip_round_trips_within_the_limit() {
        let data = vec![7u8; 100_000];
        assert_eq!(
            dec(Encoding::Gzip, gzip(&data).unwrap(), 100_000).unwrap(),
            data
        );
    }

    #[test]
    fn gzip_bomb_stops_at_the_limit_with_bounded_memory() {
        // 64 MiB of zeros compresses to about 64 KiB.
        let bomb = gzip(&vec![0u8; 64 << 20]).unwrap();
        assert!(bomb.len() < 1 << 20);
        let err = dec(Encoding::Gzip, bomb.clone(), 1 << 20).unwrap_err();
        assert!(
            matches!(err, BodyError::TooLarge(ref m) if m.contains("1048576")),
            "{err:?}"
        );
        // Under a smaller intake budget the same bomb stops at the budget,
        // as back-pressure while others hold it, and nothing stays reserved.
        let budget = IntakeBudget::new(1 << 19);
        let mut held = budget.reservation();
        held.grow(1 << 18).unwrap();
        let mut r = budget.reservation();
        let err = decode(Encoding::Gzip, bomb, 1 << 20, &mut r).unwrap_err();
        assert!(matches!(err, BodyError::Busy(_)), "{err:?}");
        drop((r, held));
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn corrupt_gzip_is_malformed_not_a_panic() {
        let mut g = gzip(b"hello world").unwrap().to_vec();
        g.truncate(g.len() - 6);
        assert!(matches!(
            dec(Encoding::Gzip, Bytes::from(g), 1024),
            Err(BodyError::Malformed(_))
        ));
        assert!(matches!(
            dec(Encoding::Gzip, Bytes::from_static(b"not gzip at all"), 1024),
            Err(BodyError::Malformed(_))
        ));
    }

    #[test]
    #[cfg(feature = "http")]
    fn content_encoding_parsing() {
        assert_eq!(Encoding::parse(None), Some(Encoding::Identity));
        assert_eq!(Encoding::parse(Some("GZIP")), Some(Encoding::Gzip));
        assert_eq!(Encoding::parse(Some("deflate")), Some(Encoding::Deflate));
        assert_eq!(Encoding::parse(Some("br")), None);
    }
}

#[cfg(all(test, feature = "zstd"))]
mod zstd_tests {
    use super::*;
    use crate::receive::budget::IntakeBudget;

    fn dec(data: &[u8], limit: usize, budget: &IntakeBudget) -> Result<Bytes, BodyError> {
        decode(
            Encoding::Zstd,
            Bytes::copy_from_slice(data),
            limit,
            &mut budget.reservation(),
        )
    }

    #[test]
    fn zstd_round_trips_at_every_level_within_the_limit() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        for level in [1, 3, 19] {
            let z = zstd::bulk::compress(&data, level).unwrap();
            let budget = IntakeBudget::new(1 << 30);
            assert_eq!(dec(&z, 200_000, &budget).unwrap(), data, "level {level}");
            // Two frames back to back decode as one body.
            let mut two = z.clone();
            two.extend_from_slice(&z);
            assert_eq!(dec(&two, 400_000, &budget).unwrap().len(), 400_000);
        }
    }

    #[test]
    fn zstd_bomb_stops_at_the_limit_and_gives_its_window_back() {
        let bomb = zstd::stream::encode_all(&vec![0u8; 64 << 20][..], 3).unwrap();
        assert!(bomb.len() < 1 << 20, "{}", bomb.len());
        let budget = IntakeBudget::new(1 << 30);
        let mut r = budget.reservation();
        let err = decode(Encoding::Zstd, Bytes::from(bomb.clone()), 1 << 20, &mut r).unwrap_err();
        assert!(
            matches!(err, BodyError::TooLarge(ref m) if m.contains("1048576")),
            "{err:?}"
        );
        drop(r);
        assert_eq!(budget.used(), 0);
        // A window the budget cannot hold now, while others hold most of
        // it, is back-pressure, not an allocation.
        assert_eq!(
            zstd_window(&bomb),
            Some(2 << 20),
            "level 3 streams with a 2 MiB window"
        );
        let budget = IntakeBudget::new(4 << 20);
        let mut held = budget.reservation();
        held.grow(3 << 20).unwrap();
        assert!(matches!(
            dec(&bomb, 1 << 20, &budget),
            Err(BodyError::Busy(_))
        ));
        drop(held);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_window_over_the_receivers_maximum_is_refused_before_decoding() {
        // Frame header: magic, descriptor (not single-segment, no checksum),
        // window descriptor exponent 17 (128 MiB), then junk.
        let mut frame = vec![0x28, 0xB5, 0x2F, 0xFD, 0x00, 17 << 3];
        frame.extend_from_slice(&[0u8; 16]);
        assert_eq!(zstd_window(&frame), Some(128 << 20));
        let err = dec(&frame, 1 << 20, &IntakeBudget::new(1 << 30)).unwrap_err();
        assert!(
            matches!(err, BodyError::TooLarge(ref m) if m.contains("window")),
            "{err:?}"
        );
    }

    #[test]
    fn corrupt_zstd_is_malformed_not_a_panic() {
        let budget = IntakeBudget::new(1 << 30);
        let mut z = zstd::bulk::compress(b"hello world, hello world", 3).unwrap();
        z.truncate(z.len() - 3);
        for bad in [&z[..], b"not zstd at all", &[0x28, 0xB5, 0x2F, 0xFD][..]] {
            assert!(
                matches!(dec(bad, 1024, &budget), Err(BodyError::Malformed(_))),
                "{bad:?}"
            );
        }
        assert_eq!(budget.used(), 0);
    }

    #[test]
    #[cfg(feature = "http")]
    fn zstd_content_encoding_is_parsed() {
        assert_eq!(Encoding::parse(Some("ZSTD")), Some(Encoding::Zstd));
    }
}
