"""The egress policy itself (chalicelib/gateways/egress.py): every spelling of an address an
attacker may try, the operator's allowlist, and names checked by every address they resolve to
(an injected resolver: no DNS from tests)."""
from __future__ import annotations

import pytest

from chalicelib.gateways import egress
from chalicelib.gateways.egress import Policy, Refused
from chalicelib.settings import Settings

STRICT = Policy.parse("")


def dns(table: dict[str, list[str]]):
    def resolve(name: str) -> list[str]:
        if name not in table:
            raise OSError("NXDOMAIN")
        return table[name]
    return resolve


@pytest.mark.parametrize("spelling, refused_as", [
    ("169.254.169.254", "metadata service"),
    ("2852039166", "metadata service"),              # decimal
    ("0xa9fea9fe", "metadata service"),              # hexadecimal
    ("0251.0376.0251.0376", "metadata service"),     # octal
    ("169.254.43518", "metadata service"),           # a.b.c with c 16 bits
    ("0251.0376.0376.0376", "link-local"),           # octal 169.254.254.254
    ("::ffff:169.254.169.254", "metadata service"),  # IPv4-mapped
    ("[::ffff:a9fe:a9fe]", "metadata service"),
    ("64:ff9b::a9fe:a9fe", "metadata service"),      # NAT64
    ("2002:a9fe:a9fe::", "metadata service"),        # 6to4
    ("::169.254.169.254", "metadata service"),       # IPv4-compatible
    ("fd00:ec2::254", "metadata service"),
    ("169.254.170.2", "metadata service"),           # ECS task credentials
    ("127.0.0.1", "loopback"), ("127.1", "loopback"), ("0x7f.1", "loopback"), ("2130706433", "loopback"),
    ("017700000001", "loopback"), ("::1", "loopback"), ("::ffff:127.0.0.1", "loopback"),
    ("0.0.0.0", "unspecified"), ("0", "unspecified"), ("::", "unspecified"),
    ("10.0.0.5", "private"), ("172.16.0.1", "private"), ("172.31.255.255", "private"), ("192.168.1.1", "private"),
    ("fc00::1", "private"), ("fd12:3456::1", "private"),
    ("100.64.0.1", "shared address space (CGNAT)"),
    ("169.254.1.1", "link-local"), ("fe80::1", "link-local"), ("fe80::1%eth0", "link-local"),
    ("224.0.0.1", "multicast"), ("ff02::1", "multicast"), ("255.255.255.255", "broadcast"),
    ("240.0.0.1", "reserved"),
])
def test_every_spelling_of_a_refused_address_is_refused(spelling, refused_as):
    with pytest.raises(Refused) as refused:
        egress.check_host(spelling, pol=STRICT, resolve=dns({}))
    assert str(refused.value) == f"refused by policy: {refused_as}"


@pytest.mark.parametrize("public", ["8.8.8.8", "93.184.216.34", "172.32.0.1", "2606:4700:4700::1111"])
def test_public_addresses_are_admitted(public):
    assert [str(a) for a in egress.check_host(public, pol=STRICT, resolve=dns({}))] == [
        str(egress.parse_address(public))]


def test_a_broad_allowlist_admits_its_ranges_but_never_the_metadata_service():
    pol = Policy.parse("169.254.0.0/16,10.0.0.0/8,0.0.0.0/0,::/0")
    assert egress.check_host("169.254.1.1", pol=pol) and egress.check_host("10.9.9.9", pol=pol)
    for metadata in ("169.254.169.254", "2852039166", "::ffff:169.254.169.254", "fd00:ec2::254", "169.254.170.2"):
        with pytest.raises(Refused, match="metadata service"):
            egress.check_host(metadata, pol=pol)
    # Only an entry naming the very address admits it: the operator's explicit choice.
    assert egress.check_host("2852039166", pol=Policy.parse("169.254.169.254"))


def test_mapped_forms_follow_the_allowlist_of_their_ipv4_address():
    pol = Policy.parse("127.0.0.0/8")
    assert egress.check_host("::ffff:127.0.0.1", pol=pol)
    with pytest.raises(Refused, match="private"):
        egress.check_host("::ffff:10.0.0.1", pol=pol)


