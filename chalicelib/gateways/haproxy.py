"""One HAProxy configuration per namespace, from all of its gateways (templates/*.j2).

Topology (docs/decisions/0008-haproxy-topology.md), per gateway:

    frontend gw.<gateway>          bind <bind>:<port>, mode http|tcp
        conditional routes:        use_backend rt.<g>.<r> if <condition> [{ rand(100) lt <strength> }]
        sticky routes:             use_backend rt.<g>.<r> if { req.cook(<cookie>) -m str <route> }
        weights:                   one draw  set-var(txn.vamp_w) rand(100)  per request, then
                                   use_backend rt.<g>.<r> if { var(txn.vamp_w) -m int lt <cumulative> }
    backend rt.<gateway>.<route>   the route's own servers (instances, an external [host:port],
                                   or the frontend of a chained gateway), `balance`, `check`,
                                   instance cookies, rewrites (http-request set-path)
    frontend vh.virtual-hosts      one, on the virtual-hosts port: Host -> backend vh.<gateway>,
    backend vh.<gateway>           whose one server is the gateway's frontend on loopback

Everything that reaches the text goes through a filter of templates' Environment that refuses
characters outside the charset of its slot, and `finalize` refuses any value that went through
no filter at all: a template that forgets one fails on the first render, not in production.
"""
from __future__ import annotations

import hashlib
import itertools
import logging
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable

import jinja2

from chalicelib.contract.envelope import checksum
from chalicelib.contract.log_format import (
    GLOBAL_LOG_LINE,
    IDLE_BIND_LINE,
    LOG_FORMAT_LINE,
    NODE_BIND,
    TCP_LOG_FORMAT_LINE,
    VIRTUAL_HOST_PREFIX,
    VIRTUAL_HOSTS_FRONTEND,
    backend_name,
    encode_name,
    frontend_name,
    node_bind_line,
)
from chalicelib.dsl import balance as B
from chalicelib.dsl import weights as W
from chalicelib.gateways.acl import Compiled, RenderError, check_new_path
from chalicelib.gateways.ports import PortPolicy
from chalicelib.gateways.ports import policy as port_policy
from chalicelib.gateways.spec import GatewaySpec, RouteSpec

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"
_HOSTNAME_SEGMENT = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class Instance:
    """One server of a route backend."""

    name: str
    host: str
    port: int
    weight: int = 100


# (gateway, route) -> the instances serving a `deployment/.../port` route. A route nothing
# serves renders as a backend without servers, which HAProxy accepts and answers with 503.
InstanceSource = Callable[[GatewaySpec, RouteSpec], list[Instance]]


def no_instances(gateway: GatewaySpec, route: RouteSpec) -> list[Instance]:
    return []


# (host, port) of an external route -> the host to write in its server line, or RenderError: the
# publisher passes the egress policy's (gateways/egress.route_address), checked at every render.
ExternalCheck = Callable[[str, int], str]


def as_given(host: str, port: int) -> str:
    return host


@dataclass(frozen=True)
class Options:
    bind: str = "127.0.0.1"
    virtual_hosts_port: int = 0  # 0: no virtual-host frontend
    maxconn: int = 4096
    instances: InstanceSource = no_instances
    external: ExternalCheck = as_given

    @property
    def loopback(self) -> str:
        """Where one proxy of the configuration reaches another (chaining, virtual hosts)."""
        if self.bind in ("0.0.0.0", "*", "", NODE_BIND):
            return "127.0.0.1"
        return "::1" if self.bind == "::" else self.bind

    @property
    def address(self) -> str:
        """The address every frontend binds; with `node`, loopback and the node's address too."""
        return self.loopback if self.bind == NODE_BIND else self.bind


@dataclass(frozen=True)
class Rendered:
    text: str
    checksum: str  # "sha256:<hex>" (contract/envelope.py), what the agent reports for the config it serves
    problems: tuple[str, ...] = ()  # what was left out, and why


# -- the filters ----------------------------------------------------------------------------

class Checked(str):
    """A value that went through one of the filters below."""


def _filter(pattern: str, what: str) -> Callable[[Any], Checked]:
    regex = re.compile(pattern)

    def check(value: Any) -> Checked:
        text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
        if text is None or not regex.fullmatch(text):
            raise RenderError(f"refusing {value!r} as {what} in the HAProxy configuration")
        return Checked(text)

    return check


