"""Automated canary releases: the pure core (plan, judges, analysis, decisions), the state
machine's tasks (tasks.py) and the API's operations (operations.py), with I/O behind small
interfaces (metric source, traffic router, release state, webhooks, the state machine). Nothing
here is imported when app.py starts."""
