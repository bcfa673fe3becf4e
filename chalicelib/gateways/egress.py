"""Where the control plane and the gateways may send traffic: the egress policy of external
routes (`[host:port]`) and release webhooks (docs/decisions/0025-egress-policy.md).

Refused unless the operator admits them (settings.egress_allow): loopback, link-local, private
ranges, shared address space (CGNAT), unspecified, multicast, broadcast, reserved and
documentation ranges, and the cloud metadata services, in every spelling (`2852039166`,
`0251.0376.0376.0376`, `127.1`, `::ffff:169.254.169.254`, NAT64 and 6to4 forms). A metadata
address is admitted only by an entry that is that very address, never by a range around it.
A host name is as good as the worst of its addresses: every one is checked.

Pure checks plus one outside system, DNS, behind `Resolver`; `resolver` is what the checks use
unless given one (tests replace it, as they replace `releases.tasks.deps_factory`).
"""
from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Union
from urllib.parse import unquote, urlsplit

from chalicelib.settings import parse_egress_allow, settings

Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
Resolver = Callable[[str], list[str]]  # host name -> its addresses (OSError: it does not resolve)

REFUSED = "refused by policy"
METADATA_CLASS = "metadata service"

# Exact addresses of the cloud metadata and credential endpoints a node or task can reach.
METADATA: dict[Address, str] = {ipaddress.ip_address(a): METADATA_CLASS for a in (
    "169.254.169.254",   # EC2 IMDS (also GCP, Azure, OpenStack)
    "fd00:ec2::254",     # EC2 IMDS over IPv6
    "169.254.170.2",     # ECS task metadata and credentials
    "169.254.170.23",    # EKS Pod Identity agent
    "fd00:ec2::23",      # EKS Pod Identity agent over IPv6
    "100.100.100.200",   # Alibaba Cloud
    "192.0.0.192",       # Oracle Cloud
)}

_V4 = [(ipaddress.ip_network(n), c) for n, c in (
    ("0.0.0.0/8", "unspecified"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared address space (CGNAT)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "reserved"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "reserved"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "broadcast"),
    ("240.0.0.0/4", "reserved"),
)]
_V6 = [(ipaddress.ip_network(n), c) for n, c in (
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("64:ff9b:1::/48", "private"),
    ("100::/64", "reserved"),
    ("2001::/23", "reserved"),  # IETF protocol assignments, Teredo among them
    ("2001:db8::/32", "documentation"),
    ("fc00::/7", "private"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "private"),  # site-local, deprecated
    ("ff00::/8", "multicast"),
)]
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_V4_COMPATIBLE = ipaddress.ip_network("::/96")
_NUMERIC_V4 = re.compile(r"^[0-9a-fA-FxX.]+$")
_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$")


class Refused(Exception):
    """The destination is refused; str() is the reason users see: "refused by policy: <class>"."""

    def __init__(self, what: str):
        super().__init__(f"{REFUSED}: {what}")
        self.what = what


# -- addresses ------------------------------------------------------------------------------

def parse_address(text: str) -> Address | None:
    """The address `text` spells, as the C library reads it (inet_aton: `127.1`, `2852039166`,
    `0x7f.1`, octal `0177.0.0.1`; IPv6 with or without brackets and zone), else None (a name)."""
    t = text.strip()
    if t.startswith("[") and t.endswith("]"):
        t = t[1:-1]
    if ":" in t:
        try:
            return ipaddress.IPv6Address(t)
        except ValueError:
            return None
    if not _NUMERIC_V4.fullmatch(t):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(t))
    except OSError:
        return None