def _balance(value: Any) -> Checked:
    """HAProxy's grammar of `balance` (dsl/balance.py), not just its charset."""
    try:
        return Checked(B.parse(value))
    except ValueError as error:
        raise RenderError(f"refusing {value!r} as a balance algorithm: {error}") from None


FILTERS = {
    # proxy, server, ACL, variable and cookie names
    "ident": _filter(r"[A-Za-z0-9_.:\-]{1,512}", "a name"),
    "num": _filter(r"\d{1,9}", "a number"),
    "addr": _filter(r"[A-Za-z0-9.\-_]{1,253}|[0-9A-Fa-f:.]{2,45}|\*", "an address"),
    # ACL criteria and `if` conditions: what the condition grammar lets through, plus the
    # braces and operators the renderer itself writes. Never a newline, `#`, a quote, `\` or `$`.
    "cond": _filter(r"[A-Za-z0-9 _\-.:/(),=+*@!~?^&|{}]{1,4096}", "a condition"),
    # a rewrite's new path (an HAProxy log-format string)
    "fmt": _filter(r"[A-Za-z0-9\-._~/:@!+,;=*&%\[\]()^]{1,2048}", "a path format"),
    "balance": _balance,
    "mode": _filter(r"http|tcp", "a mode"),
}


# The TCP log format and the idle listener are the contract's (the agent's allowlist knows them).
_CONSTANTS = frozenset({GLOBAL_LOG_LINE, LOG_FORMAT_LINE, TCP_LOG_FORMAT_LINE, IDLE_BIND_LINE})


def _node_bind(port: Any) -> Checked:
    """`bind "${VAMP_NODE_ADDRESS}:<port>"`: the one bind line whose address the agent fills."""
    return Checked(node_bind_line(int(FILTERS["num"](port))))


def _constant(value: Any) -> Checked:
    if value not in _CONSTANTS:
        raise RenderError(f"refusing {value!r}: not one of the renderer's constant lines")
    return Checked(value)


def _finalize(value: Any) -> Any:
    if not isinstance(value, Checked):
        raise RenderError(f"template bug: {value!r} reaches the configuration without a filter")
    return value


@lru_cache(maxsize=1)
def environment():
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=False,  # HAProxy text, not HTML: the filters are the escaping
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(FILTERS)
    env.filters["constant"] = _constant
    env.filters["node_bind"] = _node_bind
    return env


# -- from specs to the template's view --------------------------------------------------------

def automatic_virtual_hosts(name: str) -> list[str]:
    """Vamp's: `<gateway>.vamp`, `<port>.<deployment>.vamp`, `<port>.<cluster>.<deployment>.vamp`:
    the name's segments reversed, joined by dots (only when they are valid host labels)."""
    segments = name.split("/")
    if not all(_HOSTNAME_SEGMENT.fullmatch(s) for s in segments):
        return []
    return [".".join(reversed(segments)).lower() + ".vamp"]


def host_matcher(host: str) -> tuple[str, str, str]:
    """(fetch, method, value) matching a virtual host: exact, `*.domain` or `host:port`."""
    host = host.lower()
    if ":" in host:
        return "req.hdr(host),lower", "str", host
    if host.startswith("*."):
        return "var(txn.vamp_host)", "end", host[1:]
    return "var(txn.vamp_host)", "str", host


def check_virtual_host(host: str) -> None:
    name = host.split(":")[0]
    if "*" in name and not (name.startswith("*.") and "*" not in name[2:]):
        raise RenderError(f"virtual host {host!r}: `*` only as the whole first label (*.example.com)")


def _cookie(prefix: str, gateway: str) -> str:
    return f"{prefix}{hashlib.sha1(gateway.encode()).hexdigest()[:12]}"


