//! Batching, bounded memory and disk queues, export workers, flush and shutdown.
//!
//! This crate is being built; see ARCHITECTURE.md for its place in the stack.
//!
//! # Example
//!
//! ```
//! assert_eq!(otlp_core::Signal::Traces.as_str(), "traces");
//! ```
