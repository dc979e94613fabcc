"""Dashboards: Grafana dashboards as code, and the HTML report of a local run (``dashboards.report``)."""
