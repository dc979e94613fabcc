"""The Kubernetes operator: custom resources, CRD generation, the reconcile loop, leader election.

``resources`` (models) and ``crds`` (generated CRDs) define ScalingPolicy and
TrafficEvent; ``reconcile`` runs one policy through observe -> forecast ->
decide -> act -> record; ``loop`` and ``leader`` run it in a leader-elected
process; ``kube`` holds the client adapters and ``app`` wires them together
for ``pitboss operator run``.
"""
