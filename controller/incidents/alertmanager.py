"""Alertmanager API v2 over httpx: post alerts, read them back, add silences.

``AlertmanagerSink`` is the sink the engine's re-sending delivery calls
(``controller.incidents.delivery.ResendDelivery``): a firing incident goes out
with ``startsAt`` and an ``endsAt`` of now + ``ttl`` (Prometheus uses four
resend intervals, so an operator that dies lets its alerts expire while a
new leader's re-sends keep them alive), a resolved one with its real
``endsAt``, which resolves it. Alertmanager answers 400 for a batch holding
one invalid alert (it still takes the valid ones); the delivery bisects the
batch so only the bad one is counted as rejected. ``AlertmanagerClient`` is also used by
``pitboss incidents list/ack`` (silences). Sync httpx, for the same reason as
the Prometheus source: the operator loop is synchronous.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx

from controller.errors import PermanentError
from controller.incidents.model import Incident, Severity
from controller.sources.retry import classify_http_error, classify_status


def _iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


class AlertmanagerClient:
    """The parts of the Alertmanager v2 API Pitboss uses."""

    def __init__(
        self,
        url: str,
        *,
        timeout: timedelta = timedelta(seconds=5),
        bearer_token: str | None = None,
        verify: bool | str = True,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"alertmanager url: expected an http:// or https:// URL, got {url!r}")
        headers = {"Authorization": f"Bearer {bearer_token}"} if bearer_token else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout.total_seconds(), headers=headers,
                                  verify=verify, transport=transport)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _call(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise classify_http_error(exc, f"alertmanager {what}") from exc
        err = classify_status(response, f"alertmanager {what}")
        if err is not None:
            raise err
        return response.json() if response.content else None

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        """POST /api/v2/alerts."""
        self._call("POST", "/api/v2/alerts", "post alerts", json=alerts)

    def alerts(
        self, *, active: bool = True, silenced: bool = True, filters: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        """GET /api/v2/alerts (``filters`` like ``policy="checkout"``)."""
        params: list[tuple[str, str]] = [("active", str(active).lower()), ("silenced", str(silenced).lower()),
                                         ("inhibited", "true")]
        params += [("filter", f) for f in filters]
        result = self._call("GET", "/api/v2/alerts", "list alerts", params=params)
        return list(result or [])

    def groups(self) -> list[dict[str, Any]]:
        """GET /api/v2/alerts/groups."""
        return list(self._call("GET", "/api/v2/alerts/groups", "list alert groups") or [])

    def silence(self, matchers: dict[str, str], starts: datetime, ends: datetime, *, by: str, comment: str) -> str:
        """POST /api/v2/silences with equality matchers; returns the silence id."""
        body = {
            "matchers": [{"name": k, "value": v, "isRegex": False, "isEqual": True} for k, v in matchers.items()],
            "startsAt": _iso(starts),
            "endsAt": _iso(ends),
            "createdBy": by,
            "comment": comment,
        }
        result = self._call("POST", "/api/v2/silences", "create silence", json=body)
        if not isinstance(result, dict) or "silenceID" not in result:
            raise PermanentError(f"alertmanager create silence: unexpected answer {result!r}")
        return str(result["silenceID"])

    def silences(self) -> list[dict[str, Any]]:
        """GET /api/v2/silences."""
        return list(self._call("GET", "/api/v2/silences", "list silences") or [])


def to_alert(incident: Incident, now: datetime, ttl: timedelta, generator_url: str = "") -> dict[str, Any]:
    """The Alertmanager v2 postable alert for ``incident`` as of ``now``."""
    ends = incident.ends_at if incident.ends_at is not None else now + ttl
    alert: dict[str, Any] = {
        "labels": incident.alert_labels(),
        "annotations": {
            "summary": incident.summary,
            "description": incident.description,
            "runbook_url": incident.runbook_url,
            **incident.annotations,
        },
        "startsAt": _iso(incident.starts_at),
        "endsAt": _iso(ends),
    }
    if generator_url:
        alert["generatorURL"] = generator_url
    return alert


def from_alert(alert: dict[str, Any]) -> Incident | None:
    """The open incident an Alertmanager alert of Pitboss stands for (inverse of ``to_alert``); None if not ours.

    What a replica that takes over a policy adopts (``IncidentEngine.adopt``): the labels, text
    and ``startsAt`` its former owner sent.
    """
    labels = {str(k): str(v) for k, v in (alert.get("labels") or {}).items()}
    fp, name, severity = labels.pop("pitboss_id", ""), labels.pop("alertname", ""), labels.pop("severity", "")
    notes = {str(k): str(v) for k, v in (alert.get("annotations") or {}).items()}
    try:
        starts = datetime.fromisoformat(str(alert.get("startsAt", "")).replace("Z", "+00:00"))
        sev = Severity(severity)
    except ValueError:
        return None
    if not fp or not name:
        return None
    return Incident(id=fp, alertname=name, severity=sev, labels=labels, summary=notes.pop("summary", ""),
                    description=notes.pop("description", ""), runbook_url=notes.pop("runbook_url", ""),
                    state="firing", starts_at=starts, updated_at=starts, annotations=notes)


class AlertmanagerSink:
    """Sends incidents to Alertmanager. Re-sends firing ones (``resend``)."""

    resend = True

    def __init__(self, client: AlertmanagerClient, *, ttl: timedelta = timedelta(minutes=4),
                 name: str = "alertmanager", generator_url: str = "") -> None:
        self.client = client
        self.ttl = ttl
        self.name = name
        self.generator_url = generator_url

    def send(self, incidents: Sequence[Incident], now: datetime) -> None:
        """POST the batch; RetryableError when Alertmanager is down."""
        self.client.post_alerts([to_alert(i, now, self.ttl, self.generator_url) for i in incidents])
