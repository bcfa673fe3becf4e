"""The workflow runtime (issue 14, docs/decisions/0039-workflow-runtime.md): a stored workflow's
status (Vamp's), its schedule (EventBridge Scheduler on AWS, the local stack's timer locally),
its runs (events) and the built-in breeds that run inside the control plane.

Domain: imports the store, the DSL and the gateways' telemetry; never the HTTP layer."""
