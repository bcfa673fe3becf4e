"""One module per API resource: a `Call` in, a `Reply` out. app.py only routes to these."""
