"""Sends traces of 1-20 spans with the official OpenTelemetry Python SDK
(OTLP/gRPC exporter) for the load balancing tests.

Usage: lb_traces.py ENDPOINT TRACES SEED. Prints one JSON line with the
number of traces and spans made, after everything was flushed.
"""

import json
import random
import sys

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


def main() -> int:
    endpoint, traces, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(seed)
    provider = TracerProvider(resource=Resource.create({"service.name": "lb-python"}))
    # A queue that holds every span: the test counts exactly, so none may be dropped.
    provider.add_span_processor(
        BatchSpanProcessor(
            OTLPSpanExporter(endpoint=endpoint, insecure=True, timeout=10),
            max_queue_size=traces * 20 + 1,
            max_export_batch_size=512,
            schedule_delay_millis=50,
        )
    )
    tracer = provider.get_tracer("lb-test")
    spans = 0
    for t in range(traces):
        n = rng.randint(1, 20)
        with tracer.start_as_current_span(f"root-{t}"):
            spans += 1
            for i in range(n - 1):
                with tracer.start_as_current_span(f"child-{i}"):
                    spans += 1
    ok = provider.force_flush(60_000)
    provider.shutdown()
    print(json.dumps({"traces": traces, "spans": spans, "flushed": ok}), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
