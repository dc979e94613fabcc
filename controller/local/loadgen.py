"""A bounded load generator: replays a demand trace against the local replicas over real HTTP.

Called by the local run (``controller.local.run``) beside the control loop. It
runs its own asyncio event loop in one background thread. Every ``tick`` it
reads the target rate (requests/s at this real instant, from the compressed
trace) and sends that many arrivals, evenly spaced (a credit accumulator, so a
rate of 7.5/s sends 15 requests every 2 s), round-robin over the replicas that
are ready *right now* (``targets()``). Each request is a real slots spin of one
of a few demo players (``SpinWorkload``). What happened to each arrival:

* served: 2xx;
* rejected: 503 from the replica's admission control (unserved);
* failed: any other status, a timeout or a connection error (unserved);
* unrouted: no replica was ready (unserved);
* dropped: more than ``max_outstanding`` requests already in flight on the
  client side (unserved; protects the machine, never expected in a demo).

It is bounded both in requests (``max_requests`` arrivals, then it stops) and
in time (``max_seconds``). ``snapshot()`` returns cumulative counters;
callers take differences per cycle.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import httpx

from controller.errors import InputError, RetryableError


@dataclass(frozen=True)
class Tally:
    """Cumulative counts of arrivals by outcome."""

    offered: int = 0  # arrivals the trace asked for
    sent: int = 0
    served: int = 0
    rejected: int = 0
    failed: int = 0
    unrouted: int = 0
    dropped: int = 0
    latency_sum: float = 0.0  # seconds, over served requests

    @property
    def unserved(self) -> int:
        return self.rejected + self.failed + self.unrouted + self.dropped

    def __sub__(self, other: Tally) -> Tally:
        return Tally(**{f.name: getattr(self, f.name) - getattr(other, f.name) for f in fields(self)})


class SpinWorkload:
    """Slots spins of ``players`` demo players (registered, logged in and funded by ``setup``)."""

    def __init__(self, players: int = 6, bet: int = 1, deposit: int = 10_000_000) -> None:
        if players < 1:
            raise InputError(f"must be >= 1, got {players}", field="players")
        self.players = players
        self.bet = bet
        self.deposit = deposit
        self.headers: list[dict[str, str]] = []
        self._run = secrets.token_hex(3)
        self._seq = itertools.count()

    def setup(self, base_url: str, timeout: float = 30.0) -> None:
        """Register, log in and fund the players through one replica (a few scrypt hashes: ~1 s)."""
        password = "pitboss-demo-password"
        with httpx.Client(base_url=base_url, timeout=timeout) as client:
            for i in range(self.players):
                name = f"demo{self._run}p{i}"
                body = {"username": name, "password": password}
                try:
                    client.post("/v1/players", json=body).raise_for_status()
                    token = client.post("/v1/sessions", json=body).raise_for_status().json()["token"]
                    auth = {"Authorization": f"Bearer {token}"}
                    client.post("/v1/wallet/deposits", json={"amount": self.deposit},
                                headers={**auth, "Idempotency-Key": f"fund-{name}"}).raise_for_status()
                except httpx.HTTPError as exc:
                    raise RetryableError(f"load generator setup via {base_url}: {exc}") from exc
                self.headers.append(auth)

    def request(self) -> tuple[str, str, dict[str, Any], dict[str, str]]:
        """(method, path, json body, headers) of the next arrival."""
        if not self.headers:
            raise RuntimeError("SpinWorkload.setup() must run before requests")
        n = next(self._seq)
        auth = self.headers[n % len(self.headers)]
        return "POST", "/v1/games/slots/spins", {"bet": self.bet}, {**auth, "Idempotency-Key": f"s{self._run}-{n}"}


class LoadGenerator:
    """Open-loop arrivals at ``rate(elapsed)`` requests/s, round-robin over ``targets()``."""

    def __init__(
        self,
        rate: Callable[[float], float],
        targets: Callable[[], Sequence[str]],
        workload: SpinWorkload,
        *,
        max_requests: int,
        max_seconds: float,
        max_outstanding: int = 256,
        tick: float = 0.02,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_requests < 1:
            raise InputError(f"must be >= 1, got {max_requests}", field="maxRequests")
        if max_seconds <= 0:
            raise InputError(f"must be positive, got {max_seconds}", field="maxSeconds")
        self.rate = rate
        self.targets = targets
        self.workload = workload
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.max_outstanding = max_outstanding
        self.tick = tick
        self.timeout = timeout
        self.clock = clock
        self._counts: dict[str, float] = {f.name: 0 for f in fields(Tally)}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started_at: float | None = None
        self.error: BaseException | None = None
        self.exhausted = False  # stopped by max_requests or max_seconds

    def snapshot(self) -> Tally:
        """Cumulative counts so far."""
        with self._lock:
            c = dict(self._counts)
        return Tally(**{k: (v if k == "latency_sum" else int(v)) for k, v in c.items()})  # type: ignore[arg-type]

    def _add(self, **counts: float) -> None:
        with self._lock:
            for k, v in counts.items():
                self._counts[k] += v

    def start(self, at: float | None = None) -> None:
        """Start sending in a background thread; ``at`` (clock seconds) is elapsed 0 of ``rate``."""
        self.started_at = self.clock() if at is None else at
        self._thread = threading.Thread(target=self._main, name="pitboss-loadgen", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop sending and wait for the requests in flight (bounded by ``timeout``)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _main(self) -> None:
        try:
            asyncio.run(self._drive())
        except BaseException as exc:  # surfaced to the run through .error
            self.error = exc

    async def _drive(self) -> None:
        assert self.started_at is not None
        limits = httpx.Limits(max_connections=self.max_outstanding, max_keepalive_connections=64)
        outstanding: set[asyncio.Task[None]] = set()
        rr = itertools.count()
        credit = 0.0
        async with httpx.AsyncClient(timeout=self.timeout, limits=limits) as client:
            last = self.clock()
            while not self._stop.is_set():
                now = self.clock()
                elapsed = now - self.started_at
                if elapsed >= self.max_seconds or self._counts["offered"] >= self.max_requests:
                    self.exhausted = True
                    break
                credit += max(0.0, float(self.rate(elapsed))) * (now - last)
                last = now
                urls = list(self.targets())
                while credit >= 1.0 and self._counts["offered"] < self.max_requests:
                    credit -= 1.0
                    if not urls:
                        self._add(offered=1, unrouted=1)
                    elif len(outstanding) >= self.max_outstanding:
                        self._add(offered=1, dropped=1)
                    else:
                        self._add(offered=1, sent=1)
                        task = asyncio.create_task(self._one(client, urls[next(rr) % len(urls)]))
                        outstanding.add(task)
                        task.add_done_callback(outstanding.discard)
                await asyncio.sleep(self.tick)
            if outstanding:
                await asyncio.wait(outstanding, timeout=self.timeout + 1)

    async def _one(self, client: httpx.AsyncClient, base: str) -> None:
        method, path, body, headers = self.workload.request()
        began = time.perf_counter()
        try:
            response = await client.request(method, base + path, json=body, headers=headers)
        except httpx.HTTPError:
            self._add(failed=1)
            return
        if 200 <= response.status_code < 300:
            self._add(served=1, latency_sum=time.perf_counter() - began)
        elif response.status_code == 503:
            self._add(rejected=1)
        else:
            self._add(failed=1)
