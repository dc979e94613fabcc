"""A watch-fed cache of one resource: client-go's informer (reflector + store), over the official client.

``Informer`` LISTs the resource once, then WATCHes it from the list's
resourceVersion (``allowWatchBookmarks``: a quiet resource's bookmarks keep
its resourceVersion current, so a resumed watch is not too old), keeping one
projection per object (``project(raw)``, e.g. a ``PolicyObject`` or a
workload's ``ScaleState``) under (namespace, name). A watch that ends at its
``timeoutSeconds`` resumes from the last resourceVersion seen; 410 Gone (an
ERROR event or an HTTP 410: the resourceVersion is too old) or a broken
stream relists and watches again, with a growing back-off while the API
cannot be reached.

``synced`` is true from the first complete list until the stream breaks, and
again after the relist. In between the cache keeps the last list's and
events' snapshot, as client-go's store does through a relist, and
``staleness()`` says how long ago the stream broke: ``serving(max_stale)``
lets a reader use that snapshot for at most ``max_stale`` seconds (what
``controller.operator.cached`` does, two sync periods by default, because
10,000 policies read from the API at once are a cycle of GETs), after which,
or before the first list, the reader must not trust the cache and reads the
API directly. Writes stay safe on a stale snapshot: each carries the
resourceVersion it read, and a stale one meets a 409. ``replace_if`` is the
writer's half of optimistic concurrency: after its own successful write the
operator stores the object the API answered, but only if the cache still
holds the version it wrote against (a newer watch event is never overwritten
by an older answer). ``on_change(type, raw)`` is called after each event has
been applied (``LIST`` after the first list, ``RELIST`` after the others):
the operator's loop wakes on spec changes through it.

Built and started by ``controller.operator.app.build_operator`` (``cache=True``,
what ``pitboss operator run`` uses); read by ``controller.operator.cached``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from controller.errors import RetryableError
from controller.targets.kubernetes import api_error, call_api

log = logging.getLogger(__name__)

T = TypeVar("T")
Key = tuple[str, str]  # (namespace, name)
GONE = 410


class Gone(Exception):
    """The watch's resourceVersion is too old (410 Gone): the informer relists."""


class _RawWatch(watch.Watch):
    """The client's Watch without model deserialization: events carry the raw dicts only.

    A typed list function (``list_namespaced_deployment``) would make every event a V1Deployment model,
    the costliest part of reading a watch; the informer projects the raw object itself.
    """

    def get_return_type(self, func: Any) -> Any:
        return None


def object_key(raw: dict[str, Any]) -> Key:
    meta = raw.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def resource_version(raw: dict[str, Any]) -> str:
    return str((raw.get("metadata") or {}).get("resourceVersion") or "")