def test_a_name_is_as_good_as_the_worst_of_its_addresses():
    resolve = dns({"mixed.example": ["93.184.216.34", "127.0.0.1"], "meta.example": ["169.254.169.254"],
                   "good.example": ["93.184.216.34", "2606:4700::1"], "mapped.example": ["::ffff:169.254.169.254"]})
    with pytest.raises(Refused, match="resolves to loopback"):
        egress.check_host("mixed.example", pol=STRICT, resolve=resolve)
    with pytest.raises(Refused, match="resolves to metadata service"):
        egress.check_host("mapped.example", pol=STRICT, resolve=resolve)
    with pytest.raises(Refused, match="does not resolve"):
        egress.check_host("nowhere.example", pol=STRICT, resolve=resolve)
    assert len(egress.check_host("GOOD.example.", pol=STRICT, resolve=resolve)) == 2


def test_a_listed_name_may_resolve_to_private_addresses_never_to_the_metadata_service():
    pol = Policy.parse("internal.example,*.svc.example")
    resolve = dns({"internal.example": ["10.1.2.3"], "db.svc.example": ["172.20.0.9"],
                   "evil.svc.example": ["10.0.0.1", "169.254.169.254"], "other.example": ["10.1.2.3"]})
    assert egress.check_host("internal.example", pol=pol, resolve=resolve)
    assert egress.check_host("db.svc.example", pol=pol, resolve=resolve)
    with pytest.raises(Refused, match="metadata"):
        egress.check_host("evil.svc.example", pol=pol, resolve=resolve)
    with pytest.raises(Refused, match="resolves to private"):
        egress.check_host("other.example", pol=pol, resolve=resolve)
    assert not pol.lists("svc.example")  # `*.` is the names under it, not the name itself


def test_external_routes_take_only_listed_names_unless_the_operator_chose_resolved():
    resolve = dns({"api.partner.example": ["93.184.216.34"], "rebind.example": ["127.0.0.1"]})
    listed = Policy.parse("api.partner.example")
    egress.check_route("api.partner.example", pol=listed, resolve=resolve)
    with pytest.raises(Refused, match="does not list"):
        egress.check_route("rebind.example", pol=listed, resolve=resolve)
    resolved = Policy.parse("", "resolved")
    egress.check_route("api.partner.example", pol=resolved, resolve=resolve)
    with pytest.raises(Refused, match="resolves to loopback"):
        egress.check_route("rebind.example", pol=resolved, resolve=resolve)


def test_rendering_writes_one_canonical_spelling_and_rechecks_the_policy():
    pol = Policy.parse("127.0.0.0/8,api.partner.example")
    assert egress.route_address("127.1", pol=pol) == "127.0.0.1"
    assert egress.route_address("0x7f.0.0.2", pol=pol) == "127.0.0.2"
    assert egress.route_address("api.partner.example", pol=pol) == "api.partner.example"
    with pytest.raises(Refused):
        egress.route_address("2852039166", pol=pol)
    with pytest.raises(Refused):
        egress.route_address("other.example", pol=pol)


def test_webhook_urls_are_checked_by_their_host_in_every_spelling():
    for url in ("http://169.254.169.254/latest/meta-data/", "http://2852039166/", "http://[::ffff:169.254.169.254]/",
                "http://0251.0376.0251.0376/", "https://[fd00:ec2::254]:443/", "http://127.1:2379/v3/kv/range",
                "http://user:pw@127.0.0.1/", "http://public.example\\@127.0.0.1/"):
        with pytest.raises(Refused):
            egress.check_url(url, pol=STRICT, resolve=dns({}))
    with pytest.raises(ValueError):
        egress.check_url("gopher://8.8.8.8/", pol=STRICT)
    target = egress.check_url("https://ci:t%40k@hooks.example/gate?x=1", pol=STRICT,
                              resolve=dns({"hooks.example": ["93.184.216.34"]}))
    assert (target.host, target.port, target.path, target.username, target.password) == (
        "hooks.example", 443, "/gate?x=1", "ci", "t@k")
    assert [str(a) for a in target.addresses] == ["93.184.216.34"]


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "not a host", "127.1", "a..b", "http://x"])
def test_a_bad_allowlist_fails_at_start(bad):
    with pytest.raises(ValueError, match="VAMP_EGRESS_ALLOW"):
        Settings.from_env({"VAMP_EGRESS_ALLOW": f"127.0.0.0/8,{bad}"})
