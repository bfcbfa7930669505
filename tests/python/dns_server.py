"""A DNS server on 127.0.0.1 for the load balancing tests (dnslib).

Answers A queries for every name with the addresses listed in FILE (one a
line), read again for each query so a test changes the answer by rewriting
the file; TTL 0. Prints the UDP port it bound, then serves until killed or
until --deadline seconds have passed.
"""

import argparse
import socket
import sys
import time

from dnslib import QTYPE, RR, A, DNSRecord


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("records")
    parser.add_argument("--deadline", type=float, default=120.0)
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.5)
    print(sock.getsockname()[1], flush=True)
    end = time.monotonic() + args.deadline
    while time.monotonic() < end:
        try:
            data, peer = sock.recvfrom(4096)
        except socket.timeout:
            continue
        try:
            request = DNSRecord.parse(data)
        except Exception:  # a malformed query gets no answer
            continue
        reply = request.reply()
        if request.q.qtype in (QTYPE.A, QTYPE.ANY):
            with open(args.records, encoding="utf-8") as f:
                for line in f:
                    ip = line.strip()
                    if ip:
                        reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(ip), ttl=0))
        sock.sendto(reply.pack(), peer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
