"""How the local run reads /metrics: the business requests only, without the control plane's own probes.

Called by ``controller.local.run`` as the ``fetch`` of its ``ScrapeSource``.
The casino counts every HTTP request in ``casino_http_requests_total``,
``/metrics`` scrapes and ``/readyz`` probes included. Prometheus scrapes a
replica every 15-30 s, which adds a negligible 0.03-0.07 requests/s; the
local loop scrapes once per real second, which would add a full 1 request/s
per replica to the observed demand (4 requests/s at four replicas: a tenth of
the demo's peak, enough to raise false ``ForecastMiss`` incidents). So the
samples of the operational routes are dropped before parsing.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

OPS_ROUTES = ('route="/metrics"', 'route="/readyz"', 'route="/healthz"')


def without_ops_routes(text: str) -> str:
    """The exposition ``text`` minus the samples labelled with an operational route."""
    return "\n".join(line for line in text.splitlines() if not any(r in line for r in OPS_ROUTES)) + "\n"


def business_fetch(client: httpx.Client) -> Callable[[str], str]:
    """A ``ScrapeSource`` fetch: GET the URL (HTTP errors raise) and drop the operational routes."""

    def fetch(url: str) -> str:
        response = client.get(url, headers={"Accept": "text/plain;version=0.0.4"})
        response.raise_for_status()
        return without_ops_routes(response.text)

    return fetch
