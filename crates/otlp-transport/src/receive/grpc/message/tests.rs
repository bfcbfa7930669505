//! The unary message reader: slices, joins, limits, framing errors, gzip.

use tonic::Code;

use super::*;
use crate::receive::budget::IntakeBudget;

fn reader(limit: usize) -> MessageReader {
    MessageReader::new(
        limit,
        IntakeBudget::new(1 << 30).reservation(),
        Duration::from_secs(1),
    )
}

fn dec(flag: u8, m: Bytes, e: Option<Encoding>, limit: usize) -> Result<Bytes, Status> {
    let mut r = IntakeBudget::new(1 << 30).reservation();
    decompress(flag, m, e, limit, &mut r, Duration::from_secs(1))
}

fn framed(flag: u8, message: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(PREFIX + message.len());
    out.push(flag);
    out.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    out.extend_from_slice(message);
    Bytes::from(out)
}

fn read_frames(frames: &[Bytes], limit: usize) -> Result<(u8, Bytes), Status> {
    let mut reader = reader(limit);
    for f in frames {
        reader.push(f.clone())?;
    }
    reader.finish().map(|(flag, m, _)| (flag, m))
}

#[test]
fn message_in_one_frame_is_a_slice_of_that_frame_not_a_copy() {
    let frame = framed(0, &[7u8; 300_000]);
    let (flag, message) = read_frames(std::slice::from_ref(&frame), 1 << 20).unwrap();
    assert_eq!(flag, 0);
    assert_eq!(message.len(), 300_000);
    assert_eq!(message.as_ptr(), frame[PREFIX..].as_ptr());
}

#[test]
fn message_split_anywhere_over_frames_is_joined_whole() {
    let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let frame = framed(0, &payload);
    // Cuts inside the prefix, at its end, and at 16 KiB frame boundaries.
    for cuts in [
        vec![2, 5, 16_389],
        vec![5],
        vec![1, 3, 4],
        vec![16_384, 32_768],
    ] {
        let mut frames = Vec::new();
        let mut at = 0;
        for c in cuts {
            frames.push(frame.slice(at..c));
            at = c;
        }
        frames.push(frame.slice(at..));
        let (_, message) = read_frames(&frames, 1 << 20).unwrap();
        assert_eq!(message, payload);
    }
}

#[test]
fn empty_message_is_an_empty_request() {
    let (flag, message) = read_frames(&[framed(0, b"")], 16).unwrap();
    assert_eq!((flag, message.len()), (0, 0));
}

#[test]
fn declared_length_over_the_limit_is_refused_before_the_body_is_read() {
    let mut reader = reader(1000);
    // Only the prefix of a 1001-byte message has arrived.
    let err = reader
        .push(framed(0, &[0u8; 1001]).slice(..PREFIX))
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(
        err.message().contains("1001") && err.message().contains("1000"),
        "{err}"
    );
    assert_eq!(reader.received(), 0, "nothing was buffered");
}

#[test]
fn body_cut_short_or_without_a_message_is_internal() {
    let frame = framed(0, b"0123456789");
    for frames in [vec![], vec![frame.slice(..3)], vec![frame.slice(..9)]] {
        let err = read_frames(&frames, 100).unwrap_err();
        assert_eq!(err.code(), Code::Internal, "{err}");
    }
    let err = read_frames(&[frame.slice(..9)], 100).unwrap_err();
    assert!(
        err.message().contains("4 of the gRPC message's 10 bytes"),
        "{err}"
    );
}

#[test]
fn data_after_the_one_message_is_refused() {
    let mut two = framed(0, b"abc").to_vec();
    two.extend_from_slice(&framed(0, b"def"));
    let err = read_frames(&[Bytes::from(two)], 100).unwrap_err();
    assert_eq!(err.code(), Code::Internal);
    assert!(err.message().contains("exactly one message"), "{err}");
}

#[test]
fn compressed_flag_needs_an_encoding_and_other_flags_are_refused() {
    let err = dec(1, Bytes::from_static(b"x"), None, 100).unwrap_err();
    assert_eq!(err.code(), Code::Internal);
    assert!(err.message().contains("grpc-encoding"), "{err}");
    let err = dec(2, Bytes::from_static(b"x"), None, 100).unwrap_err();
    assert!(err.message().contains("invalid compressed flag 2"), "{err}");
    let plain = Bytes::from_static(b"as is");
    assert_eq!(dec(0, plain.clone(), None, 100).unwrap(), plain);
}

#[test]
fn unknown_grpc_encoding_is_unimplemented_naming_the_accepted_ones() {
    let mut headers = HeaderMap::new();
    assert_eq!(Encoding::from_headers(&headers).unwrap(), None);
    headers.insert("grpc-encoding", "identity".parse().unwrap());
    assert_eq!(Encoding::from_headers(&headers).unwrap(), None);
    headers.insert("grpc-encoding", "snappy".parse().unwrap());
    let err = Encoding::from_headers(&headers).unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    assert!(err.message().contains("snappy"), "{err}");
    assert!(err.metadata().get("grpc-accept-encoding").is_some());
}

#[cfg(feature = "gzip")]
#[test]
fn gzip_messages_are_decompressed_within_the_limit_and_bombs_refused() {
    use std::io::Write as _;
    let gzip = |data: &[u8]| {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        Bytes::from(enc.finish().unwrap())
    };
    let mut headers = HeaderMap::new();
    headers.insert("grpc-encoding", "gzip".parse().unwrap());
    let encoding = Encoding::from_headers(&headers).unwrap();
    assert_eq!(encoding, Some(Encoding::Gzip));
    let data = vec![3u8; 50_000];
    assert_eq!(dec(1, gzip(&data), encoding, 50_000).unwrap(), data);
    let bomb = gzip(&vec![0u8; 8 << 20]);
    let err = dec(1, bomb, encoding, 1 << 20).unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    let err = dec(1, Bytes::from_static(b"not gzip"), encoding, 100).unwrap_err();
    assert_eq!(err.code(), Code::Internal, "{err}");
}
