//! Retry with backoff and throttling, recovery strategies and adaptive concurrency as tower layers.
//!
//! This crate is being built; see ARCHITECTURE.md for its place in the stack.
//!
//! # Example
//!
//! ```
//! assert_eq!(otlp_core::Signal::Traces.as_str(), "traces");
//! ```
