"""Publish dashboards to a Grafana server through its HTTP API (``pitboss dashboards push``).

Two calls of Grafana's documented API: the folder is looked up by title with
``GET /api/folders`` and created with ``POST /api/folders`` when missing,
then each dashboard is created or updated by uid with
``POST /api/dashboards/db`` (``overwrite: true``, ``folderUid``), the token
sent as ``Authorization: Bearer``. 401, 403 and 412 answers and unreachable
hosts become one-line ``GrafanaError`` messages saying what to check; bad
input (URL, token, folder) is an ``InputError`` before anything is sent.

Why httpx and not a Grafana client library: ``grafana-api`` has had no
release since 2020, and its maintained successor ``grafana-client`` pulls in
``urllib3-future``, which replaces urllib3 under the ``kubernetes`` client the
operator runs on. httpx is already a dependency, and two endpoints are all a
push needs. Called by cli/dashboards_cmd.py; tested against a fake that
follows Grafana's documented contract (tests/dashboards/fake_grafana.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from controller.errors import InputError

DEFAULT_FOLDER = "Pitboss"


class GrafanaError(Exception):
    """Grafana refused or could not be reached (a runtime failure: exit 1)."""


@dataclass(frozen=True)
class Pushed:
    """One dashboard as Grafana stored it."""

    uid: str
    title: str
    url: str
    version: int | None
    status: str


def check_url(url: str) -> str:
    """``url`` without a trailing slash; InputError naming --url unless it is http(s)://host[:port][/path]."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"expected an http(s) URL of the Grafana server, got {url!r}", field="--url")
    return url.rstrip("/")


def folder_uid(title: str) -> str:
    """A stable folder uid from its title (Grafana allows 40 characters of [a-zA-Z0-9_-])."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", title.lower()).strip("-")[:40]
    return slug or "pitboss"


class GrafanaClient:
    """The few Grafana HTTP API calls a push needs, over one httpx.Client."""

    def __init__(self, url: str, token: str, *, timeout: float = 10.0, transport: httpx.BaseTransport | None = None,
                 ) -> None:
        if not token or not token.strip():
            raise InputError("expected a Grafana service account token, got an empty one", field="--token")
        self.url = check_url(url)
        self.http = httpx.Client(base_url=self.url, timeout=timeout, transport=transport,
                                 headers={"Authorization": f"Bearer {token.strip()}", "Accept": "application/json"})

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> GrafanaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise GrafanaError(f"cannot reach Grafana at {self.url}: {exc or type(exc).__name__}") from None
        if response.status_code < 300:
            return response.json()
        message = _message(response)
        code = response.status_code
        if code == 401:
            hint = "check --token (a service account token or API key of this Grafana)"
        elif code == 403:
            hint = "the token's role may not do this (dashboards need Editor, creating folders Editor or Admin)"
        elif code == 412:
            hint = "a different dashboard with this name exists in the folder, or it was changed meanwhile"
        else:
            hint = "Grafana refused the request"
        raise GrafanaError(f"{what}: HTTP {code} from {self.url}{path}: {message}; {hint}")

    def ensure_folder(self, title: str) -> str:
        """The uid of the folder titled ``title``, created (with a uid from its title) when there is none."""
        folders = self._call("GET", "/api/folders", f"list folders to find {title!r}", params={"limit": 1000})
        for folder in folders:
            if folder.get("title") == title:
                return str(folder["uid"])
        created = self._call("POST", "/api/folders", f"create folder {title!r}",
                             json={"uid": folder_uid(title), "title": title})
        return str(created["uid"])

    def push(self, board: Mapping[str, Any], folder: str | None) -> Pushed:
        """Create or update one dashboard by its uid."""
        body = {"dashboard": {**board, "id": None}, "overwrite": True,
                "message": "pitboss dashboards push"}
        if folder is not None:
            body["folderUid"] = folder
        uid = str(board.get("uid", ""))
        answer = self._call("POST", "/api/dashboards/db", f"push dashboard {uid}", json=body)
        return Pushed(uid=str(answer.get("uid", uid)), title=str(board.get("title", "")),
                      url=self.url + str(answer.get("url", "")), version=answer.get("version"),
                      status=str(answer.get("status", "")))


def push_all(client: GrafanaClient, boards: Mapping[str, Mapping[str, Any]], folder: str | None = DEFAULT_FOLDER,
             ) -> list[Pushed]:
    """Push every dashboard into ``folder`` (looked up or created; None: the General folder)."""
    if folder is not None and not folder.strip():
        raise InputError("expected a folder title, got an empty one", field="--folder")
    uid = client.ensure_folder(folder.strip()) if folder is not None else None
    return [client.push(board, uid) for board in boards.values()]


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200] or response.reason_phrase
    if isinstance(body, dict):
        return str(body.get("message") or body.get("status") or body)[:200]
    return str(body)[:200]
