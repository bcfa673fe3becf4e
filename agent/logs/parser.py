"""Parse one HAProxy JSON access-log line (see chalicelib.contract.log_format) into a record.

Hot path (>= 50k lines/s on one core): the C JSON scanner, one memoised name lookup per distinct
(frontend, backend) pair, an ISO timestamp cached per second, and the OpenSearch document built
by splicing text onto the raw line instead of re-serialising it.
"""
from __future__ import annotations

import json
import time
from typing import NamedTuple

from chalicelib.contract.log_format import gateway_route


class Record(NamedTuple):
    gateway: str | None
    route: str | None
    status: int
    tt: int  # total time, ms; -1 when HAProxy could not measure it
    day: str  # YYYY.MM.DD (UTC), for the daily index
    doc: bytes  # the line as an OpenSearch document, with @timestamp, gateway and route added


# The C scanner behind json.loads, called directly: skips the encoding sniffing and whitespace
# regexes json.loads runs around it (a third of its time on a 500-byte line).
_scan = json.JSONDecoder().scan_once
_names: dict[tuple[str, str], tuple[str | None, str | None, bytes]] = {}
_seconds: dict[int, tuple[str, str]] = {}


def _proxy_names(frontend: str, backend: str) -> tuple[str | None, str | None, bytes]:
    key = (frontend, backend)
    hit = _names.get(key)
    if hit is None:
        if len(_names) > 10_000:  # proxies come and go with configs; stay bounded
            _names.clear()
        gateway, route = gateway_route(frontend, backend)
        extra = f',"gateway":{json.dumps(gateway)},"route":{json.dumps(route)}'.encode()
        hit = _names[key] = (gateway, route, extra)
    return hit


def _when(ts: float) -> tuple[str, str]:
    """(ISO-8601 UTC to the second, YYYY.MM.DD) for an epoch second, cached."""
    second = int(ts)
    hit = _seconds.get(second)
    if hit is None:
        if len(_seconds) > 4096:
            _seconds.clear()
        t = time.gmtime(second)
        hit = _seconds[second] = (time.strftime("%Y-%m-%dT%H:%M:%S", t), time.strftime("%Y.%m.%d", t))
    return hit


def parse(raw: bytes) -> Record | None:
    """None for a line that is not a complete JSON object (truncated, garbage)."""
    line = raw.rstrip(b"\n")
    # HAProxy leaves backslashes of the request line unescaped; nothing else in the format has one.
    if b"\\" in line:
        line = line.replace(b"\\", b"\\\\")
    try:
        d, _end = _scan(line.decode("utf-8", "replace"), 0)
        gateway, route, extra = _proxy_names(d["frontend"], d["backend"])
        ts = d["timestamp"]
        iso, day = _when(ts)
        millis = int(round((ts - int(ts)) * 1000))
        if millis == 1000:
            millis = 999
        doc = b'%s,"@timestamp":"%s.%03dZ"%s}' % (line[:-1], iso.encode(), millis, extra)
        return Record(gateway, route, d["status"], d["Tt"], day, doc)
    except (ValueError, KeyError, TypeError, IndexError, OverflowError, StopIteration):
        return None
