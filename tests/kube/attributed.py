"""The strict emulator, with every write attributed to the bearer token that sent it.

Several operator processes talking to one emulator are told apart by their
kubeconfig's token: ``AttributedEmulator.writes`` records, for each
POST/PUT/PATCH/DELETE it answered, the monotonic time it was served, the token,
the method, the path and the status code. Used by the sharding process test
(tests/controller/operator/test_shards_processes.py) and ``make bench-operator``'s
takeover case to prove which replica wrote what, and when. Additive: the
emulator itself (tests/kube/emulator/) is unchanged.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import aiohttp.web

from tests.kube.emulator import EmulatorThread, StrictKubernetesEmulator

WRITES = ("POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True)
class Write:
    """One write the emulator answered."""

    at: float  # time.monotonic() when it was answered
    token: str
    method: str
    path: str
    status: int


class AttributedEmulator(StrictKubernetesEmulator):
    """StrictKubernetesEmulator that records who wrote what (``writes``)."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.writes: list[Write] = []
        self._writes_lock = threading.Lock()

    async def __call__(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        response = await super().__call__(raw)
        if raw.method in WRITES:
            token = raw.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            with self._writes_lock:
                self.writes.append(Write(time.monotonic(), token, raw.method, raw.path, response.status))
        return response

    def writes_by(self, path_part: str) -> list[Write]:
        """The successful writes whose path contains ``path_part``, in the order they were answered."""
        with self._writes_lock:
            return [w for w in self.writes if path_part in w.path and w.status < 300]


class AttributedEmulatorThread(EmulatorThread):
    """EmulatorThread serving an AttributedEmulator."""

    emulator_class = AttributedEmulator

    def start(self) -> AttributedEmulator:
        """Start serving; the emulator, typed as the attributed one."""
        emulator = super().start()
        assert isinstance(emulator, AttributedEmulator)
        return emulator
