//! xtask: project automation written in Rust.

fn main() {}