class Informer(Generic[T]):
    """List, then watch from the list's resourceVersion; relist on 410 Gone or a broken stream.

    ``list_fn(*args, **kwargs)`` is an official-client list call (a namespaced or cluster-wide
    list of the resource); ``project(raw)`` turns one object into what the cache keeps and
    ``version(item)`` reads back its resourceVersion (for ``replace_if``).
    """

    def __init__(self, name: str, list_fn: Callable[..., Any], args: tuple[Any, ...],
                 project: Callable[[dict[str, Any]], T], version: Callable[[T], str], *,
                 timeout_seconds: int = 300, on_change: Callable[[str, dict[str, Any]], None] | None = None,
                 backoff_cap: float = 30.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.list_fn = list_fn
        self.args = args
        self.project = project
        self.version = version
        self.timeout_seconds = timeout_seconds
        self.on_change = on_change
        self.backoff_cap = backoff_cap
        self.resource_version = ""  # the last list's, event's or bookmark's
        self.lists = 0  # complete lists so far (the first one included)
        self.relists = 0  # lists after a 410 Gone or a broken stream
        self.bookmarks = 0
        self.last_error: str | None = None
        self.monotonic = monotonic
        self._broken_at: float | None = None  # when the stream broke after a list (None: synced, or never listed)
        self._items: dict[Key, T] = {}
        self._lock = threading.Lock()
        self._synced = threading.Event()
        self._stop = threading.Event()
        self._watch: watch.Watch | None = None
        self._thread: threading.Thread | None = None

    # ---- reading ----------------------------------------------------------------------------
    @property
    def synced(self) -> bool:
        """True once a list completed and the watch after it has not broken since."""
        return self._synced.is_set()

    def staleness(self) -> float | None:
        """0.0 while synced; seconds since the stream broke while the last snapshot is kept; None before a list."""
        if self._synced.is_set():
            return 0.0
        broken = self._broken_at
        return None if broken is None else max(0.0, self.monotonic() - broken)

    def serving(self, max_stale: float) -> bool:
        """May a reader use the cache: synced, or its snapshot broke off at most ``max_stale`` seconds ago."""
        age = self.staleness()
        return age is not None and age <= max_stale

    def wait_synced(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for ``synced``."""
        return self._synced.wait(timeout)

    def get(self, key: Key) -> T | None:
        """The cached projection of (namespace, name), or None."""
        with self._lock:
            return self._items.get(key)

    def items(self) -> list[T]:
        """Every cached projection, ordered by (namespace, name) as a LIST answers."""
        with self._lock:
            return [self._items[k] for k in sorted(self._items)]

    def replace_if(self, key: Key, expected_version: str, item: T) -> bool:
        """Store ``item`` (what our own write returned) if the cache still holds ``expected_version``."""
        with self._lock:
            current = self._items.get(key)
            if current is None or self.version(current) != expected_version:
                return False  # the watch moved on (to our write or past it): keep what it said
            self._items[key] = item
            return True

    # ---- running ----------------------------------------------------------------------------
    def start(self) -> Informer[T]:
        """List and watch on a daemon thread until ``stop()``."""
        self._thread = threading.Thread(target=self._run, name=f"informer-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """End the watch (its socket is shut down) and the thread."""
        self._stop.set()
        w = self._watch
        if w is not None:
            w.stop()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        pause = 0.5
        while not self._stop.is_set():
            try:
                self.relist()
                pause = 0.5
                while not self._stop.is_set():
                    self.watch_once()
            except Gone as exc:
                self._broke()
                self.relists += 1
                log.info("informer %s: %s; relisting", self.name, exc)
            except Exception as exc:  # a broken stream or an unreachable API: relist after a pause
                self._broke()
                if self._stop.is_set():
                    return
                self.relists += 1
                self.last_error = str(exc)
                log.warning("informer %s: %s; relisting in %.1fs (reads fall back to the API meanwhile)",
                            self.name, exc, pause)
                self._stop.wait(pause)
                pause = min(pause * 2, self.backoff_cap)

    def _broke(self) -> None:
        """The stream broke: not synced; the snapshot's age counts from the first break since the last list."""
        if self._broken_at is None and self.lists:
            self._broken_at = self.monotonic()  # set before synced clears: a reader sees one or the other
        self._synced.clear()

    def relist(self) -> None:
        """LIST the resource, replace the cache with it, remember its resourceVersion."""
        resp = call_api(self.list_fn, f"list {self.name}", *self.args, _preload_content=False)
        status = int(getattr(resp, "status", 200) or 200)
        if not 200 <= status < 300:
            raise api_error(ApiException(http_resp=resp), f"list {self.name}")
        body = json.loads(resp.data or b"{}")
        items = {object_key(raw): self.project(raw) for raw in body.get("items") or []}
        with self._lock:
            self._items = items
            self.resource_version = resource_version(body)
        self.lists += 1
        self.last_error = None
        self._synced.set()
        self._broken_at = None  # cleared after synced is set: a reader sees one or the other
        if self.on_change is not None:
            self.on_change("RELIST" if self.lists > 1 else "LIST", {})

    def watch_once(self) -> None:
        """One watch from ``resource_version`` until its timeout; Gone on 410, other errors propagate."""
        w = _RawWatch()
        self._watch = w
        try:
            stream = w.stream(self.list_fn, *self.args, resource_version=self.resource_version,
                              allow_watch_bookmarks=True, timeout_seconds=self.timeout_seconds,
                              _request_timeout=(10, self.timeout_seconds + 30))
            for event in stream:
                if self._stop.is_set():
                    return
                self._apply(event)
        except ApiException as exc:
            if exc.status == GONE:
                raise Gone(f"watch from resourceVersion {self.resource_version}: 410 Gone") from exc
            raise api_error(exc, f"watch {self.name}") from exc
        finally:
            w.stop()
            self._watch = None

    def _apply(self, event: dict[str, Any]) -> None:
        kind = str(event.get("type") or "")
        raw = event.get("raw_object") or event.get("object") or {}
        if not isinstance(raw, dict):
            raise RetryableError(f"watch {self.name}: unexpected event {kind}")
        version = resource_version(raw)
        if kind == "BOOKMARK":  # no object, only "everything up to here was sent"
            self.bookmarks += 1
            if version:
                self.resource_version = version
            return
        key = object_key(raw)
        with self._lock:
            if kind == "DELETED":
                self._items.pop(key, None)
            elif kind in ("ADDED", "MODIFIED"):
                self._items[key] = self.project(raw)
            if version:
                self.resource_version = version
        if self.on_change is not None:
            try:
                self.on_change(kind, raw)
            except Exception:  # a wake-up must never break the cache
                log.exception("informer %s: on_change failed", self.name)


__all__ = ["Gone", "Informer", "Key", "object_key", "resource_version"]
