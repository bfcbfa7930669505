"""OTLP receiver for the exporter interop test, decoding with Google's protobuf runtime.

Usage: export_peer.py EXPECTED_DIR COUNT

EXPECTED_DIR holds traces.bin, metrics.bin and logs.bin: the encoded export
requests the Rust exporters will send. The script serves OTLP/gRPC and OTLP/HTTP
(protobuf and JSON) on 127.0.0.1 ephemeral ports, prints one JSON line with the
ports, then one JSON line per received request saying whether the decoded
request equals the expected one, and exits after COUNT requests (or 60 s).
"""

import base64
import gzip
import json
import sys
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

REQUESTS = {
    "traces": (trace_service_pb2.ExportTraceServiceRequest, trace_service_pb2.ExportTraceServiceResponse),
    "metrics": (metrics_service_pb2.ExportMetricsServiceRequest, metrics_service_pb2.ExportMetricsServiceResponse),
    "logs": (logs_service_pb2.ExportLogsServiceRequest, logs_service_pb2.ExportLogsServiceResponse),
}
ID_KEYS = {"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"}

expected = {}
lock = threading.Lock()
seen = 0
done = threading.Event()
count = 0


def same(a, b):
    return a.SerializeToString(deterministic=True) == b.SerializeToString(deterministic=True)


def report(transport, signal, message, headers):
    global seen
    want = expected[signal]
    line = {
        "transport": transport,
        "signal": signal,
        # Compared as deterministic bytes: NaN != NaN in message equality.
        "equal": same(message, want),
        "user_agent": headers.get("user-agent", ""),
    }
    if not same(message, want):
        line["got"] = json_format.MessageToDict(message)
        line["want"] = json_format.MessageToDict(want)
    with lock:
        print(json.dumps(line, sort_keys=True), flush=True)
        seen += 1
        if seen >= count:
            done.set()


def hex_ids_to_base64(node):
    """OTLP/JSON writes ids as hex; the protobuf JSON mapping wants base64."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ID_KEYS and isinstance(value, str):
                node[key] = base64.b64encode(bytes.fromhex(value)).decode()
            else:
                hex_ids_to_base64(value)
    elif isinstance(node, list):
        for item in node:
            hex_ids_to_base64(item)


def grpc_servicer(signal, base):
    req_type, resp_type = REQUESTS[signal]

    class Servicer(base):
        def Export(self, request, context):
            headers = {k: v for k, v in context.invocation_metadata()}
            report("grpc", signal, request, headers)
            return resp_type()

    return Servicer()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        signal = self.path.rsplit("/", 1)[-1]
        if signal not in REQUESTS:
            self.send_error(404)
            return
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        req_type, resp_type = REQUESTS[signal]
        headers = {k.lower(): v for k, v in self.headers.items()}
        if self.headers.get("content-type", "").startswith("application/json"):
            tree = json.loads(body)
            hex_ids_to_base64(tree)
            message = json_format.ParseDict(tree, req_type())
            report("http-json", signal, message, headers)
            out, ctype = b"{}", "application/json"
        else:
            message = req_type.FromString(body)
            report("http-protobuf", signal, message, headers)
            out, ctype = resp_type().SerializeToString(), "application/x-protobuf"
        self.send_response(200)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


def main():
    global count
    directory, count = sys.argv[1], int(sys.argv[2])
    for signal, (req_type, _) in REQUESTS.items():
        with open(f"{directory}/{signal}.bin", "rb") as f:
            expected[signal] = req_type.FromString(f.read())

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(
        grpc_servicer("traces", trace_service_pb2_grpc.TraceServiceServicer), server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(
        grpc_servicer("metrics", metrics_service_pb2_grpc.MetricsServiceServicer), server)
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(
        grpc_servicer("logs", logs_service_pb2_grpc.LogsServiceServicer), server)
    grpc_port = server.add_insecure_port("127.0.0.1:0")
    server.start()

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=http.serve_forever, daemon=True).start()

    print(json.dumps({"grpc": grpc_port, "http": http.server_address[1]}), flush=True)
    finished = done.wait(timeout=60)
    http.shutdown()
    server.stop(grace=1)
    time.sleep(0.1)
    sys.exit(0 if finished else 2)


if __name__ == "__main__":
    main()
