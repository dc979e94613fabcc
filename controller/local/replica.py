"""One local casino replica: the reference casino API under uvicorn, with a per-request service time.

Started as a subprocess by ``controller.targets.local.LocalProcessTarget``
(``python -m controller.local.replica --port ... --service-time-ms ...``). It
builds exactly the app ``pitboss casino serve`` builds (``casino.app.create_app``
on the same settings) and adds one thing: an ASGI middleware *inside* the
admission gate that holds every business request for ``service_time_ms`` of
simulated downstream latency (awaited, not burnt on the CPU). With the
admission cap ``max_in_flight`` that makes a replica's capacity a real,
machine-independent number: ``max_in_flight / service_time`` requests/s,
beyond which it answers 503. On a shared 2-core machine a CPU-bound request
cost would make every replica compete for the same cores, so adding replicas
would not add capacity; an awaited cost does. ``/metrics``, ``/healthz`` and
``/readyz`` are not delayed (they bypass admission too).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

EXEMPT = frozenset({"/metrics", "/healthz", "/readyz"})


class ServiceTimeMiddleware:
    """Await ``seconds`` before each business request (innermost: the admission slot is held meanwhile)."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in EXEMPT and self.seconds > 0:
            await asyncio.sleep(self.seconds)
        await self.app(scope, receive, send)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m controller.local.replica", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--max-in-flight", type=int, required=True)
    parser.add_argument("--service-time-ms", type=float, default=0.0)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    if args.service_time_ms < 0:
        parser.error(f"--service-time-ms: must be >= 0, got {args.service_time_ms}")
    return args


def main(argv: list[str] | None = None) -> None:
    """Serve one replica until SIGTERM/SIGINT (uvicorn shuts down gracefully)."""
    import uvicorn

    from casino.app import create_app
    from casino.config import CasinoSettings

    args = parse_args(sys.argv[1:] if argv is None else argv)
    settings = CasinoSettings.from_env(database_url=args.database_url, max_in_flight=args.max_in_flight)
    app = create_app(settings)
    # user_middleware[0] is the outermost; appending puts this inside the admission gate.
    app.user_middleware.append(Middleware(ServiceTimeMiddleware, seconds=args.service_time_ms / 1000.0))
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False,
                timeout_graceful_shutdown=5)


if __name__ == "__main__":
    main()
