//! `otlp-client`: the otlp-rust agent and operator tool.

fn main() {}
