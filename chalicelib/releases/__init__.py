"""Automated canary releases: the pure core (plan, judges, analysis, decisions) and the step
handlers' logic with I/O behind small interfaces (metric source, traffic router, release state,
webhooks, the state machine). Nothing here is imported when app.py starts."""
