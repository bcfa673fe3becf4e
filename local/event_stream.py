"""`GET /api/v1/events/stream` as a real `text/event-stream` on the local stack (docs/decisions/0042).

chalice's local server buffers a view's whole answer, as API Gateway does, so the view itself is
a long poll (chalicelib/api/routes/event_stream.py). A request that asks for `text/event-stream`
is answered here instead: the headers at once, then one frame per event as it is stored

    id: <event id>
    event: <event type>
    data: <the event as JSON>

by asking the app's own endpoint every POLL seconds for the events after the last id sent (each
ask goes through the app's middleware: a revoked token ends the stream), a comment line every
HEARTBEAT seconds (a gone client is noticed there), until the client or the stack goes away.
"""
from __future__ import annotations

import json
import re
import threading
import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

POLL = 1.0  # seconds between reads of the event store
HEARTBEAT = 15.0
_PATH = re.compile(r"^(/[a-z0-9-]{1,63})?/api/v1/events/stream\Z")
STOPPED = threading.Event()  # set when the stack stops: every open stream ends


def wants_stream(handler) -> bool:
    accept = (handler.headers.get("Accept") or "").lower()
    return "text/event-stream" in accept and bool(_PATH.match(urlsplit(handler.path).path))


def _ask(handler, headers: dict, cursor: str | None) -> tuple[int, dict, bytes]:
    """The app's long poll, without waiting: (status, headers, body)."""
    from chalice.local import LocalGatewayException

    parts = urlsplit(handler.path)
    drop = ("wait", "after") if cursor else ("wait",)  # the first ask keeps the client's own `after`
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in drop]
    query += [("wait", "0")] + ([("after", cursor)] if cursor else [])
    path = urlunsplit(("", "", parts.path, urlencode(query), ""))
    asked = {k: v for k, v in headers.items() if k.lower() != "accept"} | {"Accept": "application/json"}
    try:
        response = handler.local_gateway.handle_request(method="GET", path=path, headers=asked, body=None)
    except LocalGatewayException as e:
        return e.CODE, dict(e.headers), e.body if isinstance(e.body, bytes) else str(e.body or "").encode()
    body = response["body"] or b""
    return (response["statusCode"], {**response["headers"], **response["multiValueHeaders"]},
            body if isinstance(body, bytes) else body.encode())


def frame(event: dict) -> bytes:
    data = json.dumps(event, separators=(",", ":"))
    return f"id: {event['id']}\nevent: {event.get('type', 'event')}\ndata: {data}\n\n".encode()


def serve(handler) -> None:
    """Answer one streaming request on `handler` (chalice's ChaliceRequestHandler)."""
    headers = dict(handler.headers)
    status, out, body = _ask(handler, headers, None)
    if status != 200:  # refused (401, 403, 400): as the endpoint answers it
        handler._send_http_response(status, out, body)
        return
    answer = json.loads(body)
    handler.close_connection = True  # no length: the stream ends with the connection
    handler.send_response(200)
    handler._send_headers({"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "Connection": "close",
                           "X-Accel-Buffering": "no"})
    cursor, beat = answer["cursor"], time.monotonic()
    try:
        handler.wfile.write(b": stream open\n\n")
        handler.wfile.flush()
        while not STOPPED.is_set():
            for event in answer["events"]:
                handler.wfile.write(frame(event))
            if answer["events"]:
                handler.wfile.flush()
                beat = time.monotonic()
            cursor = answer["cursor"]
            if not answer["more"]:
                if time.monotonic() - beat >= HEARTBEAT:
                    handler.wfile.write(b": keep-alive\n\n")
                    handler.wfile.flush()
                    beat = time.monotonic()
                if STOPPED.wait(POLL):
                    break
            status, _, body = _ask(handler, headers, cursor)
            if status != 200:  # the token was revoked, the store is busy: the client reconnects with Last-Event-ID
                handler.wfile.write(f"event: error\ndata: {body.decode(errors='replace')}\n\n".encode())
                return
            answer = json.loads(body)
    except (BrokenPipeError, ConnectionResetError):
        return  # the client went away


def install() -> None:
    """Serve streaming requests of chalice's local server here; every other GET as before."""
    from chalice.local import ChaliceRequestHandler

    STOPPED.clear()  # a stack started after another stopped in this process streams again
    if getattr(ChaliceRequestHandler, "_vamp_event_stream", False):
        return
    plain = ChaliceRequestHandler.do_GET

    def do_get(handler) -> None:
        if wants_stream(handler):
            serve(handler)
        else:
            plain(handler)

    ChaliceRequestHandler.do_GET = do_get
    ChaliceRequestHandler._vamp_event_stream = True
