"""Who may do what, and what goes wrong on purpose: RBAC, denials, injected failures, hooks, stalls.

``Access`` is a mixin of ``StrictKubernetesEmulator``: ``deny()`` (403),
``fail()`` (one-shot status codes), ``enforce_rbac()`` (ClusterRoles and
Roles per bearer token, through tests/kube/rbac.py), ``on_request()`` (a
test's function run just before a matching request is served),
``stall()`` (a request held in flight until ``Stall.release()``) and
``latency()`` (matching requests take that long, without holding up the
others, and each one's span is recorded: how many were in flight at once, in
what order one client's arrived). The HTTP entry point
(tests/kube/emulator/serve.py) applies them in that order.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

import aiohttp.web

from tests.kube.apimodel import Parsed, Rule
from tests.kube.emulator.state import State
from tests.kube.rbac import authorize


class Access(State):
    """Authorization and fault injection, applied to every resource request before it is served."""

    def deny(self, method: str, path_regex: str, *, times: int | None = None) -> None:
        """Answer 403 Forbidden to ``method`` on paths matching ``path_regex`` (an RBAC stand-in)."""
        self._rules.append(Rule(method.upper(), re.compile(path_regex), 403, "Forbidden", times))

    def fail(self, method: str, path_regex: str, code: int, *, times: int | None = 1) -> None:
        """Answer ``code`` to the next ``times`` matching requests (failure injection)."""
        reason = {409: "Conflict", 500: "InternalError", 503: "ServiceUnavailable", 404: "NotFound"}.get(code, "Error")
        self._rules.append(Rule(method.upper(), re.compile(path_regex), code, reason, times))

    def enforce_rbac(self, token: str, roles: list[dict[str, Any]]) -> None:
        """Authorize requests carrying ``Authorization: Bearer <token>`` against these ClusterRoles/Roles."""
        self._rbac[token] = [
            (r["kind"], (r.get("metadata") or {}).get("namespace"), rule) for r in roles for rule in r.get("rules", [])
        ]

    def _authorize(self, raw: aiohttp.web.BaseRequest, p: Parsed, query: dict[str, str]) -> None:
        token = raw.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if token in self._rbac:
            authorize(self._rbac[token], token, raw.method, query, p)

    def on_request(self, method: str, path_regex: str, fn: Any, *, times: int | None = 1) -> None:
        """Call ``fn()`` just before the next ``times`` matching requests are served (None: every one)."""
        self._hooks.append((method.upper(), re.compile(path_regex), fn, [times]))

    def stall(self, method: str, path_regex: str, *, skip: int = 0) -> Stall:
        """Hold the ``skip + 1``-th matching request until ``Stall.release()`` (a write in flight)."""
        stall = Stall(method.upper(), re.compile(path_regex), skip)
        self._stalls.append(stall)
        return stall

    def latency(self, method: str, path_regex: str, seconds: float) -> Latency:
        """Serve every matching request ``seconds`` late (other requests go on meanwhile); record its span."""
        latency = Latency(method.upper(), re.compile(path_regex), seconds)
        self._latencies.append(latency)
        return latency

    def clear_rules(self) -> None:
        self._rules.clear()
        self._hooks.clear()


class Stall:
    """A request held by the emulator until the test releases it (``StrictKubernetesEmulator.stall``).

    ``arrived`` counts every matching request as it arrives (before it is answered); ``entered``
    is set when the held one arrives.
    """

    def __init__(self, method: str, pattern: re.Pattern[str], skip: int) -> None:
        self.method, self.pattern, self.skip = method, pattern, skip
        self.arrived = 0
        self.entered = threading.Event()
        self.released = threading.Event()

    async def hold(self, method: str, path: str) -> None:
        if method != self.method or not self.pattern.search(path):
            return
        self.arrived += 1
        if self.arrived == self.skip + 1:
            self.entered.set()
            await asyncio.get_running_loop().run_in_executor(None, self.released.wait, 120)

    def release(self) -> None:
        self.released.set()


@dataclass(frozen=True)
class Span:
    """One delayed request: when it arrived and when its delay ended (it is served right after)."""

    method: str
    path: str
    body: Any
    start: float  # time.monotonic()
    end: float


class Latency:
    """Requests served late (``StrictKubernetesEmulator.latency``); ``spans`` and ``max_in_flight``: how they came."""

    def __init__(self, method: str, pattern: re.Pattern[str], seconds: float) -> None:
        self.method, self.pattern, self.seconds = method, pattern, seconds
        self.spans: list[Span] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def hold(self, method: str, path: str, body: Any) -> None:
        if method != self.method or not self.pattern.search(path):
            return
        start = time.monotonic()
        self.in_flight += 1  # the emulator's event loop is one thread: no lock needed
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.seconds)
        finally:
            self.in_flight -= 1
            self.spans.append(Span(method, path, body, start, time.monotonic()))
