//! Handing one received batch to the inner service and classifying its answer,
//! shared by the gRPC and HTTP receivers.

use std::{fmt, time::Duration};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::{
    logs::v1::{ExportLogsPartialSuccess, ExportLogsServiceResponse},
    metrics::v1::{ExportMetricsPartialSuccess, ExportMetricsServiceResponse},
    profiles::v1development::{ExportProfilesPartialSuccess, ExportProfilesServiceResponse},
    trace::v1::{ExportTracePartialSuccess, ExportTraceServiceResponse},
};
use otlp_core::{Batch, Classify, ExportResponse, Retryability, Signal};
use prost::Message;
use tower::{Service, ServiceExt};

use crate::receive::ReceiverLimits;

/// Why a request was not accepted, in protocol-neutral terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Back-pressure or a transient failure: the client should retry after the hint
    /// (gRPC `UNAVAILABLE` with `RetryInfo`, HTTP 503 with `Retry-After`).
    Unavailable {
        retry_after: Duration,
        message: String,
    },
    /// The request is too large for what is behind the receiver
    /// (gRPC `RESOURCE_EXHAUSTED` without a retry hint, HTTP 413).
    TooLarge(String),
    /// The inner service failed for good (gRPC `INTERNAL`, HTTP 500).
    Failed(String),
}

/// Requests at least this large are validated on the blocking pool, so that
/// walking megabytes never stalls the async workers (other connections, the
/// probes); smaller ones are validated inline, cheaper than a thread hop.
const OFF_WORKER_BYTES: usize = 1 << 20;

/// Validates a received protobuf request into a [`Batch`] (see
/// [`Batch::from_received`]), off the async workers when it is large.
///
/// # Errors
///
/// The reason the request is invalid, for a 400 / `INVALID_ARGUMENT`.
pub(crate) async fn received(signal: Signal, bytes: Bytes) -> Result<Batch, String> {
    if bytes.len() < OFF_WORKER_BYTES {
        return Batch::from_received(signal, bytes).map_err(|e| e.to_string());
    }
    match tokio::task::spawn_blocking(move || Batch::from_received(signal, bytes)).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(e) => Err(format!("validation task failed: {e}")),
    }
}

/// Waits up to the ready timeout for `svc`, then hands it `batch`.
///
/// # Cancel safety
///
/// Dropping the future drops the batch; nothing is retained.
pub(crate) async fn export<S>(
    mut svc: S,
    batch: Batch,
    limits: &ReceiverLimits,
) -> Result<ExportResponse, Refusal>
where
    S: Service<Batch, Response = ExportResponse>,
    S::Error: Classify + fmt::Display,
{
    let signal = batch.signal();
    match tokio::time::timeout(limits.ready_timeout(), svc.ready()).await {
        Err(_elapsed) => {
            return Err(Refusal::Unavailable {
                retry_after: limits.retry_after(),
                message: format!(
                    "receiver busy: its pipeline did not take the {signal} request within {:?}; retry later",
                    limits.ready_timeout()
                ),
            });
        }
        Ok(Err(e)) => return Err(refusal(&e, signal, limits)),
        Ok(Ok(_)) => {}
    }
    svc.call(batch)
        .await
        .map_err(|e| refusal(&e, signal, limits))
}

/// Maps an inner failure onto the answer the client gets.
pub(crate) fn refusal<E: Classify + fmt::Display>(
    e: &E,
    signal: Signal,
    limits: &ReceiverLimits,
) -> Refusal {
    match e.classify() {
        Retryability::Retryable => Refusal::Unavailable {
            retry_after: limits.retry_after(),
            message: format!("{signal} request not accepted, retry later: {e}"),
        },
        Retryability::Throttled(d) => Refusal::Unavailable {
            retry_after: d,
            message: format!("{signal} request not accepted, retry after {d:?}: {e}"),
        },
        Retryability::TooLarge => Refusal::TooLarge(format!(
            "{signal} request too large, send smaller batches: {e}"
        )),
        Retryability::Permanent => Refusal::Failed(format!("{signal} request failed: {e}")),
    }
}

/// The protobuf `Export*ServiceResponse` for `resp`, empty on full success.
pub(crate) fn encode_response(signal: Signal, resp: &ExportResponse) -> Bytes {
    if resp.is_full_success() && resp.message.is_empty() {
        return Bytes::new();
    }
    let rejected = i64::try_from(resp.rejected).unwrap_or(i64::MAX);
    let error_message = resp.message.clone();
    let bytes = match signal {
        Signal::Traces => ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: rejected,
                error_message,
            }),
        }
        .encode_to_vec(),
        Signal::Metrics => ExportMetricsServiceResponse {
            partial_success: Some(ExportMetricsPartialSuccess {
                rejected_data_points: rejected,
                error_message,
            }),
        }
        .encode_to_vec(),
        Signal::Logs => ExportLogsServiceResponse {
            partial_success: Some(ExportLogsPartialSuccess {
                rejected_log_records: rejected,
                error_message,
            }),
        }
        .encode_to_vec(),
        Signal::Profiles => ExportProfilesServiceResponse {
            partial_success: Some(ExportProfilesPartialSuccess {
                rejected_profiles: rejected,
                error_message,
            }),
        }
        .encode_to_vec(),
    };
    Bytes::from(bytes)
}

#[cfg(feature = "http")]
/// The OTLP/JSON `Export*ServiceResponse` for `resp`: 64-bit counts as strings,
/// lowerCamelCase keys, `{}` on full success.
pub(crate) fn encode_response_json(signal: Signal, resp: &ExportResponse) -> Bytes {
    if resp.is_full_success() && resp.message.is_empty() {
        return Bytes::from_static(b"{}");
    }
    let key = match signal {
        Signal::Traces => "rejectedSpans",
        Signal::Metrics => "rejectedDataPoints",
        Signal::Logs => "rejectedLogRecords",
        Signal::Profiles => "rejectedProfiles",
    };
    let mut partial = serde_json::Map::new();
    partial.insert(key.to_owned(), resp.rejected.to_string().into());
    partial.insert("errorMessage".to_owned(), resp.message.clone().into());
    Bytes::from(serde_json::json!({ "partialSuccess": partial }).to_string())
}

#[cfg(test)]
mod tests;
