"""The HAProxy access-log contract shared by the renderer (Lambda side) and the gateway agent.

Pure: constants and string functions only, no I/O, cheap to import in a Lambda.

HAProxy writes one JSON object per request to a unix datagram socket the agent binds. The socket
path is node-specific, so the rendered config names it through an environment variable that the
agent sets for `haproxy` (HAProxy expands "${VAR}" inside double quotes):

    global
        log "unix@${VAMP_LOG_SOCKET}" len 8192 format raw local0
    defaults
        log global
        log-format '<LOG_FORMAT>'

Proxy naming, so a log line says which gateway and route served it:

    frontend  gw.<encode_name(gateway)>
    backend   rt.<encode_name(gateway)>.<encode_name(route)>

and one backend per virtual-hosted gateway, `vh.<encode_name(gateway)>` (next to the shared
frontend `vh.virtual-hosts`): proxy_gateway maps any of these back to the gateway (what a
rejected configuration's message names, acknowledgement.py).

HAProxy only accepts [A-Za-z0-9_.:-] in proxy names, and "." separates the parts, so names are
encoded with "_" as the escape character: "/" -> "__", and every byte outside [A-Za-z0-9:-]
(including "_" and ".") -> "_XX" (upper-case hex of its UTF-8 bytes). Hex digits are never "_",
so decoding is unambiguous:  "sava/9050" -> "sava__9050", "sava:1.0.0" -> "sava:1_2E0_2E0".
"""
from __future__ import annotations

import re

LOG_SOCKET_ENV = "VAMP_LOG_SOCKET"
# HAProxy cuts messages longer than `len`; 8192 keeps long request lines whole.
GLOBAL_LOG_LINE = 'log "unix@${' + LOG_SOCKET_ENV + '}" len 8192 format raw local0'

# Field order is the order in the line. Numbers are bare (HAProxy logs -1 for timers that did not
# happen), strings quoted. `retries` is quoted because HAProxy prefixes it with "+" after a
# redispatch, which is not JSON. `timestamp` is the accept date in epoch seconds with
# milliseconds (HAProxy 2.6 has no ISO accept-date); the agent adds "@timestamp" (ISO-8601, UTC).
# `request` uses %{+Q}r: HAProxy quotes it and encodes '"' and control characters as #XX, but
# leaves backslashes alone, so the parser escapes those before decoding.
LOG_FIELDS: tuple[tuple[str, str], ...] = (
    ("client_ip", '"%ci"'),
    ("client_port", "%cp"),
    ("timestamp", "%Ts.%ms"),
    ("frontend", '"%f"'),
    ("backend", '"%b"'),
    ("server", '"%s"'),
    ("Tq", "%Tq"),
    ("Tw", "%Tw"),
    ("Tc", "%Tc"),
    ("Tr", "%Tr"),
    ("Tt", "%Tt"),
    ("status", "%ST"),
    ("bytes_read", "%B"),
    ("termination_state", '"%ts"'),
    ("actconn", "%ac"),
    ("feconn", "%fc"),
    ("beconn", "%bc"),
    ("srv_conn", "%sc"),
    ("retries", '"%rc"'),
    ("srv_queue", "%sq"),
    ("backend_queue", "%bq"),
    ("request", "%{+Q}r"),
)

LOG_FORMAT = "{" + ",".join(f'"{name}":{spec}' for name, spec in LOG_FIELDS) + "}"
# The directive as it goes in `defaults` (or a frontend); single quotes: the format has none.
LOG_FORMAT_LINE = "log-format '" + LOG_FORMAT + "'"

# TCP proxies cannot log HTTP fields: the same JSON keys, with what a TCP connection has no
# value for as -1 (timers), 0 (status) or "" (request line), so the agent parses both alike.
_TCP_STAND_INS = {"Tq": "-1", "Tr": "-1", "status": "0", "request": '""'}
TCP_LOG_FORMAT_LINE = "log-format '{" + ",".join(
    f'"{name}":{_TCP_STAND_INS.get(name, spec)}' for name, spec in LOG_FIELDS) + "}'"
