"""Posting events to the Vamp API (metric summaries, rejected configurations)."""
from __future__ import annotations

import logging
from typing import Any

import requests

log = logging.getLogger("agent.events")


class EventPoster:
    """POST a JSON list of events in one request; False (and a log line) when the API is away."""

    def __init__(self, url: str, token: str | None, timeout: float = 5.0) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.headers["Content-Type"] = "application/json"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout

    def post(self, events: list[dict[str, Any]]) -> bool:
        if not events:
            return True
        try:
            response = self.session.post(self.url, json=events, timeout=self.timeout)
        except requests.RequestException as exc:
            log.warning("Vamp API unreachable (%s): %d events dropped", exc, len(events))
            return False
        if response.status_code >= 300:
            log.warning("Vamp API answered %s to %d events: %s", response.status_code, len(events),
                        response.text[:200])
            return False
        return True
