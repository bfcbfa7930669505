//! The response future of [`Recovery`](crate::Recovery): sends the request and
//! the parts recovery makes of it, one at a time, without recursion or boxing.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, atomic::Ordering},
    task::{Context, Poll, ready},
};

use otlp_core::{Classify, Payload, Split};
use pin_project_lite::pin_project;
use tokio::time::{Sleep, sleep};
use tower_service::Service;

use super::{Action, Config, FailedPart, Merge, Recovered, service::MakeService};

pin_project! {
    /// The future returned by [`Recovery`](crate::Recovery).
    pub struct ResponseFuture<S, Req>
    where
        S: Service<Req>,
    {
        service: S,
        config: Arc<Config>,
        make: Option<MakeService<S>>,
        // The part in flight (or about to be sent), with the strategy that made it.
        current: Option<Part<Req>>,
        // Parts waiting, last out first: the left half of a split goes first.
        pending: Vec<Part<Req>>,
        answer: Recovered<S::Response, S::Error>,
        resends: u32,
        #[pin]
        state: State<S::Future>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Called { #[pin] future: F },
        Waiting { #[pin] sleep: Sleep },
        Ready,
    }
}

struct Part<Req> {
    request: Req,
    via: Option<usize>,
}

/// What to do after handling one result.
enum Next<E> {
    /// Send `current` after readiness (or after `Waiting`).
    Continue,
    /// The original request failed whole.
    Fail(E),
    /// No part left.
    Finish,
}

// === impl ResponseFuture ===

impl<S, Req> ResponseFuture<S, Req>
where
    S: Service<Req>,
{
    pub(super) fn new(
        request: Req,
        service: S,
        config: Arc<Config>,
        make: Option<MakeService<S>>,
        future: S::Future,
    ) -> Self {
        ResponseFuture {
            service,
            config,
            make,
            current: Some(Part { request, via: None }),
            pending: Vec::new(),
            answer: Recovered {
                response: None,
                delivered: 0,
                failed: Vec::new(),
                split: false,
            },
            resends: 0,
            state: State::Called { future },
        }
    }
}

impl<S, Req> std::fmt::Debug for ResponseFuture<S, Req>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("pending", &self.pending.len())
            .field("resends", &self.resends)
            .finish_non_exhaustive()
    }
}

impl<S, Req> Future for ResponseFuture<S, Req>
where
    S: Service<Req>,
    S::Error: Classify,
    S::Response: Merge,
    Req: Split + Clone,
{
    type Output = Result<Recovered<S::Response, S::Error>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let result = match this.state.as_mut().project() {
                StateProj::Called { future } => ready!(future.poll(cx)),
                StateProj::Waiting { sleep } => {
                    ready!(sleep.poll(cx));
                    this.state.set(State::Ready);
                    continue;
                }
                StateProj::Ready => match ready!(this.service.poll_ready(cx)) {
                    Ok(()) => {
                        let Some(part) = this.current.as_ref() else {
                            return Poll::Ready(Ok(this.answer.take()));
                        };
                        let future = this.service.call(part.request.clone());
                        this.state.set(State::Called { future });
                        continue;
                    }
                    Err(e) => Err(e),
                },
            };
            let Some(part) = this.current.take() else {
                return Poll::Ready(Ok(this.answer.take()));
            };
            let next = match result {
                Ok(response) => {
                    if let Some(i) = part.via {
                        this.config.stats.outcome(i, true);
                    }
                    this.answer.delivered += part.request.items();
                    match &mut this.answer.response {
                        Some(merged) => merged.merge(response),
                        none => *none = Some(response),
                    }
                    Next::Finish
                }
                Err(error) => {
                    if let Some(i) = part.via {
                        this.config.stats.outcome(i, false);
                    }
                    match recover(this.config, &part, &error) {
                        Some((i, Action::Split)) => match part.request.split() {
                            Some((left, right)) => {
                                this.answer.split = true;
                                this.pending.push(Part {
                                    request: right,
                                    via: Some(i),
                                });
                                this.pending.push(Part {
                                    request: left,
                                    via: Some(i),
                                });
                                Next::Finish
                            }
                            None => fail(this.answer, &part, error),
                        },
                        Some((i, action)) => {
                            let resend = match action {
                                Action::Resend { delay } => Some((delay, false)),
                                Action::Reconnect { delay } => Some((delay, true)),
                                _ => None,
                            };
                            match resend {
                                Some((delay, reconnect))
                                    if *this.resends < this.config.max_resends =>
                                {
                                    *this.resends += 1;
                                    if reconnect && let Some(make) = this.make.as_ref() {
                                        *this.service = make();
                                        // Clones of the service rebuild at their next poll_ready.
                                        this.config.generation.fetch_add(1, Ordering::AcqRel);
                                    }
                                    tracing::debug!(
                                        strategy = this.config.strategies.get(i).map(|s| s.name()),
                                        ?delay,
                                        "recovering a failed export"
                                    );
                                    *this.current = Some(Part {
                                        request: part.request,
                                        via: Some(i),
                                    });
                                    this.state.set(State::Waiting {
                                        sleep: sleep(delay),
                                    });
                                    Next::Continue
                                }
                                _ => fail(this.answer, &part, error),
                            }
                        }
                        None => fail(this.answer, &part, error),
                    }
                }
            };
            match next {
                Next::Continue => {}
                Next::Fail(e) => return Poll::Ready(Err(e)),
                Next::Finish => match this.pending.pop() {
                    Some(part) => {
                        *this.current = Some(part);
                        this.state.set(State::Ready);
                    }
                    None => return Poll::Ready(Ok(this.answer.take())),
                },
            }
        }
    }
}

/// Picks the first strategy that handles `error` and asks it what to do.
fn recover<Req: Payload, E: Classify>(
    config: &Config,
    part: &Part<Req>,
    error: &E,
) -> Option<(usize, Action)> {
    let (i, strategy) = config
        .strategies
        .iter()
        .enumerate()
        .find(|(_, s)| s.can_handle(error))?;
    config.stats.applied(i);
    Some((i, strategy.recover(error, &part.request)))
}

/// Records `part` as failed, or fails the whole request when it was never split.
fn fail<R, E, Req: Payload>(answer: &mut Recovered<R, E>, part: &Part<Req>, error: E) -> Next<E> {
    if !answer.split {
        return Next::Fail(error);
    }
    answer.failed.push(FailedPart {
        items: part.request.items(),
        error,
    });
    Next::Finish
}

// === impl Recovered ===

impl<R, E> Recovered<R, E> {
    fn take(&mut self) -> Self {
        Recovered {
            response: self.response.take(),
            delivered: std::mem::take(&mut self.delivered),
            failed: std::mem::take(&mut self.failed),
            split: self.split,
        }
    }
}