# HAProxy refuses a configuration without any listener, so a namespace without gateways (and
# without the virtual-hosts frontend) gets one no client uses: a unix socket next to the agent's
# log socket (the one node-specific path the rendered text may name, through the agent's env).
IDLE_BIND_LINE = 'bind "unix@${' + LOG_SOCKET_ENV + '}.idle"'
# Gateways on the node's own address (VAMP_GATEWAY_BIND=node, docs/decisions/0037): the text stays
# one for every node (one signature, one checksum acknowledged); HAProxy reads the address from
# the environment the agent gives it (VAMP_AGENT_NODE_ADDRESS: the pod's status.hostIP), which
# the agent always sets, since HAProxy reads an unset variable as "" and `bind ":port"` is every
# address. Each such frontend also binds loopback, where chained gateways and virtual hosts reach it.
NODE_BIND = "node"
NODE_ADDRESS_ENV = "VAMP_NODE_ADDRESS"


def node_bind_line(port: int) -> str:
    return 'bind "${' + NODE_ADDRESS_ENV + '}:' + str(int(port)) + '"'


FRONTEND_PREFIX = "gw."
BACKEND_PREFIX = "rt."
VIRTUAL_HOST_PREFIX = "vh."
VIRTUAL_HOSTS_FRONTEND = VIRTUAL_HOST_PREFIX + "virtual-hosts"

_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789:-")
_ESCAPE = re.compile(r"__|_([0-9A-F]{2})")
_VALID_ENCODED = re.compile(r"^(?:[A-Za-z0-9:-]|__|_[0-9A-F]{2})*$")


def encode_name(name: str) -> str:
    """Encode a gateway or route name into the HAProxy-safe alphabet (see module doc)."""
    out: list[str] = []
    for byte in name.encode("utf-8"):
        if byte in _SAFE:
            out.append(chr(byte))
        elif byte == 0x2F:  # "/" is by far the most common separator in Vamp names
            out.append("__")
        else:
            out.append(f"_{byte:02X}")
    return "".join(out)


def decode_name(encoded: str) -> str:
    """Inverse of encode_name; raises ValueError on text encode_name cannot produce."""
    if not _VALID_ENCODED.match(encoded):
        raise ValueError(f"not an encoded name: {encoded!r}")
    raw = bytearray()
    pos = 0
    for m in _ESCAPE.finditer(encoded):
        raw += encoded[pos : m.start()].encode("ascii")
        raw += b"/" if m.group(1) is None else bytes((int(m.group(1), 16),))
        pos = m.end()
    raw += encoded[pos:].encode("ascii")
    return raw.decode("utf-8")


def frontend_name(gateway: str) -> str:
    return FRONTEND_PREFIX + encode_name(gateway)


def backend_name(gateway: str, route: str) -> str:
    return BACKEND_PREFIX + encode_name(gateway) + "." + encode_name(route)


def gateway_route(frontend: str, backend: str) -> tuple[str | None, str | None]:
    """(gateway, route) served by a log line, from its proxy names; None where a name is foreign.

    A route backend names both; otherwise a gateway frontend names the gateway alone (e.g. a
    request HAProxy answered itself, with backend = frontend).
    """
    if backend.startswith(BACKEND_PREFIX):
        parts = backend.split(".")
        if len(parts) == 3:
            try:
                return decode_name(parts[1]), decode_name(parts[2])
            except ValueError:
                pass
    if frontend.startswith(FRONTEND_PREFIX) and "." not in frontend[3:]:
        try:
            return decode_name(frontend[3:]), None
        except ValueError:
            pass
    return None, None


def proxy_gateway(proxy: str) -> str | None:
    """The gateway a proxy of the rendered configuration belongs to (gw.<g>, rt.<g>.<r>, vh.<g>),
    or None (the shared virtual-hosts frontend, the idle frontend, a foreign name)."""
    if proxy == VIRTUAL_HOSTS_FRONTEND:
        return None
    for prefix, parts in ((FRONTEND_PREFIX, 1), (BACKEND_PREFIX, 2), (VIRTUAL_HOST_PREFIX, 1)):
        if proxy.startswith(prefix):
            names = proxy[len(prefix):].split(".")
            if len(names) == parts:
                try:
                    return decode_name(names[0])
                except ValueError:
                    return None
    return None
