//! OTLP/gRPC and OTLP/HTTP exporters and receivers as tower services.
//!
//! This crate is being built; see ARCHITECTURE.md for its place in the stack.
//!
//! # Example
//!
//! ```
//! assert_eq!(otlp_core::Signal::Traces.as_str(), "traces");
//! ```

// --- exporters (owned by the exporter work) ---
// --- receivers (owned by the receiver work) ---
