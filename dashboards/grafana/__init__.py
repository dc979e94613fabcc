"""Pitboss' Grafana dashboards as code (grafana-foundation-sdk), and the JSON they generate.

One module per dashboard (``capacity``, ``service``, ``slo``, ``business``,
``operator``), shared pieces in ``common``; ``build`` turns them into JSON
(``dashboards/grafana/<uid>.json``, committed), ``layout`` draws each one's
grid as a PNG for docs/dashboards.md, ``push`` publishes them through
Grafana's HTTP API. Used by ``pitboss dashboards`` (cli/dashboards_cmd.py).
"""
