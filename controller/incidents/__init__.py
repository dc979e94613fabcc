"""Incidents: rules (pure), the engine (fingerprint, lifecycle) and sinks (Alertmanager, Events, SQLite log)."""