def embedded_v4(ip: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries to its destination: mapped (::ffff:a.b.c.d), NAT64
    (64:ff9b::a.b.c.d), 6to4 (2002:aabb:ccdd::), IPv4-compatible (::a.b.c.d)."""
    if ip.version != 6:
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or (ip in _V4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _bare(ip: Address) -> Address:
    """Without an IPv6 zone (`fe80::1%eth0`): networks compare addresses, not interfaces."""
    return ipaddress.IPv6Address(str(ip).split("%")[0]) if ip.version == 6 and ip.scope_id else ip


def classify(ip: Address) -> str | None:
    """The class of a refused address, or None for a public one."""
    ip = _bare(ip)
    inner = embedded_v4(ip)
    if inner is not None:
        return classify(inner)
    if ip in METADATA:
        return METADATA[ip]
    for network, what in _V4 if ip.version == 4 else _V6:
        if ip in network:
            return what
    return None


# -- the policy -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Policy:
    networks: tuple = ()  # ipaddress networks the operator admits
    hosts: tuple[str, ...] = ()  # host names the operator admits ("*.x.y": any name under x.y)
    route_names: str = "listed"  # settings.egress_route_names

    @classmethod
    def parse(cls, allow: str, route_names: str = "listed") -> "Policy":
        networks, hosts = parse_egress_allow(allow)
        return cls(networks, hosts, route_names)

    def admits(self, ip: Address) -> str | None:
        """None when `ip` may be reached, else the class it is refused as."""
        ip = _bare(ip)
        what = classify(ip)
        if what is None:
            return None
        candidates = [ip] + [a for a in [embedded_v4(ip)] if a is not None]
        if what == METADATA_CLASS:  # only an entry naming the address itself
            exact = {n.network_address for n in self.networks if n.num_addresses == 1}
            return None if any(a in exact for a in candidates) else what
        return None if any(a in n for a in candidates for n in self.networks) else what

    def lists(self, name: str) -> bool:
        name = name.lower().rstrip(".")
        return any(name == h or (h.startswith("*.") and name.endswith(h[1:])) for h in self.hosts)


@lru_cache(maxsize=8)
def _policy(allow: str, route_names: str) -> Policy:
    return Policy.parse(allow, route_names)


def policy() -> Policy:
    s = settings()
    return _policy(s.egress_allow, s.egress_route_names)


def system_resolver(name: str) -> list[str]:
    """Every address the system resolver gives for `name` (OSError when it gives none)."""
    infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


resolver: Resolver = system_resolver


# -- checks -----------------------------------------------------------------------------------

def check_host(host: str, *, pol: Policy | None = None, resolve: Resolver | None = None,
               must_resolve: bool = True) -> list[Address]:
    """The addresses `host` stands for (resolved once), every one admitted; Refused otherwise.
    A name the operator lists may resolve anywhere but to a metadata service (the operator
    vouches for it); `must_resolve=False`: a listed name that does not resolve here is admitted
    (it may resolve only where it is used: the gateway nodes)."""
    pol = pol or policy()
    ip = parse_address(host)
    if ip is not None:
        what = pol.admits(ip)
        if what:
            raise Refused(what)
        return [ip]
    name = host.strip().lower().rstrip(".")
    if not _NAME.fullmatch(name) or len(name) > 253:
        raise Refused("not a host name")
    listed = pol.lists(name)
    try:
        answers = [a for a in (parse_address(str(x)) for x in (resolve or resolver)(name)) if a is not None]
    except (OSError, UnicodeError):
        answers = []
    if not answers:
        if listed and not must_resolve:
            return []
        raise Refused("the name does not resolve")
    for ip in answers:
        what = pol.admits(ip)
        if what and (not listed or what == METADATA_CLASS):
            raise Refused(f"resolves to {what}")
    return answers


def check_route(host: str, *, pol: Policy | None = None, resolve: Resolver | None = None) -> None:
    """When a gateway is stored: an external route's host. Names are resolved by HAProxy on the
    nodes, again and again, after this check: with route_names "listed" only names the operator
    lists are taken (what they resolve to is the operator's), "resolved" takes any name whose
    addresses are all admitted now."""
    pol = pol or policy()
    if parse_address(host) is None and pol.route_names == "listed" and not pol.lists(host):
        raise Refused("a host name the operator's allowlist does not list (give an address)")
    check_host(host, pol=pol, resolve=resolve, must_resolve=pol.route_names == "resolved" and not pol.lists(host))


def route_address(host: str, *, pol: Policy | None = None) -> str:
    """When rendering: the host to write in the server line, or Refused (the policy may have
    changed since the gateway was stored). An address in its one canonical spelling, so HAProxy
    never reads `2852039166` its own way; a name as it is, without resolving it (the nodes do)."""
    pol = pol or policy()
    ip = parse_address(host)
    if ip is None:
        if pol.route_names == "listed" and not pol.lists(host):
            raise Refused("a host name the operator's allowlist does not list")
        return host
    what = pol.admits(ip)
    if what:
        raise Refused(what)
    return str(ip)


@dataclass(frozen=True)
class Destination:
    """Where a webhook URL goes, its host resolved once and every address admitted: a caller
    connects to `addresses[0]`, never resolving `host` again (DNS may answer otherwise then)."""

    scheme: str
    host: str  # for the Host header, SNI and the certificate check
    port: int
    addresses: tuple[Address, ...]
    path: str  # path and query
    username: str | None
    password: str | None


def check_url(url: str, *, pol: Policy | None = None, resolve: Resolver | None = None) -> Destination:
    """A release webhook's URL: Refused by the policy, ValueError when it is no usable URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{parts.scheme or 'no'} scheme (http or https only)")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ValueError("invalid port") from None
    addresses = check_host(parts.hostname, pol=pol, resolve=resolve)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Destination(parts.scheme, parts.hostname, port, tuple(addresses), path,
                       unquote(parts.username) if parts.username is not None else None,
                       unquote(parts.password) if parts.password is not None else None)
