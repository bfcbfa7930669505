//! Reading the one message of a unary gRPC request from the HTTP/2 body,
//! without copying it when it arrives in one DATA frame.
//!
//! tonic's decoder copies every DATA frame into a buffer of its own before it
//! hands out the message; at a few hundred KiB per OTLP request that copy, and
//! the page faults of a fresh buffer per request, were a large part of the
//! agent's CPU. Here a message that arrives whole in one frame (the receiver
//! advertises frames as large as its stream window) is a slice of that frame,
//! and one split over several frames is copied into a buffer that grows as
//! the data arrives (never to a length only declared), every byte reserved
//! from the intake budget first.

use std::time::Duration;

use bytes::{Buf, Bytes};
use http::HeaderMap;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use tonic::{
    Status,
    metadata::{MetadataKey, MetadataValue},
};

#[cfg(any(feature = "gzip", feature = "zstd"))]
use crate::receive::body::{self, BodyError};
use crate::receive::budget::{Collect, Reservation, Spent};

/// The gRPC message prefix: compressed flag (1 byte) and length (4 bytes, big endian).
const PREFIX: usize = 5;

/// A message encoding the receiver accepts in `grpc-encoding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Encoding {
    /// gzip (feature `gzip`).
    #[cfg(feature = "gzip")]
    Gzip,
    /// zstd (feature `zstd`).
    #[cfg(feature = "zstd")]
    Zstd,
}

/// Collects the message of a unary request from DATA frames.
#[derive(Debug)]
pub(super) struct MessageReader {
    /// Largest message accepted, compressed or not.
    limit: usize,
    prefix: [u8; PREFIX],
    prefix_len: usize,
    /// The compressed flag and the length, once the prefix is complete.
    header: Option<(u8, usize)>,
    /// The message so far, under the intake budget (made once the length is known).
    message: Option<Collect>,
    /// The reservation until the message begins.
    reservation: Option<Reservation>,
    /// Retry hint for a spent budget.
    retry_after: Duration,
}

// === impl Encoding ===

impl Encoding {
    /// The exporter's name for a message compressed this way.
    pub(super) fn wire_form(self) -> &'static str {
        match self {
            #[cfg(feature = "gzip")]
            Encoding::Gzip => "gzip",
            #[cfg(feature = "zstd")]
            Encoding::Zstd => "zstd",
        }
    }

    /// The encodings this build accepts, as `grpc-accept-encoding` lists them.
    pub(super) const ACCEPTED: &'static str = match (cfg!(feature = "gzip"), cfg!(feature = "zstd"))
    {
        (true, true) => "gzip,zstd",
        (true, false) => "gzip",
        (false, true) => "zstd",
        (false, false) => "identity",
    };

    /// The request's `grpc-encoding`: `None` for none or `identity`.
    ///
    /// # Errors
    ///
    /// `UNIMPLEMENTED` naming the encodings this receiver accepts (also in
    /// `grpc-accept-encoding`), as gRPC prescribes.
    pub(super) fn from_headers(headers: &HeaderMap) -> Result<Option<Encoding>, Status> {
        let Some(value) = headers.get("grpc-encoding") else {
            return Ok(None);
        };
        let text = value.to_str().unwrap_or("(not text)").trim();
        if text.is_empty() || text.eq_ignore_ascii_case("identity") {
            return Ok(None);
        }
        #[cfg(feature = "gzip")]
        if text.eq_ignore_ascii_case("gzip") {
            return Ok(Some(Encoding::Gzip));
        }
        #[cfg(feature = "zstd")]
        if text.eq_ignore_ascii_case("zstd") {
            return Ok(Some(Encoding::Zstd));
        }
        let accepted = Self::ACCEPTED;
        let mut status = Status::unimplemented(format!(
            "content is compressed with `{text}`, which this receiver does not accept; send {accepted} or no grpc-encoding"
        ));
        status.metadata_mut().insert(
            MetadataKey::from_static("grpc-accept-encoding"),
            MetadataValue::from_static(accepted),
        );
        Err(status)
    }
}

// === impl MessageReader ===

impl MessageReader {
    /// A reader refusing messages over `limit` bytes, holding what it reads
    /// in `reservation`; `retry_after` is the hint when the budget is spent.
    pub(super) fn new(limit: usize, reservation: Reservation, retry_after: Duration) -> Self {
        Self {
            limit,
            prefix: [0; PREFIX],
            prefix_len: 0,
            header: None,
            message: None,
            reservation: Some(reservation),
            retry_after,
        }
    }

    fn spent(&self, s: &Spent) -> Status {
        match s {
            Spent::Busy { .. } => super::unavailable(self.retry_after, s.message()),
            Spent::TooLarge { .. } => Status::resource_exhausted(s.message()),
        }
    }

