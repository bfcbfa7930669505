//! Criterion bench: the gRPC exporter against a plain tonic client (being written).

fn main() {}
