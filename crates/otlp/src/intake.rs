//! `Intake`: the service the agent's receivers call, handing each received
//! request to the pipeline without decoding it.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use otlp_core::{Batch, Classify, ExportResponse, Retryability};
use otlp_pipeline::{Refusal, Sender};
use tower::Service;

/// Accepts already-encoded export requests into the pipeline, whole or not at all.
///
/// A request is acknowledged (the receiver answers success) only once the
/// pipeline holds all of it with room reserved: in memory, or written to the
/// disk queue when one is configured ([`Sender::admit_request`]). When there
/// is no room the sender is told to retry later (gRPC `UNAVAILABLE` / HTTP 503
/// with a retry hint) and nothing of the request was taken, so its retry
/// duplicates nothing. A request with no items is answered with success and
/// never forwarded.
#[derive(Clone, Debug)]
pub struct Intake {
    sender: Sender,
}

/// Why a received request was not taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IntakeError {
    /// No room now: the sender should retry after the hint.
    #[error("agent queue is full, retry later: {0}")]
    Full(Refusal),
    /// The request alone is larger than the queue may ever hold.
    #[error("{0}")]
    TooLarge(Refusal),
    /// The agent is shutting down.
    #[error("agent is shutting down: {0}")]
    Closed(Refusal),
}

/// How long a sender is asked to wait when the queue is full.
const RETRY_HINT: Duration = Duration::from_secs(1);

// === impl Intake ===

impl Intake {
    /// Feeds `sender`. Under the `block` overflow policy a full queue is
    /// waited on (up to the policy's deadline) before the sender is told to
    /// retry.
    pub fn new(sender: Sender) -> Self {
        Self { sender }
    }

    /// The TLS the receivers feeding an intake serve with, from
    /// `receivers.tls` of `config`; `None` serves plaintext. Pass it to the
    /// receivers' `with_tls`. Serving it needs otlp's `tls` feature;
    /// without it the receivers' `bind` fails with
    /// [`ReceiveError::TlsFeatureDisabled`](otlp_transport::ReceiveError::TlsFeatureDisabled).
    pub fn receiver_tls(config: &otlp_config::Config) -> Option<otlp_transport::ReceiverTls> {
        crate::convert::receiver_tls(config)
    }

    /// The receivers' limits from `receivers.*` (intake budget, body read
    /// and idle timeouts), for the receivers' `with_limits`. Give the same
    /// value to both receivers: they then share one intake budget.
    pub fn receiver_limits(config: &otlp_config::Config) -> otlp_transport::ReceiverLimits {
        crate::convert::receiver_limits(config)
    }
}

fn map(res: Result<(), Refusal>) -> Result<ExportResponse, IntakeError> {
    match res {
        Ok(()) => Ok(ExportResponse::success()),
        Err(r @ Refusal::TooLarge { .. }) => Err(IntakeError::TooLarge(r)),
        Err(r @ Refusal::Closed) => Err(IntakeError::Closed(r)),
        Err(r) => Err(IntakeError::Full(r)),
    }
}

impl Service<Batch> for Intake {
    type Response = ExportResponse;
    type Error = IntakeError;
    type Future = Pin<Box<dyn Future<Output = Result<ExportResponse, IntakeError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, batch: Batch) -> Self::Future {
        let sender = self.sender.clone();
        Box::pin(async move { map(sender.admit_request(batch).await) })
    }
}

impl Classify for IntakeError {
    fn classify(&self) -> Retryability {
        match self {
            IntakeError::Full(_) | IntakeError::Closed(_) => Retryability::Throttled(RETRY_HINT),
            IntakeError::TooLarge(_) => Retryability::TooLarge,
        }
    }
}
