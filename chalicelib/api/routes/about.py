"""What the API says about itself: `info`, `config`, `openapi.json`."""
from __future__ import annotations

import time
from datetime import datetime, timezone

from chalicelib import VERSION
from chalicelib.api.http import Call, Reply
from chalicelib.settings import settings

STARTED = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def info(call: Call) -> Reply:
    s = settings()
    return Reply(200, {
        "message": "Hi, I'm Vamp! How are you?",
        "version": VERSION,
        "namespace": call.namespace,
        "running_since": STARTED,
        "persistence": {"type": "dynamodb", "table": s.table_name},
        "event_store": {"type": s.event_store},
        "auth": {"mode": s.auth_mode, "principal": call.principal,
                 "role": call.caller.role if call.caller else None,
                 "namespaces": list(call.caller.namespaces) if call.caller else []},
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })


def config(call: Call) -> Reply:
    s = settings()
    # Only what is safe to show: no endpoints with credentials, no tokens.
    return Reply(200, {"vamp": {
        "namespace": call.namespace,
        "persistence": {"database": {"type": "dynamodb", "table": s.table_name}},
        "events": {"type": s.event_store, "retention_days": s.event_retention_days},
        "http_api": {"auth": s.auth_mode, "max_body_bytes": s.max_body_bytes, "per_page_max": s.per_page_max},
    }})


def openapi(call: Call) -> Reply:
    from chalicelib.api.openapi import (
        document,  # builds the DSL models (pydantic): on first use
    )

    return Reply(200, document())
