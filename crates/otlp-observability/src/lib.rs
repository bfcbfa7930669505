//! Self-metrics, health checks, the admin server, a log ring and a stage profiler.
//!
//! This crate is being built; see ARCHITECTURE.md for its place in the stack.
//!
//! # Example
//!
//! ```
//! assert_eq!(otlp_core::Signal::Traces.as_str(), "traces");
//! ```
