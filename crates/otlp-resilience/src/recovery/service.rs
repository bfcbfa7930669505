//! [`Recovery`]: runs the strategies on failures the layers below gave up on.

use std::{
    fmt,
    sync::{Arc, atomic::Ordering},
    task::{Context, Poll},
};

use otlp_core::{Classify, Split};
use tower_service::Service;

use super::{Config, Merge, Recovered, RecoveryLayer, future::ResponseFuture};

/// A factory that rebuilds the inner service (a new connection).
pub(super) type MakeService<S> = Arc<dyn Fn() -> S + Send + Sync>;

/// Recovers failed requests with an ordered list of
/// [`RecoveryStrategy`](crate::RecoveryStrategy): split what was too large,
/// reconnect after connection errors, wait out throttling.
///
/// It sits above [`Retry`](crate::Retry): retry handles the transient, this
/// layer handles what retrying the same bytes cannot fix. The answer is a
/// [`Recovered`] that accounts for every item; the error is the inner one and
/// is returned only when the request failed whole (it was never split).
pub struct Recovery<S> {
    inner: S,
    config: Arc<Config>,
    make: Option<MakeService<S>>,
    generation: u64,
}

// === impl Recovery ===

impl<S> Recovery<S> {
    /// Wraps `inner` with the built-in strategies ([`RecoveryLayer::default`]).
    pub fn new(inner: S) -> Self {
        use tower_layer::Layer;
        RecoveryLayer::default().layer(inner)
    }

    pub(super) fn from_config(inner: S, config: Arc<Config>) -> Self {
        let generation = config.generation.load(Ordering::Acquire);
        Recovery {
            inner,
            config,
            make: None,
            generation,
        }
    }

    /// Rebuilds the inner service with `make` when a strategy asks to
    /// [`Reconnect`](crate::Action::Reconnect). Every clone of this service
    /// picks up the new connection at its next `poll_ready`.
    ///
    /// Without a factory a reconnect only resends after its delay, for inner
    /// services that re-establish connections by themselves (a tonic `Channel` does).
    pub fn with_reconnect(mut self, make: impl Fn() -> S + Send + Sync + 'static) -> Self {
        self.make = Some(Arc::new(make));
        self
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone> Clone for Recovery<S> {
    fn clone(&self) -> Self {
        Recovery {
            inner: self.inner.clone(),
            config: self.config.clone(),
            make: self.make.clone(),
            generation: self.generation,
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for Recovery<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recovery")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .field("reconnects", &self.make.is_some())
            .field("generation", &self.generation)
            .finish()
    }
}

impl<S, Req> Service<Req> for Recovery<S>
where
    S: Service<Req> + Clone,
    S::Error: Classify,
    S::Response: Merge,
    Req: Split + Clone,
{
    type Response = Recovered<S::Response, S::Error>;
    type Error = S::Error;
    type Future = ResponseFuture<S, Req>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // A response future reconnected: take the new connection too.
        let generation = self.config.generation.load(Ordering::Acquire);
        if generation != self.generation {
            if let Some(make) = &self.make {
                self.inner = make();
            }
            self.generation = generation;
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let clone = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, clone);
        let future = ready.call(request.clone());
        ResponseFuture::new(
            request,
            ready,
            self.config.clone(),
            self.make.clone(),
            future,
        )
    }
}
