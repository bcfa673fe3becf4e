"""Gateway ports: parsing, the assignment range, and the claims that keep them unique.

A port in use by a gateway of a namespace is *claimed*: an item of the private kind
`gateway-ports` named by the port number, written in the same DynamoDB transaction as the
gateway, on the condition that it does not exist yet. Two concurrent requests can therefore
never end up with the same port: one transaction fails, and (for an assigned port) tries
another. Claims are released in the transaction that moves or deletes their gateway.
"""
from __future__ import annotations

import random
import re
from typing import Iterable

CLAIM_KIND = "gateway-ports"

_PORT_RE = re.compile(r"^ *(\d{1,5}) *(?:/ *(http|tcp) *)?$", re.IGNORECASE)


def parse_port(value: object) -> tuple[int, str]:
    """9070, "9070" or "9070/http" -> (9070, "http"); "9023/tcp" -> (9023, "tcp")."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    m = _PORT_RE.fullmatch(value) if isinstance(value, str) else None
    if not m or not 1 <= int(m.group(1)) <= 65535:
        raise ValueError(f"invalid port {value!r}: a number 1..65535 with an optional /http or /tcp")
    return int(m.group(1)), (m.group(2) or "http").lower()


def format_port(number: int, mode: str = "http") -> str:
    return f"{number}/{mode}"


def choose_free(ports: range, used: Iterable[int], rng: random.Random | None = None) -> int | None:
    """A free port of the range, picked at random (concurrent requests rarely pick the same,
    and when they do, the claim decides); None when the range is full."""
    taken = set(used)
    free_count = len(ports) - sum(1 for p in taken if p in ports)
    if free_count <= 0:
        return None
    rng = rng or random.Random()
    # Random probes first (cheap while the range is sparse), then a scan from a random start.
    for _ in range(32):
        candidate = ports[rng.randrange(len(ports))]
        if candidate not in taken:
            return candidate
    start = rng.randrange(len(ports))
    for i in range(len(ports)):
        candidate = ports[(start + i) % len(ports)]
        if candidate not in taken:
            return candidate
    return None
