//! `Intake`: the service the agent's receivers call, handing each received
//! request to the pipeline without decoding it.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use otlp_core::{Batch, Classify, ExportResponse, Retryability};
use otlp_pipeline::{Sender, TrySendError};
use tower::Service;

/// Accepts already-encoded export requests into the pipeline.
///
/// A request is acknowledged (the receiver answers success) only once the
/// pipeline's queue has taken it. When the queue is full the sender is told to
/// retry later (gRPC `UNAVAILABLE` / HTTP 503 with a retry hint), so back-pressure
/// reaches the sender instead of silently losing data.
#[derive(Clone, Debug)]
pub struct Intake {
    sender: Sender,
    wait: bool,
    durable: bool,
}

/// Why a received request was not taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IntakeError {
    /// The queue is full: the sender should retry after the hint.
    #[error("agent queue is full ({0}); retry later")]
    Full(TrySendError),
    /// The request alone is larger than the queue may hold.
    #[error("{0}")]
    Oversized(TrySendError),
    /// The agent is shutting down.
    #[error("agent is shutting down")]
    Closed,
}

/// How long a sender is asked to wait when the queue is full.
const RETRY_HINT: Duration = Duration::from_secs(1);

// === impl Intake ===

impl Intake {
    /// Feeds `sender`; with `wait`, a full queue is waited on (per the
    /// `block` policy's deadline) before the sender is told to retry.
    pub fn new(sender: Sender, wait: bool) -> Self {
        Self {
            sender,
            wait,
            durable: false,
        }
    }

    /// With a disk queue: write each accepted request to disk before it is
    /// acknowledged, so an acknowledged request survives `kill -9`.
    pub fn durable(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }

    /// The TLS the receivers feeding an intake serve with, from
    /// `receivers.tls` of `config`; `None` serves plaintext. Pass it to the
    /// receivers' `with_tls`. Serving it needs otlp's `tls` feature;
    /// without it the receivers' `bind` fails with
    /// [`ReceiveError::TlsFeatureDisabled`](otlp_transport::ReceiveError::TlsFeatureDisabled).
    pub fn receiver_tls(config: &otlp_config::Config) -> Option<otlp_transport::ReceiverTls> {
        crate::convert::receiver_tls(config)
    }
}

fn map(res: Result<(), TrySendError>) -> Result<ExportResponse, IntakeError> {
    match res {
        Ok(()) => Ok(ExportResponse::success()),
        Err(e @ TrySendError::Full { .. }) => Err(IntakeError::Full(e)),
        Err(e @ TrySendError::Oversized { .. }) => Err(IntakeError::Oversized(e)),
        Err(TrySendError::Closed) => Err(IntakeError::Closed),
        Err(e) => Err(IntakeError::Full(e)),
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
        let (wait, durable) = (self.wait, self.durable);
        Box::pin(async move {
            let res = if wait {
                sender.send_batch(batch).await
            } else {
                sender.try_send_batch(batch)
            };
            if res.is_ok() && durable {
                // Cut the open batch now so it is on disk before we answer.
                let pending = sender.commit();
                if pending > 0 {
                    tracing::warn!(
                        pending,
                        "disk queue full: acknowledged data is held in memory until the disk frees up"
                    );
                }
            }
            map(res)
        })
    }
}

impl Classify for IntakeError {
    fn classify(&self) -> Retryability {
        match self {
            IntakeError::Full(_) | IntakeError::Closed => Retryability::Throttled(RETRY_HINT),
            IntakeError::Oversized(_) => Retryability::TooLarge,
        }
    }
}
