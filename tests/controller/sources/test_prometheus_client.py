"""PrometheusClient's HTTP behaviour against a scripted loopback HTTP server.

Prometheus itself cannot be made to answer 503 or hang on demand, so a small
real HTTP server (http.server in a thread, on 127.0.0.1) plays its API here:
status codes, bodies and delays are scripted per request. Everything else
(bad queries, empty results, stopping) is tested against the real Prometheus
in test_prometheus_real.py.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from controller.errors import InputError, PermanentError, RetryableError
from controller.sources.prometheus import PrometheusClient, PrometheusConfig, PrometheusSource
from controller.sources.retry import Backoff, call_with_retries
from tests.harness import free_port

NOW = datetime(2026, 1, 1, tzinfo=UTC)
OK_VECTOR = {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [0, "12.5"]}]}}


class Script:
    """Responses to give, in order (the last one repeats), and the requests seen."""

    def __init__(self) -> None:
        self.responses: list[tuple[int, Any, float]] = [(200, OK_VECTOR, 0.0)]
        self.seen: list[dict[str, str]] = []


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            self.rfile.read(length)
            script.seen.append(dict(self.headers))
            code, body, delay = script.responses.pop(0) if len(script.responses) > 1 else script.responses[0]
            time.sleep(delay)
            payload = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", script
    httpd.shutdown()
    httpd.server_close()


def make(url: str, attempts: int = 3, **cfg: Any) -> tuple[PrometheusClient, list[float]]:
    sleeps: list[float] = []
    client = PrometheusClient(PrometheusConfig(url=url, timeout="1s", attempts=attempts, **cfg),
                              backoff=Backoff(base=0.5, cap=4, attempts=attempts), sleep=sleeps.append)
    return client, sleeps


def test_bearer_token_is_sent(server: tuple[str, Script], tmp_path: Path) -> None:
    url, script = server
    client, _ = make(url, bearer_token="s3cret")
    assert client.query("up", NOW) == [({}, 12.5)]
    assert script.seen[-1]["Authorization"] == "Bearer s3cret"
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    client, _ = make(url, bearer_token_file=token_file)
    client.query("up", NOW)
    assert script.seen[-1]["Authorization"] == "Bearer from-file"


def test_5xx_is_retried_with_backoff_then_succeeds(server: tuple[str, Script]) -> None:
    url, script = server
    script.responses = [(503, b"overloaded", 0.0), (502, b"bad gateway", 0.0), (200, OK_VECTOR, 0.0)]
    client, sleeps = make(url)
    assert PrometheusSource(client, "up").current(NOW) == 12.5
    assert len(script.seen) == 3 and len(sleeps) == 2
    assert 0 <= sleeps[0] <= 0.5 and 0 <= sleeps[1] <= 1.0  # full jitter under the exponential ceiling


def test_5xx_exhausted_is_retryable_and_names_the_query(server: tuple[str, Script]) -> None:
    url, script = server
    script.responses = [(503, {"status": "error", "errorType": "unavailable", "error": "tsdb busy"}, 0.0)]
    client, sleeps = make(url)
    src = PrometheusSource(client, "sum(rate(x[1m]))")
    with pytest.raises(RetryableError, match=r"'sum\(rate\(x\[1m\]\)\)': HTTP 503: unavailable: tsdb busy"):
        src.current(NOW)
    assert len(script.seen) == 3 and len(sleeps) == 2 and not src.available


def test_4xx_is_permanent_without_retry(server: tuple[str, Script]) -> None:
    url, script = server
    script.responses = [(422, {"status": "error", "errorType": "execution", "error": "too many samples"}, 0.0)]
    client, sleeps = make(url)
    with pytest.raises(PermanentError, match="HTTP 422: execution: too many samples"):
        client.query("up", NOW)
    assert len(script.seen) == 1 and sleeps == []


def test_timeout_is_retryable(server: tuple[str, Script]) -> None:
    url, script = server
    script.responses = [(200, OK_VECTOR, 1.5)]
    client, _ = make(url, attempts=1)
    with pytest.raises(RetryableError, match="timed out"):
        client.query("up", NOW)


def test_connection_refused_is_retryable() -> None:
    client, sleeps = make(f"http://127.0.0.1:{free_port()}", attempts=2)
    with pytest.raises(RetryableError, match="cannot connect"):
        client.query("up", NOW)
    assert len(sleeps) == 1


def test_silent_socket_times_out() -> None:
    """A peer that accepts and never answers (a hung Prometheus)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    try:
        client, _ = make(f"http://127.0.0.1:{sock.getsockname()[1]}", attempts=1)
        with pytest.raises(RetryableError, match="timed out"):
            client.query("up", NOW)
    finally:
        sock.close()


