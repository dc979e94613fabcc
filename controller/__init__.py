"""The Pitboss control plane: sources in, decisions, targets out, incidents.

``controller.core`` is pure (plain data in, Decision out); everything with I/O
lives beside it in ``sources``, ``targets`` and ``incidents``; the reconcile
loop ties them together. Called by the CLI and the operator entry point.
"""
