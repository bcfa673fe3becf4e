"""HTTP concerns kept out of app.py: content negotiation, pagination, errors, auth, OpenAPI."""
