//! Errors of the core vocabulary: malformed encoded requests and invalid joins.

use crate::Signal;

/// The encoded bytes are not a well-formed OTLP export request.
///
/// Only the structure that otlp-core walks (resources, scopes, items) is
/// checked; the content of each item is left to the receiver.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ends in the middle of a field.
    #[error(
        "malformed protobuf: truncated at byte {offset}; the request was cut short or is not protobuf"
    )]
    Truncated {
        /// Byte offset, within the enclosing message, where reading stopped.
        offset: usize,
    },
    /// A varint runs over 10 bytes.
    #[error("malformed protobuf: invalid varint at byte {offset}")]
    BadVarint {
        /// Byte offset where the varint ended.
        offset: usize,
    },
    /// A field tag has number zero or too large.
    #[error("malformed protobuf: invalid field tag at byte {offset}")]
    BadTag {
        /// Byte offset of the tag.
        offset: usize,
    },
    /// A wire type OTLP never uses (groups, or values 6 and 7).
    #[error("malformed protobuf: unsupported wire type {wire_type} at byte {offset}")]
    BadWireType {
        /// Byte offset of the tag.
        offset: usize,
        /// The wire type found.
        wire_type: u8,
    },
    /// A field that must hold a message holds a scalar.
    #[error("malformed OTLP request: field {field} must be a message; is this the right signal?")]
    NotAMessage {
        /// The field number.
        field: u32,
    },
}

/// Two batches could not be joined: they are of different signals, or of a
/// signal whose requests do not join by appending bytes (profiles).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", join_message(*left, *right))]
pub struct JoinError {
    /// The signal of the batch being joined into.
    pub left: Signal,
    /// The signal of the other batch.
    pub right: Signal,
}

fn join_message(left: Signal, right: Signal) -> String {
    if left == right {
        format!(
            "cannot join two {left} requests: each carries its own dictionary that its items index into; send them one by one"
        )
    } else {
        format!(
            "cannot join a {left} batch with a {right} batch: batches join only within one signal"
        )
    }
}