@dataclass
class _View:
    frontends: list[dict] = field(default_factory=list)
    backends: list[dict] = field(default_factory=list)
    virtual_hosts: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _servers(gw: GatewaySpec, route: RouteSpec, ports: dict[str, tuple[int, str]], opts: Options,
             chained_ok: Callable[[str], bool], problems: list[str]) -> list[dict]:
    if route.external:
        host, port = route.external
        try:
            address = opts.external(host, port)
        except RenderError as error:  # refused now: the route serves nothing (503), said in problems
            problems.append(f"gateway {gw.name}: route {route.name}: {error}")
            return []
        return [{"name": f"{host}:{port}", "host": address, "port": port, "weight": 100}]
    if route.gateway is not None:
        target = ports.get(route.gateway)
        if target is None or not chained_ok(route.gateway):
            return []
        return [{"name": "gw-" + encode_name(route.gateway), "host": opts.loopback, "port": target[0], "weight": 100}]
    return [{"name": i.name, "host": i.host, "port": i.port, "weight": i.weight} for i in opts.instances(gw, route)]


def _chains(specs: dict[str, GatewaySpec]) -> Callable[[str, str], bool]:
    """ok(source, target): False when following gateway chains from target comes back to source."""
    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            name = todo.pop()
            if name == goal:
                return True
            if name in seen or name not in specs:
                continue
            seen.add(name)
            todo += [r.gateway for r in specs[name].routes if r.gateway]
        return False

    return lambda source, target: not reaches(target, source)


def compile_gateway(gw: GatewaySpec, view: _View, ids, ports: dict[str, tuple[int, str]], opts: Options,
                    chain_ok: Callable[[str, str], bool]) -> None:
    """Append the frontend and backends of one gateway to the view; RenderError if impossible."""
    http = gw.mode == "http"
    fe = Compiled(ids)
    conditional, sticky, weighted, backends = [], [], [], []
    route_cookie = _cookie("vamp_rt_", gw.name) if http and gw.sticky in ("route", "instance") else None
    instance_cookie = _cookie("vamp_in_", gw.name) if http and gw.sticky == "instance" else None
    shares = W.effective_weights([r.weight for r in gw.routes])
    for ri, (route, share) in enumerate(zip(gw.routes, shares)):
        name = backend_name(gw.name, route.name)
        if route.condition is not None and http:
            strength = W.condition_strength(route.condition_strength, True)
            try:
                term = fe.term(route.condition)
            except RenderError as error:
                raise RenderError(str(error), f"routes.{route.name}.condition") from None
            if strength > 0:
                conditional.append({"backend": name, "term": term, "strength": strength})
        if route_cookie and share > 0:
            sticky.append({"backend": name, "value": encode_name(route.name)})
        be = Compiled(ids)
        rewrites = []
        for j, (new_path, condition) in enumerate(route.rewrites if http else ()):
            try:
                rewrites.append({"path": check_new_path(new_path), "term": be.term(condition)})
            except RenderError as error:
                raise RenderError(str(error), f"routes.{route.name}.rewrites[{j}]") from None
        if route.balance and not http and B.needs_http(route.balance):
            raise RenderError(f"balance {route.balance} hashes the HTTP request: not on a /tcp port "
                              "(HAProxy would fall back to roundrobin)", f"routes.{route.name}.balance")
        servers = _servers(gw, route, ports, opts, lambda target: chain_ok(gw.name, target), view.problems)
        for i, server in enumerate(servers):
            server["cookie"] = f"r{ri}s{i}" if instance_cookie else None
            server["resolve"] = not _is_ip(server["host"])
        backends.append({
            "name": name, "mode": gw.mode, "balance": route.balance or ("roundrobin" if http else "leastconn"),
            "acls": be.acls, "rules": be.rules, "rewrites": rewrites, "servers": servers,
            "instance_cookie": instance_cookie, "route_cookie": route_cookie,
            "route_value": encode_name(route.name) if route_cookie else None,
        })
    for index, upper in W.thresholds(shares):
        weighted.append({"backend": backends[index]["name"], "upper": upper})
    view.frontends.append({
        "name": frontend_name(gw.name), "gateway": encode_name(gw.name), "bind": opts.address, "port": gw.port,
        "node_bind": opts.bind == NODE_BIND,
        "mode": gw.mode, "acls": fe.acls, "rules": fe.rules, "conditional": conditional,
        "route_cookie": route_cookie, "sticky": sticky, "weighted": weighted,
        "log_format": None if http else TCP_LOG_FORMAT_LINE,
    })
    view.backends += backends


def _is_ip(host: str) -> bool:
    return bool(re.fullmatch(r"[0-9.]+|[0-9A-Fa-f:]+", host))


