"""The Chalice app class app.py builds."""
from __future__ import annotations

import threading

from chalice import Chalice


class ThreadSafeChalice(Chalice):
    """Chalice with `current_request` per thread: Chalice keeps it on the app, and the local
    stack's server (and tests) handle requests on threads, which then read each other's
    request (20 concurrent release starts all started the same one). On Lambda, one at a time."""

    _requests = threading.local()

    @property
    def current_request(self):
        return getattr(self._requests, "request", None)

    @current_request.setter
    def current_request(self, request):
        self._requests.request = request
