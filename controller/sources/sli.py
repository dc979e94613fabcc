"""SLI error ratios for the burn-rate incidents: the protocol and its Prometheus reader.

The incident rules (``controller.incidents.rules.burn_rate``) need, for each
SLO, the error ratio over several windows (5m ... 3d). Three things answer:
``PrometheusSLI`` (PromQL over the casino's counters), ``ScrapeSource``
(counters it scraped itself) and ``FakeSLISource``. Called by the loop each
cycle (the long windows are cheap in Prometheus; cache them if needed).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from controller.core.durations import format_duration
from controller.sources.prometheus import PrometheusClient

Ratios = dict[str, dict[timedelta, float | None]]

AVAILABILITY_EXPR = (
    '(sum(rate(casino_http_requests_total{{status=~"5.."}}[{w}])) or vector(0))'
    " / sum(rate(casino_http_requests_total[{w}]))"
)
LATENCY_EXPR = (
    '1 - sum(rate(casino_http_request_duration_seconds_bucket{{le="0.25"}}[{w}]))'
    " / sum(rate(casino_http_request_duration_seconds_count[{w}]))"
)


@runtime_checkable
class SLISource(Protocol):
    """Error ratios (bad / total) per SLO name and window; None when there was no traffic."""

    def error_ratios(self, now: datetime, windows: Iterable[timedelta]) -> Ratios:
        """{"availability": {window: ratio}, "latency": {window: ratio}}."""
        ...


class PrometheusSLI:
    """Error ratios from PromQL instant queries (one per SLO and window)."""

    def __init__(self, client: PrometheusClient) -> None:
        self.client = client

    @staticmethod
    def _expr(template: str, window: timedelta) -> str:
        return template.format(w=format_duration(window))

    def error_ratios(self, now: datetime, windows: Iterable[timedelta]) -> Ratios:
        """Query each ratio; an empty or NaN answer (no traffic) is None."""
        out: Ratios = {"availability": {}, "latency": {}}
        for window in windows:
            for slo, template in (("availability", AVAILABILITY_EXPR), ("latency", LATENCY_EXPR)):
                rows = self.client.query(self._expr(template, window), now)
                value = rows[0][1] if rows else math.nan
                out[slo][window] = value if math.isfinite(value) else None
        return out
