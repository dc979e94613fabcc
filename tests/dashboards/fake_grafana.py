"""A small fake Grafana HTTP API for the push tests: no Grafana server can be installed on these machines.

It follows Grafana's documented request/response contract (HTTP API docs,
"Folder API" and "Dashboard API", /api/folders and /api/dashboards/db, as in
Grafana 9-11) for what ``pitboss dashboards push`` calls, over real HTTP on a
loopback port so httpx, headers and status codes are exercised for real:

* ``Authorization: Bearer <token>``: an unknown token is 401
  ``{"message": "invalid API key"}``; a viewer token may read but a write is 403
  ``{"message": "Access denied"}``;
* ``GET /api/folders`` lists ``{id, uid, title}``; ``POST /api/folders``
  ``{uid, title}`` creates one (409 when the uid exists);
* ``POST /api/dashboards/db`` ``{dashboard, folderUid, overwrite, message}``
  creates or updates by ``dashboard.uid``: 200 ``{id, uid, url, status:
  "success", version, slug}``, the version counting up; 412 ``{"status":
  "name-exists"}`` when another uid has the same title in the folder, 412
  ``{"status": "version-mismatch"}`` when the uid exists and ``overwrite`` is
  false; 400 when the folder does not exist or the body has no dashboard.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.harness import free_port


class FakeGrafana:
    """Start with ``start()``; ``folders`` and ``dashboards`` hold what was stored; ``requests`` what came in."""

    def __init__(self, token: str = "editor-token", viewer_token: str = "viewer-token") -> None:
        self.tokens = {token: "Editor", viewer_token: "Viewer"}
        self.folders: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}  # uid -> {dashboard, folderUid, version, id}
        self.requests: list[tuple[str, str]] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> FakeGrafana:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, code: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _role(self) -> str | None:
                header = self.headers.get("Authorization", "")
                return fake.tokens.get(header.removeprefix("Bearer ")) if header.startswith("Bearer ") else None

            def do_GET(self) -> None:
                fake.requests.append(("GET", self.path))
                if self._role() is None:
                    return self._send(401, {"message": "invalid API key"})
                if self.path.split("?")[0] == "/api/folders":
                    return self._send(200, [{"id": f["id"], "uid": f["uid"], "title": f["title"]}
                                            for f in fake.folders.values()])
                return self._send(404, {"message": "Not found"})

            def do_POST(self) -> None:
                fake.requests.append(("POST", self.path))
                role = self._role()
                if role is None:
                    return self._send(401, {"message": "invalid API key"})
                length = int(self.headers.get("Content-Length", "0"))
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    return self._send(400, {"message": "bad request data"})
                if role != "Editor":
                    return self._send(403, {"message": "Access denied"})
                if self.path == "/api/folders":
                    return self._send(*fake.create_folder(body))
                if self.path == "/api/dashboards/db":
                    return self._send(*fake.save_dashboard(body))
                return self._send(404, {"message": "Not found"})

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, name="fake-grafana", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def create_folder(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        title = body.get("title")
        if not title:
            return 400, {"message": "folder title cannot be empty"}
        uid = body.get("uid") or f"f{len(self.folders) + 1}"
        if uid in self.folders:
            return 409, {"message": "a folder with the same uid already exists"}
        folder = {"id": len(self.folders) + 1, "uid": uid, "title": title, "url": f"/dashboards/f/{uid}/",
                  "version": 1}
        self.folders[uid] = folder
        return 200, folder

    def save_dashboard(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        board = body.get("dashboard")
        if not isinstance(board, dict) or not board.get("title"):
            return 400, {"message": "Dashboard title cannot be empty"}
        folder = body.get("folderUid") or ""
        if folder and folder not in self.folders:
            return 400, {"message": "folder not found"}
        uid = board.get("uid") or f"d{len(self.dashboards) + 1}"
        for other_uid, other in self.dashboards.items():
            if other_uid != uid and other["folderUid"] == folder and other["dashboard"]["title"] == board["title"]:
                return 412, {"status": "name-exists",
                             "message": "A dashboard with the same name in the folder already exists"}
        existing = self.dashboards.get(uid)
        if existing is not None and not body.get("overwrite"):
            return 412, {"status": "version-mismatch",
                         "message": "The dashboard has been changed by someone else"}
        version = 1 if existing is None else existing["version"] + 1
        ident = len(self.dashboards) + 1 if existing is None else existing["id"]
        self.dashboards[uid] = {"dashboard": board, "folderUid": folder, "version": version, "id": ident,
                                "message": body.get("message", "")}
        slug = re.sub(r"[^a-z0-9]+", "-", board["title"].lower()).strip("-")
        return 200, {"id": ident, "uid": uid, "url": f"/d/{uid}/{slug}", "status": "success", "version": version,
                     "slug": slug}
