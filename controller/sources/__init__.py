"""Metrics in: the DemandSource protocol and its adapters (Prometheus, direct scrape, trace replay, fakes)."""
