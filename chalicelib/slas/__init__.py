"""SLAs and escalations, with Vamp's rules (docs/decisions/0040).

`rules` is pure: the SLA decision from a cluster's response times, and the escalation plan (which
scale changes, bounded by minimum and maximum). `check` does the I/O from the scheduled pass:
which clusters have an SLA (from the deployment summaries), the cooldown and release guards, the
internal gateways' metric events, the `sla:escalate|deescalate` events, and the escalations
applied through the deployments' own scale operation.
"""
