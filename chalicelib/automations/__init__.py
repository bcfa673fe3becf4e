"""EventBridge automations (docs/decisions/0041): an image pushed to ECR starts a release
(ecr.py), a CloudWatch alarm in ALARM aborts the releases of the gateways it names
(cloudwatch_alarms.py). Each handler in app.py is one line into these; what they decide is an
event in the namespace (events.py). The control plane's own events on the bus:
store/eventbridge_events.py (the store layer: every publish passes there)."""
