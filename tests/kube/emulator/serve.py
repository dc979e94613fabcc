"""The HTTP entry point: path resolution, rule and hook order, error payloads, the request log, verb dispatch.

``Serve`` is a mixin of ``StrictKubernetesEmulator``: ``__call__`` takes every
request for a resource path (anything else, discovery and /version, goes to
kmock's scaffold), authorizes it (tests/kube/emulator/access.py), and hands
collections to ``Reads._list``/``Writes._create``, objects to GET/DELETE here
and PATCH/PUT to ``Writes._write``, watches to ``Reads._watch``.
"""

from __future__ import annotations

import copy
import json
import re
from collections import deque
from typing import Any

import aiohttp.web

from tests.kube.apimodel import ApiError, LoggedRequest, Parsed
from tests.kube.emulator.state import State


class Serve(State):
    """Resolve, authorize, dispatch and answer; every answer is logged (``requests()``)."""

    @staticmethod
    def _parse_path(path: str) -> tuple[str, str, list[str]] | None:
        parts = [p for p in path.split("/") if p]
        if len(parts) >= 3 and parts[0] == "api":
            return "", parts[1], parts[2:]
        if len(parts) >= 4 and parts[0] == "apis":
            return parts[1], parts[2], parts[3:]
        return None

    def _resolve(self, path: str) -> Parsed | None:
        parsed = self._parse_path(path)
        if parsed is None:
            return None
        group, version, rest = parsed
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        rtype = self._type(group, version, rest[0])
        if rtype.namespaced is False and namespace is not None:
            raise ApiError(404, "NotFound", f"{rtype.plural} is cluster-scoped")
        name = rest[1] if len(rest) > 1 else None
        sub = "/".join(rest[2:]) or None
        if sub is not None and not ((sub == "status" and rtype.status) or (sub == "scale" and rtype.scale)):
            raise ApiError(404, "NotFound", f"the server could not find the requested resource ({sub})")
        return Parsed(rtype, namespace, name, sub)

    # ---- HTTP entry point ----------------------------------------------
    async def __call__(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        body = await raw.read()
        try:
            parsed = self._resolve(raw.path)
        except ApiError as exc:
            return self._error(raw, exc)
        if parsed is None:
            if len(raw.path) > 1 and raw.path.endswith("/"):  # /apis/apps/v1/ is /apis/apps/v1, as for the server
                raw = raw.clone(rel_url=raw.rel_url.with_path(raw.path.rstrip("/")))
            return await super().__call__(raw)  # discovery, /version: kmock's scaffold
        query = dict(raw.query)
        try:
            data = json.loads(body) if body else None
        except ValueError:
            return self._error(raw, ApiError(400, "BadRequest", "request body is not JSON"))
        try:
            self._authorize(raw, parsed, query)
            for rule in self._rules:
                if rule.method == raw.method and rule.pattern.search(raw.path) and rule.times != 0:
                    if rule.times is not None:
                        rule.times -= 1
                    raise ApiError(rule.code, rule.reason, f"{rule.reason.lower()}: {raw.method} {raw.path}")
            for method, pattern, fn, left in list(self._hooks):
                if method == raw.method and pattern.search(raw.path) and left[0] != 0:
                    if left[0] is not None:
                        left[0] -= 1
                    fn()
            for stall in self._stalls:
                await stall.hold(raw.method, raw.path)
            for latency in self._latencies:
                await latency.hold(raw.method, raw.path, data)
            if raw.method == "GET" and query.get("watch") in ("true", "1"):
                self.log.append(LoggedRequest(raw.method, raw.path, query, 200))
                return await self._watch(raw, parsed, query)
            result = self._dispatch(raw.method, raw.headers.get("Content-Type", ""), parsed, query, data)
        except ApiError as exc:
            return self._error(raw, exc, query, data)
        except ValueError as exc:  # malformed selectors
            return self._error(raw, ApiError(400, "BadRequest", str(exc)), query, data)
        self.log.append(LoggedRequest(raw.method, raw.path, query, 200, data))
        code = 201 if raw.method == "POST" else 200
        return aiohttp.web.json_response(result, status=code)

    def _error(
        self, raw: aiohttp.web.BaseRequest, exc: ApiError, query: dict[str, str] | None = None, data: Any = None
    ) -> aiohttp.web.Response:
        self.log.append(LoggedRequest(raw.method, raw.path, query or {}, exc.code, data))
        status = {
            "apiVersion": "v1",
            "kind": "Status",
            "metadata": {},
            "status": "Failure",
            "message": exc.message,
            "reason": exc.reason,
            "code": exc.code,
        }
        return aiohttp.web.json_response(status, status=exc.code)

    def requests(self, method: str | None = None, path_regex: str = "") -> list[LoggedRequest]:
        """Answered requests, filtered by method and path."""
        pattern = re.compile(path_regex)
        return [r for r in list(self.log) if (method is None or r.method == method) and pattern.search(r.path)]

    # ---- verbs -------------------------------------------------------------
    def _dispatch(self, method: str, ctype: str, p: Parsed, query: dict[str, str], data: Any) -> Any:
        rtype = p.rtype
        with self._store_lock:
            if p.name is None:
                if method == "GET":
                    return self._list(rtype, p.namespace, query)
                if method == "POST":
                    return self._create(rtype, p.namespace, data)
                raise ApiError(405, "MethodNotAllowed", f"{method} on a collection")
            key = self._key(rtype, p.namespace, p.name)
            current = None if key not in self.objects or self.objects[key].deleted else self.objects[key].raw
            if current is None:
                raise ApiError(404, "NotFound", f'{rtype.plural} "{p.name}" not found')
            if method == "GET":
                return self._scale_of(rtype, current) if p.sub == "scale" else copy.deepcopy(current)
            if method == "DELETE":
                self.objects[key].delete()
                self._rv += 1
                self._events.setdefault((rtype.group, rtype.plural), deque(maxlen=self.event_log_size)).append(
                    (self._rv, "DELETED", copy.deepcopy(current))
                )
                return {"apiVersion": "v1", "kind": "Status", "status": "Success", "details": {"name": p.name}}
            if method not in ("PATCH", "PUT"):
                raise ApiError(405, "MethodNotAllowed", method)
            if not isinstance(data, dict | list):
                raise ApiError(400, "BadRequest", "expected a JSON object body")
            return self._write(method, ctype, rtype, key, current, p.sub, data)
