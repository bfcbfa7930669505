//! otlp-core alone: checks an encoded OTLP export request (protobuf) the
//! way a receiver does before acknowledging it, by walking the wire without
//! decoding into structs: its item count, or the first invalid field by
//! path; then splits it in two halves, as a recovery strategy would.
//!
//! Run it with `cargo run -p otlp-core --example inspect [traces|metrics|logs] [request.bin]`;
//! without a file it inspects a built-in request and a broken copy of it.

#![allow(clippy::print_stdout, clippy::print_stderr)] // An example reports on the terminal.

use bytes::Bytes;
use otlp_core::{Batch, Signal};

/// One resource, one scope, three spans with 16-byte trace ids.
fn sample() -> Vec<u8> {
    let span = [&[0x0a, 0x10][..], &[7; 16]].concat(); // Span { trace_id }
    let mut scope_spans = Vec::new();
    for _ in 0..3 {
        scope_spans.push(0x12); // ScopeSpans.spans
        scope_spans.push(span.len() as u8);
        scope_spans.extend_from_slice(&span);
    }
    let resource_spans = [&[0x12, scope_spans.len() as u8][..], &scope_spans].concat();
    [&[0x0a, resource_spans.len() as u8][..], &resource_spans].concat()
}

fn inspect(name: &str, signal: Signal, bytes: Vec<u8>) {
    match Batch::from_received(signal, Bytes::from(bytes)) {
        Ok(batch) => {
            println!("{name}: valid, {} {signal} items", batch.items());
            match batch.try_split() {
                Ok(Some((a, b))) => println!("  split: {} + {} items", a.items(), b.items()),
                Ok(None) => println!("  a single unit: it cannot be split"),
                Err(e) => println!("  cannot split: {e}"),
            }
        }
        Err(e) => println!("{name}: refused: {e}"),
    }
}

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let signal = match args.next().map(|s| s.parse::<Signal>()) {
        None => Signal::Traces,
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            eprintln!("{e}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Some(path) = args.next() {
        match std::fs::read(&path) {
            Ok(bytes) => inspect(&path, signal, bytes),
            Err(e) => {
                eprintln!("cannot read {path}: {e}");
                return std::process::ExitCode::from(2);
            }
        }
        return std::process::ExitCode::SUCCESS;
    }
    let good = sample();
    inspect("sample", Signal::Traces, good.clone());
    // The same request with the first span's trace id cut to 15 bytes
    // (lengths fixed up so the protobuf stays well-formed).
    let mut broken = good;
    let at = broken.iter().position(|&b| b == 0x10).unwrap_or(0);
    broken[at] = 0x0f;
    broken.remove(at + 1);
    broken[1] -= 1;
    broken[3] -= 1;
    broken[5] -= 1;
    inspect("broken", Signal::Traces, broken);
    std::process::ExitCode::SUCCESS
}
