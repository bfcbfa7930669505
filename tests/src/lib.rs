//! Shared helpers of the otlp-rust end-to-end, fault-injection and reliability tests.
//!
//! The suites under `tests/tests/` drive the real product (the `otlp` facade,
//! the receivers, the `otlp-client` binary) against the scriptable
//! [`FaultServer`] on 127.0.0.1, and record their figures with [`record`] so
//! that `cargo xtask reliability` can write them into `RELIABILITY.md`.
//! Long scenarios run only when [`full_mode`] is on (`OTLP_RELIABILITY_FULL=1`).
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//!
//! use otlp_e2e::{Fault, FaultServer, Script};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! // Two UNAVAILABLE answers, then accept everything.
//! let server = FaultServer::start(Script::accept().then_n(Fault::Unavailable, 2)).await?;
//! assert!(server.grpc_endpoint().starts_with("http://127.0.0.1:"));
//! assert_eq!(server.stats().requests, 0);
//! assert!(!server.wait_for_items(1, Duration::from_millis(20)).await);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---------|---------|--------------|
//! | (none)  |         | a test-support package with no optional features |

pub mod agent;
mod fault;
mod support;

pub use self::{
    fault::{Fault, FaultServer, FaultStats, Logged, Script, Step, Until, base64, http_date},
    support::{
        E2eError, FULL_ENV, Figures, RESULTS_ENV, client_binary, full_mode, peak_rss_bytes, python,
        record, workspace_root,
    },
};
