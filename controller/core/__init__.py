"""The pure decision core: policies, durations, limits and ``decide``.

No I/O, no clock, no Kubernetes types (enforced by import-linter and a test).
Called by the reconcile loop, the simulator and the operator.
"""
