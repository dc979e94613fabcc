"""A stand-in casino /metrics endpoint with a known, steady traffic (test helper process).

Serves the metric contract (/tmp/metrics_contract.md) through prometheus_client
on ``--addr`` (127.0.0.2, 127.0.0.3 ... stand for pods on one port):
``casino_http_requests_total`` (or ``<--counter>_total``) grows by ``--rate``
requests per second (a share ``--error-share`` with status 503), the latency
histogram observes 0.1 s (or
0.5 s for ``--slow-share`` of them). Started by tests/harness.py's
``exporter_factory``; stopped by PID. Used where a real casino process is not
needed (exact rates).
"""

from __future__ import annotations

import argparse
import threading
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
ROUTE = "/v1/games/slots/spins"


def main() -> None:
    """Parse flags, serve /metrics, tick the counters 10 times a second forever."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--addr", default="127.0.0.1", help="loopback address to serve on (127.0.0.2 ... as pods)")
    parser.add_argument("--counter", default="casino_http_requests", help="name of the request counter")
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--error-share", type=float, default=0.0)
    parser.add_argument("--slow-share", type=float, default=0.0)
    args = parser.parse_args()
    registry = CollectorRegistry()
    requests = Counter(args.counter, "requests", ["route", "method", "status"], registry=registry)
    duration = Histogram("casino_http_request_duration_seconds", "latency", ["route", "method"],
                         buckets=BUCKETS, registry=registry)
    Gauge("casino_http_requests_in_flight", "in flight", registry=registry).set(3)
    Gauge("casino_admission_capacity", "cap", registry=registry).set(64)
    ok = requests.labels(ROUTE, "POST", "200")
    bad = requests.labels(ROUTE, "POST", "503")
    hist = duration.labels(ROUTE, "POST")
    start_http_server(args.port, addr=args.addr, registry=registry)
    tick, carry, slow_carry, err_carry = 0.1, 0.0, 0.0, 0.0
    start = time.monotonic()
    n = 0
    lock = threading.Lock()
    while True:
        n += 1
        with lock:
            carry += args.rate * tick
            whole = int(carry)
            carry -= whole
            err_carry += whole * args.error_share
            errors = int(err_carry)
            err_carry -= errors
            ok.inc(whole - errors)
            if errors:
                bad.inc(errors)
            slow_carry += whole * args.slow_share
            slow = int(slow_carry)
            slow_carry -= slow
            for _ in range(slow):
                hist.observe(0.5)
            for _ in range(whole - slow):
                hist.observe(0.1)
        time.sleep(max(0.0, start + n * tick - time.monotonic()))


if __name__ == "__main__":
    main()
