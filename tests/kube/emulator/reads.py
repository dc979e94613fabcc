"""Reads: list with label and field selectors, and watch with resourceVersion, 410 Gone, timeouts and bookmarks.

A watch asked for ``allowWatchBookmarks`` ends (at its ``timeoutSeconds``) with
a BOOKMARK carrying the current resourceVersion, as the API server's watch
cache sends one before it closes a watch: a client resumes from it, not from
its last event's (older) resourceVersion. Each poll sends only the events
after the last one sent (the log is read from its newest end).

``Reads`` is a mixin of ``StrictKubernetesEmulator``. GET of a single object
(and its /scale) is answered in tests/kube/emulator/serve.py.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections import deque
from typing import Any

import aiohttp.web

from tests.kube.apimodel import Parsed, ResourceType
from tests.kube.emulator.state import State
from tests.kube.selectors import field_selector_matches, parse_label_selector


class Reads(State):
    """Collections: ``_list`` (under the store lock) and the streaming ``_watch``."""

    def _list(self, rtype: ResourceType, namespace: str | None, query: dict[str, str]) -> dict[str, Any]:
        label_sel = parse_label_selector(query.get("labelSelector", ""))
        field_sel = query.get("fieldSelector", "")
        items = [
            copy.deepcopy(o)
            for o in self._items(rtype, namespace)
            if label_sel((o.get("metadata") or {}).get("labels") or {}) and field_selector_matches(field_sel, o)
        ]
        return {
            "apiVersion": rtype.api_version,
            "kind": f"{rtype.kind}List",
            "metadata": {"resourceVersion": str(self._rv)},
            "items": items,
        }

    async def _watch(
        self, raw: aiohttp.web.BaseRequest, p: Parsed, query: dict[str, str]
    ) -> aiohttp.web.StreamResponse:
        label_sel = parse_label_selector(query.get("labelSelector", ""))
        field_sel = query.get("fieldSelector", "")
        timeout = float(query.get("timeoutSeconds", "60"))
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        deadline = time.monotonic() + timeout
        rtype = p.rtype

        def wanted(obj: dict[str, Any]) -> bool:
            meta = obj.get("metadata") or {}
            if p.namespace is not None and meta.get("namespace") != p.namespace:
                return False
            if p.name is not None and meta.get("name") != p.name:
                return False
            return label_sel(meta.get("labels") or {}) and field_selector_matches(field_sel, obj)

        response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(raw)
        since = query.get("resourceVersion", "")
        pending: list[dict[str, Any]] = []
        with self._store_lock:
            log = self._events.setdefault((rtype.group, rtype.plural), deque(maxlen=self.event_log_size))
            if since in ("", "0"):
                last = self._rv
                pending = [{"type": "ADDED", "object": copy.deepcopy(o)} for o in self._items(rtype, p.namespace)]
            else:
                last = int(since)
                if _expired(log, last):
                    pending = [_gone(since)]
                    last = -1
        try:
            for event in pending:
                if event["type"] == "ERROR" or wanted(event["object"]):
                    await response.write(json.dumps(event).encode() + b"\n")
            while last >= 0 and time.monotonic() < deadline and not self.closing:
                last = await self._send_fresh(response, log, last, wanted)
                await asyncio.sleep(0.02)
            if last == -2:  # the log dropped events this watch had not been sent yet: the client must relist
                await response.write(json.dumps(_gone("(dropped while watching)")).encode() + b"\n")
            if last >= 0 and bookmarks and not self.closing:
                # Before closing, as the API server's watch cache does: everything up to here was sent.
                with self._store_lock:
                    now = self._rv
                last = await self._send_fresh(response, log, last, wanted)
                mark = {"kind": rtype.kind, "apiVersion": rtype.api_version,
                        "metadata": {"resourceVersion": str(max(now, last))}}
                await response.write(json.dumps({"type": "BOOKMARK", "object": mark}).encode() + b"\n")
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return response

    async def _send_fresh(self, response: aiohttp.web.StreamResponse, log: deque[tuple[int, str, dict[str, Any]]],
                          last: int, wanted: Any) -> int:
        """Send the logged events after ``last`` that the watch wants; the last one's resourceVersion.

        -2 (nothing sent) when the log no longer holds every event after ``last``: a watch that fell
        further behind than the log keeps ends with 410, as the API server's watch cache ends it.
        """
        with self._store_lock:
            fresh = []
            for entry in reversed(log):  # newest first: stop at what was sent (a long log is not rescanned)
                if entry[0] <= last:
                    break
                fresh.append(entry)
            else:
                if _expired(log, last):
                    return -2
        for rv, kind, obj in reversed(fresh):
            last = rv
            if wanted(obj):
                await response.write(json.dumps({"type": kind, "object": obj}).encode() + b"\n")
        return last


def _expired(log: deque[tuple[int, str, dict[str, Any]]], last: int) -> bool:
    """The log (full, so it has dropped events) starts after ``last``: events after it may be lost."""
    return bool(log) and log[0][0] > last + 1 and len(log) == log.maxlen


def _gone(since: str) -> dict[str, Any]:
    return {"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "code": 410, "reason": "Expired",
                                        "status": "Failure", "message": f"too old resource version: {since}"}}
