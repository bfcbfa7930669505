//! Request compression at the levels `compression_level` accepts, on one
//! export request of 512 spans of the benchmark shape, through the
//! exporter's own compressor ([`Compression::compress`]). Before measuring,
//! it prints each level's ratio (criterion reports the speed in input
//! bytes per second).

#![allow(clippy::expect_used, clippy::print_stdout)] // Setup failures in a bench have no caller to report to; the ratios are its output.
#![allow(missing_docs)] // criterion_group! generates an undocumented `pub fn`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use otlp::transport::Compression;
use otlp_benches::shape;

/// Spans per request, the SDK's default export batch size.
const SPANS: u64 = 512;

/// The levels measured: gzip's fastest, middle (its codecs' default, 6) and
/// slowest; zstd's fastest, its default (3) and two higher ones.
const LEVELS: [(Compression, u32); 7] = [
    (Compression::Gzip, 1),
    (Compression::Gzip, 6),
    (Compression::Gzip, 9),
    (Compression::Zstd, 1),
    (Compression::Zstd, 3),
    (Compression::Zstd, 9),
    (Compression::Zstd, 19),
];

fn levels(c: &mut Criterion) {
    let body = shape::encode(&shape::trace_request(SPANS)).expect("the shape encodes");
    let mut g = c.benchmark_group("compress_request_of_512_spans");
    g.throughput(Throughput::Bytes(body.len() as u64));
    for (compression, level) in LEVELS {
        let name = format!("{}-{level}", compression.as_str());
        let out = compression
            .compress(Some(level), &body)
            .expect("a level in range compresses");
        println!(
            "{name}: {} -> {} bytes, ratio {:.1}x",
            body.len(),
            out.len(),
            body.len() as f64 / out.len() as f64
        );
        g.bench_function(&name, |b| {
            b.iter(|| {
                compression
                    .compress(Some(level), black_box(&body))
                    .map(|o| o.len())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, levels);
criterion_main!(benches);