def test_nan_and_non_json_answers(server: tuple[str, Script]) -> None:
    url, script = server
    script.responses = [(200, {"status": "success", "data": {"resultType": "vector",
                                                             "result": [{"metric": {}, "value": [0, "NaN"]}]}}, 0.0)]
    client, _ = make(url, attempts=1)
    assert PrometheusSource(client, "x").current(NOW) is None
    script.responses = [(200, b"<html>proxy error</html>", 0.0)]
    with pytest.raises(RetryableError, match="unexpected response"):
        client.query("up", NOW)


def test_partial_range_leaves_nan_gaps(server: tuple[str, Script]) -> None:
    url, script = server
    start = NOW
    values = [[start.timestamp() + 60 * i, str(v)] for i, v in ((0, 1.0), (1, "NaN"), (3, 4.0))]
    script.responses = [(200, {"status": "success", "data": {"resultType": "matrix",
                                                             "result": [{"metric": {}, "values": values}]}}, 0.0)]
    client, _ = make(url, attempts=1)
    hist = PrometheusSource(client, "x").history(start, start + timedelta(minutes=5), timedelta(minutes=1))
    assert hist.iloc[0] == 1.0 and hist.iloc[3] == 4.0
    assert hist.isna().tolist() == [False, True, True, False, True]


@pytest.mark.parametrize(("cfg", "field"), [
    ({"url": "prometheus:9090"}, "url"),
    ({"url": "http://p", "timeout": "soon"}, "timeout"),
    ({"url": "http://p", "timeout": "0s"}, "timeout"),
    ({"url": "http://p", "attempts": 0}, "attempts"),
    ({"url": "http://p", "surprise": 1}, "surprise"),
])
def test_config_errors_name_the_field(cfg: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        PrometheusConfig(**cfg)


def test_missing_files_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="field 'ca_file'"):
        PrometheusClient(PrometheusConfig(url="https://p", ca_file=tmp_path / "nope.pem"))
    with pytest.raises(InputError, match="field 'bearer_token_file'"):
        PrometheusClient(PrometheusConfig(url="https://p", bearer_token_file=tmp_path / "nope"))


def test_insecure_and_empty_query() -> None:
    PrometheusClient(PrometheusConfig(url="https://p", insecure_skip_verify=True)).close()
    with pytest.raises(InputError, match="field 'query'"):
        PrometheusSource(PrometheusClient(PrometheusConfig(url="http://p")), " ")


def test_call_with_retries_stops_on_permanent() -> None:
    calls: list[int] = []

    def fn() -> int:
        calls.append(1)
        raise PermanentError("no")

    with pytest.raises(PermanentError):
        call_with_retries(fn, Backoff(attempts=5), sleep=lambda s: None)
    assert len(calls) == 1


def test_history_argument_errors(server: tuple[str, Script]) -> None:
    url, _ = server
    src = PrometheusSource(make(url)[0], "x")
    with pytest.raises(ValueError, match="timezone-aware"):
        src.history(datetime(2026, 1, 1), datetime(2026, 1, 2), timedelta(minutes=1))
    with pytest.raises(ValueError, match="must be after start"):
        src.history(NOW, NOW, timedelta(minutes=1))
    with pytest.raises(ValueError, match="timezone-aware"):
        src.current(datetime(2026, 1, 1))
