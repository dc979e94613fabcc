"""The control cycle, once: observe -> forecast -> decide -> act -> record for every shell.

The operator (``controller.operator``), the local run (``controller.local``) and
the simulator's forecast policies (``controller.simulate.predictive``) supply
adapters and a clock; this package holds what they share: the forecast feed
(``feed``), the per-policy memory (``memory``), the incident bookkeeping
(``incidents``), the ports and their fakes (``ports``, ``fakes``) and the cycle
itself (``run``). It imports no Kubernetes client and no HTTP client.
"""
