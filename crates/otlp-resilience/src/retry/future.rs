//! The response future of [`Retry`](crate::Retry): a state machine over
//! called, backing off and waiting for readiness.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use otlp_core::Classify;
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep, sleep};
use tower_service::Service;

use super::Shared;
use crate::RetryError;

pin_project! {
    /// The future returned by [`Retry`](crate::Retry).
    pub struct ResponseFuture<S, Req>
    where
        S: Service<Req>,
    {
        request: Req,
        service: S,
        shared: Arc<Shared>,
        retries: u32,
        started: Instant,
        #[pin]
        state: State<S::Future>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        // An attempt is in flight, maybe bounded by the per-attempt timeout.
        Called {
            #[pin]
            future: F,
            #[pin]
            timeout: Option<Sleep>,
        },
        // Waiting out the backoff before the next attempt.
        Backoff {
            #[pin]
            sleep: Sleep,
        },
        // Waiting for the inner service to be ready for the next attempt.
        Ready,
    }
}

// === impl ResponseFuture ===

impl<S, Req> ResponseFuture<S, Req>
where
    S: Service<Req>,
{
    pub(super) fn new(request: Req, service: S, shared: Arc<Shared>, future: S::Future) -> Self {
        let timeout = shared.policy.attempt_timeout().map(sleep);
        ResponseFuture {
            request,
            service,
            shared,
            retries: 0,
            started: Instant::now(),
            state: State::Called { future, timeout },
        }
    }
}

impl<S, Req> std::fmt::Debug for ResponseFuture<S, Req>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("retries", &self.retries)
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}

impl<S, Req> Future for ResponseFuture<S, Req>
where
    S: Service<Req>,
    S::Error: Classify,
    Req: Clone,
{
    type Output = Result<S::Response, RetryError<S::Error>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Called { future, timeout } => {
                    let error = match future.poll(cx) {
                        Poll::Ready(Ok(response)) => return Poll::Ready(Ok(response)),
                        Poll::Ready(Err(e)) => RetryError::Inner(e),
                        Poll::Pending => {
                            let fired = timeout.as_pin_mut().is_some_and(|t| t.poll(cx).is_ready());
                            if !fired {
                                return Poll::Pending;
                            }
                            RetryError::AttemptTimeout {
                                timeout: this.shared.policy.attempt_timeout().unwrap_or_default(),
                                attempts: *this.retries + 1,
                            }
                        }
                    };
                    match this.shared.next_delay(this.retries, *this.started, &error) {
                        Some(delay) => this.state.set(State::Backoff {
                            sleep: sleep(delay),
                        }),
                        None => return Poll::Ready(Err(error)),
                    }
                }
                StateProj::Backoff { sleep } => {
                    ready!(sleep.poll(cx));
                    this.state.set(State::Ready);
                }
                StateProj::Ready => {
                    if let Err(e) = ready!(this.service.poll_ready(cx)) {
                        return Poll::Ready(Err(RetryError::Inner(e)));
                    }
                    let future = this.service.call(this.request.clone());
                    let timeout = this.shared.policy.attempt_timeout().map(sleep);
                    this.state.set(State::Called { future, timeout });
                }
            }
        }
    }
}

// === impl Shared ===

impl Shared {
    /// Decides whether to retry `error` and after how long, emitting the events.
    /// `retries` counts the retries made so far and is advanced on `Some`.
    fn next_delay<E: Classify>(
        &self,
        retries: &mut u32,
        started: Instant,
        error: &RetryError<E>,
    ) -> Option<Duration> {
        let class = error.classify();
        if !class.is_retryable() {
            return None;
        }
        let policy = &self.policy;
        let next = retries.saturating_add(1);
        if policy.max_retries().is_some_and(|max| next > max) {
            return self.give_up(super::GiveUp::MaxRetries, next);
        }
        let delay = policy.delay(next, class.throttle());
        if started.elapsed().saturating_add(delay) > policy.max_elapsed() {
            return self.give_up(super::GiveUp::MaxElapsed, next);
        }
        if !policy.budget().withdraw() {
            return self.give_up(super::GiveUp::Budget, next);
        }
        if class.throttle().is_some() {
            self.events.on_throttle(delay);
        }
        self.events.on_retry(next, delay, class);
        tracing::debug!(
            retry = next,
            ?delay,
            cause = class.as_str(),
            "retrying export"
        );
        *retries = next;
        Some(delay)
    }

    fn give_up(&self, reason: super::GiveUp, attempt: u32) -> Option<Duration> {
        self.events.on_give_up(reason);
        tracing::debug!(retry = attempt, %reason, "giving up retrying export");
        None
    }
}
