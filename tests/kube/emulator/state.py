"""The state the emulator's mixins share, declared once (set up by ``StrictKubernetesEmulator``).

Each seam of tests/kube/emulator/ is a mixin over ``State``; the composed
class in ``__init__.py`` fills these in ``__attrs_post_init__``. ``objects``
is kmock's versioned object store.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from typing import TYPE_CHECKING, Any

from tests.kube.apimodel import LoggedRequest, ResourceType, Rule

if TYPE_CHECKING:
    from tests.kube.emulator.access import Latency, Stall


class State:
    """Attributes only: the store, its lock and counter, the event log, rules, hooks, RBAC, schemas, stalls."""

    objects: Any
    _types: dict[tuple[str, str, str], ResourceType]
    _store_lock: threading.Lock
    _rv: int
    _events: dict[tuple[str, str], deque[tuple[int, str, dict[str, Any]]]]
    _rules: list[Rule]
    _hooks: list[tuple[str, re.Pattern[str], Any, list[int | None]]]
    _rbac: dict[str, list[tuple[str, str | None, dict[str, Any]]]]
    _schemas: dict[tuple[str, str, str], Any]
    _stalls: list[Stall]
    _latencies: list[Latency]
    log: list[LoggedRequest]
    simulate_workloads: bool
    closing: bool
    event_log_size: int
