"""The built-in breeds: run inside the control plane (the workflow_run function). Names only
here (checked on every workflow write); what they do: builtin_runs.py."""
from __future__ import annotations

BUILTINS = frozenset({"health", "metrics", "allocation", "canary", "autoscale"})
