//! Shared helpers of the otlp-rust end-to-end tests.
