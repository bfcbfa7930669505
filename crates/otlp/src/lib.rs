//! The otlp-rust facade: builds the export stack from config and re-exports the component crates.
//!
//! This crate is being built; see ARCHITECTURE.md for its place in the stack.
//!
//! # Example
//!
//! ```
//! assert_eq!(otlp_core::Signal::Traces.as_str(), "traces");
//! ```
