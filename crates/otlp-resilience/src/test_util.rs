//! Test support: a classified error and an adapter that lets `tower_test`
//! mocks answer with it.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use otlp_core::{Classify, Retryability};
use tower_service::Service;

/// An error with a chosen classification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TestError {
    pub(crate) class: Retryability,
    pub(crate) connection: bool,
}

impl TestError {
    pub(crate) fn new(class: Retryability) -> Self {
        TestError {
            class,
            connection: false,
        }
    }
}

impl Classify for TestError {
    fn classify(&self) -> Retryability {
        self.class
    }
    fn is_connection_error(&self) -> bool {
        self.connection
    }
}

impl std::fmt::Display for TestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "test error ({})", self.class.as_str())
    }
}

/// Turns a mock answering `Result<R, TestError>` into a service failing with `TestError`.
#[derive(Clone, Debug)]
pub(crate) struct Flatten<S>(pub(crate) S);

type MockError = Box<dyn std::error::Error + Send + Sync>;

impl<S, Req, R> Service<Req> for Flatten<S>
where
    S: Service<Req, Response = Result<R, TestError>, Error = MockError>,
    S::Future: Send + 'static,
{
    type Response = R;
    type Error = TestError;
    type Future = Pin<Box<dyn Future<Output = Result<R, TestError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TestError>> {
        self.0
            .poll_ready(cx)
            .map_err(|_| TestError::new(Retryability::Permanent))
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let fut = self.0.call(req);
        Box::pin(async move {
            match fut.await {
                Ok(r) => r,
                Err(_) => Err(TestError::new(Retryability::Permanent)),
            }
        })
    }
}