def render(namespace: str, gateways: Iterable[GatewaySpec], options: Options | None = None) -> Rendered:
    """The configuration of a namespace. A gateway that cannot be rendered (or whose port is
    taken) is left out and named in `problems`: one bad gateway never blocks the others."""
    opts = options or Options()
    specs = sorted(gateways, key=lambda g: g.name)
    view, ids = _View(), itertools.count(1)
    ports: dict[str, tuple[int, str]] = {}
    used = {opts.virtual_hosts_port} if opts.virtual_hosts_port else set()
    for gw in specs:
        if gw.port is None or gw.port in used:
            view.problems.append(f"gateway {gw.name}: port {gw.port} missing or already used")
            continue
        used.add(gw.port)
        ports[gw.name] = (gw.port, gw.mode)
    by_name = {g.name: g for g in specs if g.name in ports}
    chain_ok = _chains(by_name)
    hosts_taken: set[str] = set()
    for gw in by_name.values():
        mark = (len(view.frontends), len(view.backends))
        try:
            compile_gateway(gw, view, ids, ports, opts, chain_ok)
        except RenderError as error:
            del view.frontends[mark[0]:], view.backends[mark[1]:]
            view.problems.append(f"gateway {gw.name}: {error}")
            continue
        if gw.mode != "http" or not opts.virtual_hosts_port:
            continue
        matchers = []
        for host in [*gw.virtual_hosts, *automatic_virtual_hosts(gw.name)]:
            try:
                check_virtual_host(host)
            except RenderError as error:
                view.problems.append(f"gateway {gw.name}: {error}")
                continue
            if host.lower() in hosts_taken:
                view.problems.append(f"gateway {gw.name}: virtual host {host} already routes to another gateway")
                continue
            hosts_taken.add(host.lower())
            fetch, method, value = host_matcher(host)
            matchers.append({"fetch": fetch, "method": method, "value": value})
        if matchers:
            view.virtual_hosts.append({"backend": VIRTUAL_HOST_PREFIX + encode_name(gw.name), "matchers": matchers,
                                       "host": opts.loopback, "port": gw.port})
    text = environment().get_template("haproxy.cfg.j2").render(
        namespace=namespace, global_log=GLOBAL_LOG_LINE, log_format=LOG_FORMAT_LINE, maxconn=opts.maxconn,
        frontends=view.frontends, backends=view.backends, virtual_hosts=view.virtual_hosts,
        virtual_hosts_frontend=VIRTUAL_HOSTS_FRONTEND, bind=opts.address, node_bind=opts.bind == NODE_BIND,
        virtual_hosts_port=opts.virtual_hosts_port,
        resolvers=any(s["resolve"] for b in view.backends for s in b["servers"]), idle_bind=IDLE_BIND_LINE,
    )
    for problem in view.problems:
        log.warning("namespace %s: %s", namespace, problem)
    return Rendered(text, checksum(text), tuple(view.problems))


def check_gateway(gw: GatewaySpec, virtual_hosts_port: int = 0, policy: PortPolicy | None = None) -> None:
    """What a write must refuse (400) before storing: RenderError with the reason. The port
    against the operator's policy (the settings' when not given), then the whole gateway
    rendered."""
    if gw.port is not None and gw.port == virtual_hosts_port:
        raise RenderError(f"port {gw.port} is the virtual hosts port", "port")
    problem = (policy or port_policy()).problem(gw.port) if gw.port is not None else None
    if problem:
        raise RenderError(problem, "port")
    for host in gw.virtual_hosts:
        check_virtual_host(host)
    view = _View()
    fake_ports = {gw.name: (gw.port or 1, gw.mode)}
    compile_gateway(gw, view, itertools.count(1), fake_ports, Options(), lambda a, b: True)
    environment().get_template("haproxy.cfg.j2").render(
        namespace="check", global_log=GLOBAL_LOG_LINE, log_format=LOG_FORMAT_LINE, maxconn=1,
        frontends=[{**f, "port": f["port"] or 1} for f in view.frontends], backends=view.backends,
        virtual_hosts=[], virtual_hosts_frontend=VIRTUAL_HOSTS_FRONTEND, bind="127.0.0.1", node_bind=False,
        virtual_hosts_port=0,
        resolvers=False, idle_bind=IDLE_BIND_LINE)
