"""Sends OTLP profiles requests built with the official Python protobuf
bindings (opentelemetry-proto, profiles v1development) to an agent: one over
gRPC with grpcio's generated ProfilesService stub, one over OTLP/HTTP
(POST /v1development/profiles, protobuf body) with urllib.

Usage: profiles_peer.py GRPC_HOST:PORT HTTP_HOST:PORT

Prints, per request, one line "sent <transport> <items> <hex of the encoded
request>" and exits 0 only when both exports succeeded with no partial
success. The Rust test (crates/otlp-client/tests/profiles.rs) checks that the
upstream received exactly these bytes.
"""

import sys
import urllib.request

import grpc
from opentelemetry.proto.collector.profiles.v1development import (
    profiles_service_pb2 as service,
    profiles_service_pb2_grpc as service_grpc,
)
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.profiles.v1development import profiles_pb2 as profiles
from opentelemetry.proto.resource.v1 import resource_pb2


def request(tag, counts):
    dictionary = profiles.ProfilesDictionary(
        string_table=["", "samples", "count", tag, "peer.py"],
        function_table=[
            profiles.Function(),
            profiles.Function(name_strindex=3, filename_strindex=4, start_line=9),
        ],
        location_table=[
            profiles.Location(),
            profiles.Location(address=0x2000, lines=[profiles.Line(function_index=1, line=21)]),
        ],
        stack_table=[profiles.Stack(), profiles.Stack(location_indices=[1])],
    )
    req = service.ExportProfilesServiceRequest(dictionary=dictionary)
    n = 0
    for r, count in enumerate(counts):
        rp = req.resource_profiles.add()
        rp.resource.CopyFrom(
            resource_pb2.Resource(
                attributes=[
                    common_pb2.KeyValue(
                        key="service.name",
                        value=common_pb2.AnyValue(string_value=f"{tag}-{r}"),
                    )
                ]
            )
        )
        sp = rp.scope_profiles.add()
        sp.scope.name = "python-peer"
        for _ in range(count):
            n += 1
            sp.profiles.add(
                sample_type=profiles.ValueType(type_strindex=1, unit_strindex=2),
                samples=[profiles.Sample(stack_index=1, values=[n * 7])],
                time_unix_nano=1_700_000_000_000_000_000 + n,
                duration_nano=10_000_000,
                profile_id=bytes([0x40 + n]) * 16,
            )
    return req, n


def main():
    grpc_addr, http_addr = sys.argv[1], sys.argv[2]

    req, n = request("python-grpc", [2, 1])
    with grpc.insecure_channel(grpc_addr) as channel:
        resp = service_grpc.ProfilesServiceStub(channel).Export(req, timeout=20)
    if resp.HasField("partial_success"):
        sys.exit(f"grpc export answered a partial success: {resp}")
    print("sent grpc", n, req.SerializeToString().hex())

    req, n = request("python-http", [1, 2])
    body = req.SerializeToString()
    http = urllib.request.Request(
        f"http://{http_addr}/v1development/profiles",
        data=body,
        headers={"Content-Type": "application/x-protobuf"},
        method="POST",
    )
    with urllib.request.urlopen(http, timeout=20) as answer:
        if answer.status != 200:
            sys.exit(f"http export answered {answer.status}")
        decoded = service.ExportProfilesServiceResponse.FromString(answer.read())
        if decoded.HasField("partial_success"):
            sys.exit(f"http export answered a partial success: {decoded}")
    print("sent http", n, body.hex())


if __name__ == "__main__":
    main()
