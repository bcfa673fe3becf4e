"""Gateway ports: parsing, the assignment range, and the claims that keep them unique.

A port in use by a gateway of a namespace is *claimed*: an item of the private kind
`gateway-ports` named by the port number, written in the same DynamoDB transaction as the
gateway, on the condition that it does not exist yet. Two concurrent requests can therefore
never end up with the same port: one transaction fails, and (for an assigned port) tries
another. Claims are released in the transaction that moves or deletes their gateway.

Which ports a gateway may have at all is the operator's `PortPolicy` (docs/decisions/0024): inside
`gateway_ports_allowed`, outside `gateway_ports_reserved` (what the nodes themselves listen on:
etcd, the kubelet, the agent's /healthz, NodePorts) and never the virtual hosts port. A port
some other process on a node holds is a fact of that node, not of the control plane: the agent
reports the rejected configuration (bind failure) with HAProxy's message and the gateway.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

from chalicelib.settings import parse_port_range, settings

CLAIM_KIND = "gateway-ports"

_PORT_RE = re.compile(r"^(\d{1,5}) *(?:/ *(http|tcp))?$", re.IGNORECASE)  # on the value without its outer spaces


def parse_port(value: object) -> tuple[int, str]:
    """9070, "9070" or "9070/http" -> (9070, "http"); "9023/tcp" -> (9023, "tcp")."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    m = _PORT_RE.fullmatch(value.strip(" ")) if isinstance(value, str) else None
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


def parse_ports(text: str) -> tuple[range, ...]:
    """"22,2379-2381" -> (range(22, 23), range(2379, 2382)); ValueError naming the bad part."""
    out: list[range] = []
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        first, _, last = part.partition("-")
        try:
            low, high = int(first), int(last or first)
        except ValueError:
            raise ValueError(f"invalid ports {part!r}: a port or first-last") from None
        if not 1 <= low <= high <= 65535:
            raise ValueError(f"invalid ports {part!r}: 1 <= first <= last <= 65535")
        out.append(range(low, high + 1))
    return tuple(out)


@dataclass(frozen=True)
class PortPolicy:
    """The ports a gateway may be given (explicitly or from the assignment range)."""

    allowed: tuple[range, ...]
    reserved: tuple[range, ...] = ()
    virtual_hosts_port: int = 0

    def problem(self, port: int) -> str | None:
        """Why `port` cannot be a gateway's port, or None."""
        if port == self.virtual_hosts_port:
            return f"port {port} is the virtual hosts port"
        if any(port in r for r in self.reserved):
            return f"port {port} is reserved for the nodes' own services (gateway_ports_reserved)"
        if not any(port in r for r in self.allowed):
            allowed = ",".join(f"{r.start}-{r.stop - 1}" for r in self.allowed) or "none"
            return f"port {port} is outside the ports allowed for gateways ({allowed})"
        return None

    def unassignable(self, span: range) -> set[int]:
        """What the assignment must skip inside its range."""
        return {p for p in span if self.problem(p) is not None}


def policy(s=None) -> PortPolicy:
    """The operator's policy from the settings; ValueError when the assignment range
    (`gateway_ports`) is not inside the allowed ports."""
    return _policy(s or settings())


@lru_cache(maxsize=4)
def _policy(s) -> PortPolicy:
    allowed = parse_ports(s.gateway_ports_allowed)
    assigned = parse_port_range(s.gateway_ports)
    if not any(assigned.start in r and assigned.stop - 1 in r for r in allowed):
        raise ValueError(f"VAMP_GATEWAY_PORTS {s.gateway_ports} is not inside VAMP_GATEWAY_PORTS_ALLOWED "
                         f"{s.gateway_ports_allowed}")
    return PortPolicy(allowed, parse_ports(s.gateway_ports_reserved), s.virtual_hosts_port)
