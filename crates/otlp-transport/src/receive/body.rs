//! Reading an HTTP request body under the size limits, and decompressing it
//! while counting, so that a gzip bomb stops at the limit.

use bytes::Bytes;
#[cfg(feature = "http")]
use http_body_util::{BodyExt, LengthLimitError, Limited};
#[cfg(feature = "http")]
use hyper::body::Incoming;

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
}

/// Why a body could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// Over a size limit (HTTP 413).
    TooLarge(String),
    /// Cut short or not in the declared encoding (HTTP 400).
    Malformed(String),
}

// === impl Encoding ===

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
        None
    }

    /// The encodings this build accepts, for error messages.
    pub(crate) const fn supported() -> &'static str {
        if cfg!(feature = "gzip") {
            "identity, gzip or deflate"
        } else {
            "identity (this build has no 'gzip' feature)"
        }
    }
}

/// Reads the whole body, refusing it as soon as it passes `limit` bytes.
#[cfg(feature = "http")]
pub(crate) async fn read_limited(body: Incoming, limit: usize) -> Result<Bytes, BodyError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(BodyError::TooLarge(format!(
                "request body is larger than the receiver's limit of {limit} bytes; send smaller batches"
            )))
        }
        Err(e) => Err(BodyError::Malformed(format!(
            "request body could not be read: {e}; the client cut it short"
        ))),
    }
}

/// Decodes `data` in `encoding`, refusing it once the output passes `limit`.
///
/// Output grows in steps and never past `limit` (plus one read buffer), so
/// memory stays flat however well the input compresses.
pub(crate) fn decode(encoding: Encoding, data: Bytes, limit: usize) -> Result<Bytes, BodyError> {
    match encoding {
        Encoding::Identity => {
            if data.len() > limit {
                return Err(too_large_decompressed(limit));
            }
            Ok(data)
        }
        #[cfg(feature = "gzip")]
        Encoding::Gzip => read_bounded(flate2::read::MultiGzDecoder::new(&data[..]), "gzip", limit),
        #[cfg(feature = "gzip")]
        Encoding::Deflate => {
            read_bounded(flate2::read::ZlibDecoder::new(&data[..]), "deflate", limit)
        }
    }
}

fn too_large_decompressed(limit: usize) -> BodyError {
    BodyError::TooLarge(format!(
        "decompressed request body is larger than the receiver's limit of {limit} bytes; send smaller batches"
    ))
}

#[cfg(feature = "gzip")]
fn read_bounded(
    mut reader: impl std::io::Read,
    name: &str,
    limit: usize,
) -> Result<Bytes, BodyError> {
    const CHUNK: usize = 16 * 1024;
    let mut out: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(Bytes::from(out)),
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
            out.reserve_exact(target - out.len());
        }
        out.extend_from_slice(&buf[..n]);
    }
}

#[cfg(all(test, feature = "gzip"))]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> std::io::Result<Bytes> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data)?;
        Ok(Bytes::from(enc.finish()?))
    }

    #[test]
    fn gzip_round_trips_within_the_limit() {
        let data = vec![7u8; 100_000];
        assert_eq!(
            decode(Encoding::Gzip, gzip(&data).unwrap(), 100_000).unwrap(),
            data
        );
    }

    #[test]
    fn gzip_bomb_stops_at_the_limit_with_bounded_memory() {
        // 64 MiB of zeros compresses to about 64 KiB.
        let bomb = gzip(&vec![0u8; 64 << 20]).unwrap();
        assert!(bomb.len() < 1 << 20);
        let err = decode(Encoding::Gzip, bomb, 1 << 20).unwrap_err();
        assert!(
            matches!(err, BodyError::TooLarge(ref m) if m.contains("1048576")),
            "{err:?}"
        );
    }

    #[test]
    fn corrupt_gzip_is_malformed_not_a_panic() {
        let mut g = gzip(b"hello world").unwrap().to_vec();
        g.truncate(g.len() - 6);
        assert!(matches!(
            decode(Encoding::Gzip, Bytes::from(g), 1024),
            Err(BodyError::Malformed(_))
        ));
        assert!(matches!(
            decode(Encoding::Gzip, Bytes::from_static(b"not gzip at all"), 1024),
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
