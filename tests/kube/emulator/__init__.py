"""A strict Kubernetes API emulator for tests: kmock's KubernetesEmulator, made strict.

kmock (https://github.com/nolar/kmock) gives the HTTP server, the Kubernetes
error payloads, discovery and the versioned object store (``.objects`` with
every version kept, which tests use to prove what was written). Its own
request handling is lax where our operator's correctness lives, so this
subclass takes over every request for a resource path and implements:

* ``metadata.resourceVersion`` (a global counter), ``uid``, ``generation``
  (bumped on spec changes only) and ``creationTimestamp``;
* 409 Conflict on a stale ``resourceVersion`` (in a PATCH body or a PUT),
  409 AlreadyExists on a duplicate create;
* PUT (replace) on objects, /status and /scale (kmock answers PUT with 404);
* a real ``autoscaling/v1`` Scale on ``deployments|statefulsets/scale`` (GET,
  PATCH and PUT, which update the workload's ``spec.replicas``), and on a custom
  resource's /scale through the paths its CRD names (``specReplicasPath``,
  ``statusReplicasPath``, ``labelSelectorPath``; e.g. CloudNativePG's Cluster);
* discovery that lists each resource's subresources (``clusters/scale``), so
  clients can resolve a kind to its plural and /scale;
* Pods and ``discovery.k8s.io/v1`` EndpointSlices (served like the rest:
  label selectors, RBAC, /status for Pods);
* /status isolated from spec both ways: writes to the object ignore status,
  writes to /status change nothing but status;
* label selectors (``=``, ``==``, ``!=``, ``in``, ``notin``, ``key``, ``!key``)
  and ``metadata.name``/``metadata.namespace`` field selectors on list/watch;
* merge patch (RFC 7386, ``null`` deletes), JSON patch, and strategic merge
  patch for built-in kinds (approximated by a merge patch); 415 for strategic
  merge on custom resources, like the real server;
* watch with ``resourceVersion`` (events after it, 410 Gone when too old) and
  ``timeoutSeconds`` honoured;
* custom resources validated against their CRD's openAPIV3Schema on every
  create and write, /status included (422 Invalid naming the field);
* cluster-scoped namespaces (``GET /api/v1/namespaces`` works);
* 404 for resources that are not registered, 403 for verbs denied by
  ``deny()``, and one-shot failure injection (``fail()``);
* RBAC authorization (``enforce_rbac``): requests bearing a given token are
  allowed only what the given ClusterRoles and (namespaced) Roles grant,
  resourceNames included, so the operator's manifests are tested for real;
* ``stall()``: hold one matching request in flight until the test releases
  it (a write that is on the wire when something else happens);
* optionally, a stand-in workload controller: when a Deployment's or
  StatefulSet's spec.replicas changes, its status follows at once (every
  pod ready), so readiness can be read back (a custom resource gets only its
  statusReplicasPath; an object annotated ``UNMANAGED`` is left alone);
* request hooks (``on_request``): run a test's function just before a matching
  request is served, e.g. a human's ``kubectl scale`` between the operator's
  read and its write (``write_scale``), so the write meets a real 409;
* latency (``latency``): matching requests served late without holding up
  the others, each one's span recorded (the operator's concurrent writes).

It runs its own event loop in a background thread (``EmulatorThread``) so
the synchronous official ``kubernetes`` client can call it over HTTP from the
test thread. Store mutations happen under a threading lock without awaits.

One module per seam, each a mixin of ``StrictKubernetesEmulator`` (this
module composes them; import everything from ``tests.kube.emulator``):

* ``store``: resource types, the object store, stamping, event log, schema
  validation, the stand-in workload controller, Scale objects;
* ``serve``: the HTTP entry point, path resolution, error payloads, the
  request log, verb dispatch (GET and DELETE of one object);
* ``reads``: list and watch;
* ``writes``: create, PUT and the patch types, /status and /scale;
* ``access``: RBAC, ``deny``, ``fail``, ``on_request`` hooks, ``stall``, ``latency``.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections import deque
from typing import Any

from kmock import KubernetesEmulator, Server

from tests.kube.apimodel import BUILTINS, LoggedRequest, ResourceType, Rule
from tests.kube.emulator.access import Access, Latency, Stall
from tests.kube.emulator.reads import Reads
from tests.kube.emulator.serve import Serve
from tests.kube.emulator.store import UNMANAGED, Store
from tests.kube.emulator.writes import Writes


class StrictKubernetesEmulator(Access, Serve, Reads, Writes, Store, KubernetesEmulator):
    """kmock's emulator with the strict semantics listed in the module docstring."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        self._store_lock = threading.Lock()
        self._rv = 0
        self._events: dict[tuple[str, str], deque[tuple[int, str, dict[str, Any]]]] = {}
        self._rules: list[Rule] = []
        self._hooks: list[tuple[str, re.Pattern[str], Any, list[int | None]]] = []
        self._rbac: dict[str, list[tuple[str, str | None, dict[str, Any]]]] = {}
        self._schemas: dict[tuple[str, str, str], Any] = {}
        self.log: list[LoggedRequest] = []
        self.simulate_workloads = True
        self.closing = False  # set on shutdown: open watches end at once
        self.event_log_size = 10_000
        self._stalls: list[Stall] = []
        self._latencies: list[Latency] = []
        for rtype in BUILTINS:
            self.register(rtype)


class EmulatorThread:
    """Serve a StrictKubernetesEmulator on loopback from its own event loop in a daemon thread.

    ``emulator_class`` is what is served: a subclass of the emulator (tests/kube/attributed.py)
    sets it and inherits the rest.
    """

    emulator_class: type[StrictKubernetesEmulator] = StrictKubernetesEmulator

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self.emulator: StrictKubernetesEmulator | None = None
        self.url = ""
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="kube-emulator", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as exc:  # surfaced to start()
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with self.emulator_class() as emulator, Server(emulator) as server:
            self.emulator = emulator
            self.url = str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()

    def start(self) -> StrictKubernetesEmulator:
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None or self.emulator is None:
            raise RuntimeError(f"emulator did not start: {self._error!r}")
        return self.emulator

    def stop(self) -> None:
        if self.emulator is not None:
            self.emulator.closing = True
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


__all__ = ["UNMANAGED", "EmulatorThread", "Latency", "Stall", "StrictKubernetesEmulator"]
