"""The control plane's own metrics (``pitboss_operator_*``) and their per-policy accounting.

Exported by the operator and by the local run alike, so neither shell imports the other.
"""
