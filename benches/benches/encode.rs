//! The encoding floor: building opentelemetry-proto structs of the benchmark
//! span shape and prost-encoding them, per span, as an exporter must at least
//! do; beside it, the same span written by `otlp::wire` from borrowed data
//! (the same bytes, without the prost structs).

#![allow(clippy::expect_used)] // Setup failures in a bench have no caller to report to: panic with the reason.
#![allow(missing_docs)] // criterion_group! generates an undocumented `pub fn`.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    trace::v1::{ResourceSpans, ScopeSpans},
};
use otlp_benches::shape;
use prost::Message as _;

/// Spans per request, the SDK's default export batch size.
const SPANS: u64 = 512;

fn build_and_encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode_span_shape");
    g.throughput(Throughput::Elements(1));
    let mut buf = Vec::with_capacity(1024);
    g.bench_function("build_and_encode_one_span", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            let mut trace_id = [0u8; 16];
            trace_id[..8].copy_from_slice(&i.to_le_bytes());
            let span = shape::proto_span(trace_id, i.to_le_bytes(), black_box(i));
            buf.clear();
            span.encode(&mut buf).expect("a Vec grows as needed");
            black_box(buf.len())
        })
    });
    let direct = shape::DirectShape::new();
    let mut wire_buf = BytesMut::with_capacity(1024);
    g.bench_function("wire_encode_one_span", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            let mut trace_id = [0u8; 16];
            trace_id[..8].copy_from_slice(&i.to_le_bytes());
            direct.with_span(&trace_id, &i.to_le_bytes(), black_box(i), |span| {
                wire_buf.clear();
                span.encode(&mut wire_buf);
                black_box(wire_buf.len())
            })
        })
    });
    g.throughput(Throughput::Elements(SPANS));
    let template = shape::trace_request(0);
    g.bench_function("build_and_encode_request_of_512_spans", |b| {
        b.iter(|| {
            let spans = (0..SPANS)
                .map(|i| {
                    let mut trace_id = [0u8; 16];
                    trace_id[..8].copy_from_slice(&i.to_le_bytes());
                    shape::proto_span(trace_id, i.to_le_bytes(), i)
                })
                .collect();
            let req = ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    scope_spans: vec![ScopeSpans {
                        spans,
                        ..template.resource_spans[0].scope_spans[0].clone()
                    }],
                    ..template.resource_spans[0].clone()
                }],
            };
            black_box(req.encode_to_vec())
        })
    });
    let req = shape::trace_request(SPANS);
    g.bench_function("encode_prebuilt_request_of_512_spans", |b| {
        b.iter(|| black_box(black_box(&req).encode_to_vec()))
    });
    g.finish();
}

criterion_group!(benches, build_and_encode);
criterion_main!(benches);
