"""The what-if simulator: replay recorded demand against scaling policies.

engine (the discrete-time loop), metrics, hpa (hpa, keda-cron), predictive
(holt-winters, pitboss, oracle), policies (by name), plot. Called by
``pitboss simulate`` and benchmarks/bench_simulate.py.
"""
