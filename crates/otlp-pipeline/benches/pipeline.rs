//! Criterion benchmarks of the producer path and pipeline throughput.

use criterion::{Criterion, criterion_group, criterion_main};

fn group_compare(c: &mut Criterion) {
    c.bench_function("group_eq_bytes", |b| {
        let a = otlp_pipeline::Group::resource(b"abc", "s");
        let z = otlp_pipeline::Group::resource(b"abc", "s");
        b.iter(|| std::hint::black_box(&a) == std::hint::black_box(&z))
    });
}

criterion_group!(benches, group_compare);
criterion_main!(benches);
