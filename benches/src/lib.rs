//! Shared helpers of the otlp-rust benchmarks.
