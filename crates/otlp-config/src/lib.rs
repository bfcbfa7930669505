//! Configuration of otlp-rust: model, loading from file, environment and flags, validation and autofix.
//!
//! This crate is being built; see ARCHITECTURE.md for its place in the stack.
//!
//! # Example
//!
//! ```
//! assert_eq!(otlp_core::Signal::Traces.as_str(), "traces");
//! ```
