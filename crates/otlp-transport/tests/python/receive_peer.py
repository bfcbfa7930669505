"""Sends a known set of spans, log records and metric points to an otlp-rust
receiver with the official OpenTelemetry Python SDK exporters.

Usage: receive_peer.py grpc|http ENDPOINT [gzip]

ENDPOINT is host:port for gRPC and http://host:port for HTTP. Prints one line
"exported traces=OK logs=OK metrics=OK" and exits 0 only when every export
returned success (after whatever retries the exporter chose to make).
The Rust test (tests/receive_python.rs) checks what arrived.
"""

import sys

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


def exporters(protocol, endpoint, gzip):
    if protocol == "grpc":
        import grpc
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        kw = dict(endpoint=endpoint, insecure=True, timeout=20)
        if gzip:
            kw["compression"] = grpc.Compression.Gzip
        return OTLPSpanExporter(**kw), OTLPLogExporter(**kw), OTLPMetricExporter(**kw)
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    compression = Compression.Gzip if gzip else Compression.NoCompression
    return (
        OTLPSpanExporter(endpoint=endpoint + "/v1/traces", timeout=20, compression=compression),
        OTLPLogExporter(endpoint=endpoint + "/v1/logs", timeout=20, compression=compression),
        OTLPMetricExporter(endpoint=endpoint + "/v1/metrics", timeout=20, compression=compression),
    )


def main():
    protocol, endpoint = sys.argv[1], sys.argv[2]
    gzip = len(sys.argv) > 3 and sys.argv[3] == "gzip"
    resource = Resource.create({"service.name": "python-interop-" + protocol, "interop.run": 7})
    span_exporter, log_exporter, metric_exporter = exporters(protocol, endpoint, gzip)

    # Spans: one server span with two internal children, attributes of each type.
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    tracer = tracer_provider.get_tracer("interop.tracer", "1.2.3")
    with tracer.start_as_current_span("parent", kind=trace.SpanKind.SERVER) as parent:
        parent.set_attribute("interop.index", 0)
        for i in (1, 2):
            with tracer.start_as_current_span("child-%d" % i) as child:
                child.set_attribute("interop.index", i)
                child.set_attribute("interop.ratio", i / 4)
                child.set_attribute("interop.flag", i == 2)
                child.add_event("step", {"n": i})
    traces_ok = span_exporter.export(spans.get_finished_spans()).name

    # Log records: two warnings with a body and an attribute.
    logs = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    logger = logger_provider.get_logger("interop.logger")
    for i in (0, 1):
        logger.emit(
            body="log-%d" % i,
            severity_number=SeverityNumber.WARN,
            severity_text="WARN",
            attributes={"interop.index": i},
        )
    logs_ok = log_exporter.export(logs.get_finished_logs()).name

    # Metric points: a counter with two attribute sets and one histogram point.
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter = meter_provider.get_meter("interop.meter")
    counter = meter.create_counter("interop.requests", unit="1")
    counter.add(5, {"route": "/a"})
    counter.add(7, {"route": "/b"})
    histogram = meter.create_histogram("interop.latency", unit="ms")
    for v in (1.0, 2.0, 4.5):
        histogram.record(v, {"route": "/a"})
    metrics_ok = metric_exporter.export(reader.get_metrics_data()).name

    for e in (span_exporter, log_exporter, metric_exporter):
        e.shutdown()
    print("exported traces=%s logs=%s metrics=%s" % (traces_ok, logs_ok, metrics_ok))
    ok = traces_ok == logs_ok == metrics_ok == "SUCCESS"
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
