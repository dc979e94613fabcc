"""ASGI middleware: request metrics (outermost) and admission control (inside it).

Installed by ``casino.app.create_app``. Admission control caps the requests in
flight on this replica; beyond the cap a request gets 503 with Retry-After at
once, is counted in ``casino_admission_rejections_total`` and, because the
metrics middleware wraps it, also in ``casino_http_requests_total``.
Operational routes (/metrics, /healthz, /readyz) bypass the cap so that a
saturated replica can still be scraped and probed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from casino.api.problems import MEDIA_TYPE, problem_body
from casino.metrics import CasinoMetrics

UNMATCHED = "<unmatched>"
EXEMPT = frozenset({"/metrics", "/healthz", "/readyz"})


def route_table(routers: Iterable[Any]) -> list[tuple[re.Pattern[str], str]]:
    """(path regex, template) of every route of ``routers`` (their paths include the prefix)."""
    return [(route.path_regex, route.path) for router in routers for route in router.routes
            if hasattr(route, "path_regex")]


def route_template(table: list[tuple[re.Pattern[str], str]], path: str) -> str:
    """The route template a path maps to, without running the app (used for rejected requests)."""
    for regex, template in table:
        if regex.match(path):
            return template
    return UNMATCHED


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: CasinoMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.in_flight.dec()
            route = scope.get("route")
            path = getattr(route, "path", None) or scope.get("pitboss_route") or UNMATCHED
            self.metrics.observe_request(path, scope["method"], status, time.perf_counter() - start)


class AdmissionMiddleware:
    def __init__(self, app: ASGIApp, metrics: CasinoMetrics, max_in_flight: int, retry_after: int,
                 routes: list[tuple[re.Pattern[str], str]]) -> None:
        self.app = app
        self.metrics = metrics
        self.max_in_flight = max_in_flight
        self.retry_after = str(retry_after)
        self.routes = routes
        self.in_flight = 0
        for _, template in routes:  # every route's rejection counter exists at 0 (no rejections is data)
            if template not in EXEMPT:
                metrics.rejections.labels(template)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            route = route_template(self.routes, scope["path"])
            scope["pitboss_route"] = route
            self.metrics.rejections.labels(route).inc()
            body = problem_body(503, f"over capacity: {self.max_in_flight} requests in flight; retry later")
            await send({"type": "http.response.start", "status": 503, "headers": [
                (b"content-type", MEDIA_TYPE.encode()),
                (b"retry-after", self.retry_after.encode()),
                (b"content-length", str(len(body)).encode()),
            ]})
            await send({"type": "http.response.body", "body": body})
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