    /// Reads the whole request body and returns its one message, decompressed.
    ///
    /// # Errors
    ///
    /// `RESOURCE_EXHAUSTED` for a message (or its decompressed form) over the
    /// limit, `INTERNAL` for a body that breaks the gRPC framing, is cut
    /// short, or does not decompress.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops what was read; nothing is retained.
    pub(super) async fn read(
        mut self,
        mut body: Incoming,
        timeout: Duration,
    ) -> Result<(u8, Bytes, Reservation), Status> {
        // Bounded: each frame is at most the advertised frame size, and the
        // message is refused as soon as its declared length passes the limit.
        let read = async {
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| {
                    Status::internal(format!(
                        "request body could not be read: {e}; the client cut it short"
                    ))
                })?;
                // Request trailers carry nothing the receiver uses.
                if let Ok(data) = frame.into_data() {
                    self.push(data)?;
                }
            }
            self.finish()
        };
        match tokio::time::timeout(timeout, read).await {
            Ok(r) => r,
            Err(_) => Err(Status::deadline_exceeded(format!(
                "request message not received within {timeout:?} (the body read timeout); send the whole message promptly"
            ))),
        }
    }

    /// Takes the next DATA frame.
    pub(super) fn push(&mut self, mut data: Bytes) -> Result<(), Status> {
        while self.prefix_len < PREFIX && data.has_remaining() {
            self.prefix[self.prefix_len] = data.get_u8();
            self.prefix_len += 1;
        }
        if self.header.is_none() && self.prefix_len == PREFIX {
            let len = u32::from_be_bytes([
                self.prefix[1],
                self.prefix[2],
                self.prefix[3],
                self.prefix[4],
            ]) as usize;
            if len > self.limit {
                return Err(Status::resource_exhausted(format!(
                    "gRPC message of {len} bytes is larger than the receiver's limit of {} bytes; send smaller batches",
                    self.limit
                )));
            }
            self.header = Some((self.prefix[0], len));
        }
        let Some((_, len)) = self.header else {
            return Ok(());
        };
        if data.is_empty() {
            return Ok(());
        }
        let have = self.received();
        if data.len() > len - have {
            return Err(Status::internal(
                "request body carries data after its gRPC message: a unary call sends exactly one message",
            ));
        }
        if self.message.is_none() {
            let reservation = self.reservation.take().ok_or_else(|| {
                Status::internal("gRPC message reader used after its message was taken")
            })?;
            self.message = Some(Collect::new(reservation, Some(len)));
        }
        let pushed = match self.message.as_mut() {
            Some(m) => m.push(data),
            None => Ok(()),
        };
        pushed.map_err(|e| self.spent(&e))
    }

    /// Message bytes received so far.
    fn received(&self) -> usize {
        self.message.as_ref().map_or(0, Collect::len)
    }

    /// The compressed flag, the message and the reservation holding it,
    /// once the body ended.
    pub(super) fn finish(&mut self) -> Result<(u8, Bytes, Reservation), Status> {
        let Some((flag, len)) = self.header else {
            return Err(Status::internal(if self.prefix_len == 0 {
                "request carries no gRPC message: a unary call sends exactly one".to_owned()
            } else {
                format!(
                    "request body ended inside the {PREFIX}-byte gRPC message prefix; the client cut it short"
                )
            }));
        };
        let have = self.received();
        if have < len {
            return Err(Status::internal(format!(
                "request body ended after {have} of the gRPC message's {len} bytes; the client cut it short"
            )));
        }
        match (self.message.take(), self.reservation.take()) {
            (Some(m), _) => {
                let (bytes, reservation) = m.finish();
                Ok((flag, bytes, reservation))
            }
            (None, Some(reservation)) => Ok((flag, Bytes::new(), reservation)),
            (None, None) => Err(Status::internal("gRPC message reader finished twice")),
        }
    }
}

/// Decompresses `message` per its compressed flag and the request's
/// `grpc-encoding`, refusing output past `limit` bytes (a gzip bomb stops
/// there). The compressed message's bytes stay reserved: the caller gives
/// them back, or keeps the message.
#[cfg_attr(
    not(any(feature = "gzip", feature = "zstd")),
    allow(
        unused_variables,
        reason = "without gzip or zstd nothing is decompressed"
    )
)]
pub(super) fn decompress(
    flag: u8,
    message: Bytes,
    encoding: Option<Encoding>,
    limit: usize,
    reservation: &mut Reservation,
    retry_after: Duration,
) -> Result<Bytes, Status> {
    match (flag, encoding) {
        (0, _) => Ok(message),
        #[cfg(any(feature = "gzip", feature = "zstd"))]
        (1, Some(encoding)) => {
            let encoding = match encoding {
                #[cfg(feature = "gzip")]
                Encoding::Gzip => body::Encoding::Gzip,
                #[cfg(feature = "zstd")]
                Encoding::Zstd => body::Encoding::Zstd,
            };
            let out = body::decode(encoding, message, limit, reservation).map_err(|e| match e {
                BodyError::TooLarge(m) => Status::resource_exhausted(m),
                BodyError::Busy(m) => super::unavailable(retry_after, m),
                BodyError::Malformed(m) | BodyError::TimedOut(m) => {
                    Status::internal(format!("gRPC message could not be decompressed: {m}"))
                }
            })?;
            Ok(out)
        }
        (1, None) => Err(Status::internal(
            "protocol error: the message is flagged compressed but the request has no grpc-encoding; send grpc-encoding: gzip or zstd with it",
        )),
        (f, _) => Err(Status::internal(format!(
            "protocol error: invalid compressed flag {f} in the gRPC message prefix (valid flags are 0 and 1)"
        ))),
    }
}

#[cfg(test)]
mod tests;
