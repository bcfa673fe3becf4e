"""Finding 4 of issue 10, from the attacker's side: a gateway as a pivot. A token holder stores
a TCP gateway whose external route reaches the node's metadata service (its instance
credentials) or etcd (the configuration every agent applies). Each is a 400 naming the route,
with "refused by policy: <class>", and nothing is written: no gateway, no port claim, no
archive event. Stored routes are checked again at every render: a narrowed allowlist takes a
route out of the configuration the nodes apply."""
from __future__ import annotations

import pytest

from chalicelib.gateways import egress, publisher
from chalicelib.settings import settings
from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore


@pytest.fixture()
def policy(monkeypatch):
    """Sets the operator's egress settings (the default: public addresses only) and a DNS of
    the test's own; no name is looked up for real."""
    names: dict[str, list[str]] = {}

    def resolve(name: str) -> list[str]:
        if name not in names:
            raise OSError("NXDOMAIN")
        return names[name]

    def set_policy(allow: str = "", route_names: str = "listed") -> dict[str, list[str]]:
        monkeypatch.setenv("VAMP_EGRESS_ALLOW", allow)
        monkeypatch.setenv("VAMP_EGRESS_ROUTE_NAMES", route_names)
        settings.cache_clear()
        return names

    monkeypatch.setattr(egress, "resolver", resolve)
    set_policy()
    yield set_policy
    settings.cache_clear()


def tcp_gateway(target: str, name: str = "pivot", port: int = 9150) -> dict:
    return {"name": name, "port": f"{port}/tcp", "routes": {f"[{target}]": {"weight": "100%"}}}


def assert_nothing_written(api, name: str = "pivot", port: int = 9150) -> None:
    assert api.get(f"/api/v1/gateways/{name}").status_code == 404
    assert api.get("/api/v1/events?tag=archive").json == []
    assert not DynamoDBArtifactStore().all_of_kind("default", "gateway-ports")  # no port claimed
    # The port is free: an honest gateway gets it.
    assert api.post("/api/v1/gateways", tcp_gateway("93.184.216.34:80", "honest", port)).status_code == 202


@pytest.mark.parametrize("target, refused_as", [
    ("169.254.169.254:80", "metadata service"),
    ("2852039166:80", "metadata service"),
    ("0251.0376.0251.0376:80", "metadata service"),
    ("0xa9fea9fe:80", "metadata service"),
    ("0251.0376.0376.0376:80", "link-local"),
    ("169.254.170.2:80", "metadata service"),
    ("127.0.0.1:2379", "loopback"),  # etcd, then finding 3
    ("127.1:2379", "loopback"),
    ("2130706433:2379", "loopback"),
    ("10.0.0.5:2379", "private"),
    ("100.64.0.1:80", "shared address space (CGNAT)"),
    ("0.0.0.0:22", "unspecified"),
])
def test_a_gateway_to_a_refused_address_is_a_400_and_nothing_is_written(api, policy, target, refused_as):
    for method, path in (("POST", "/api/v1/gateways"), ("PUT", "/api/v1/gateways/pivot"),
                         ("POST", "/api/v1/gateways?validate_only=true")):
        r = api.request(method, path, tcp_gateway(target))
        assert r.status_code == 400, r.body
        assert r.json["errors"] == [{"path": f"routes.[{target}]", "reason": f"refused by policy: {refused_as}"}]
    assert_nothing_written(api)


def test_ipv6_spellings_never_make_a_route(api, policy):
    for target in ("::ffff:169.254.169.254:80", "[::ffff:169.254.169.254]:80", "fd00:ec2::254:80"):
        r = api.post("/api/v1/gateways", tcp_gateway(target))
        assert r.status_code == 400, r.body
    assert_nothing_written(api)


def test_a_name_is_refused_unless_listed_and_checked_by_what_it_resolves_to(api, policy):
    names = policy()
    names.update({"rebind.example": ["127.0.0.1"], "meta.example": ["169.254.169.254"],
                  "api.partner.example": ["93.184.216.34"]})
    r = api.post("/api/v1/gateways", tcp_gateway("rebind.example:2379"))
    assert r.status_code == 400 and r.json["errors"][0]["reason"].startswith("refused by policy: a host name"), r.body

    names = policy(route_names="resolved")  # the operator chose to take any name that checks out now
    names.update({"rebind.example": ["127.0.0.1"], "meta.example": ["93.184.216.34", "169.254.169.254"],
                  "api.partner.example": ["93.184.216.34"]})
    r = api.post("/api/v1/gateways", tcp_gateway("rebind.example:2379"))
    assert r.status_code == 400 and r.json["errors"][0]["reason"] == "refused by policy: resolves to loopback"
    r = api.post("/api/v1/gateways", tcp_gateway("meta.example:80"))
    assert r.status_code == 400 and r.json["errors"][0]["reason"] == "refused by policy: resolves to metadata service"
    r = api.post("/api/v1/gateways", tcp_gateway("nowhere.example:80"))
    assert r.status_code == 400 and r.json["errors"][0]["reason"] == "refused by policy: the name does not resolve"
    assert_nothing_written(api)
    assert api.post("/api/v1/gateways", tcp_gateway("api.partner.example:443", "partner", 9101)).status_code == 202


def test_the_operator_admits_internal_ranges_and_names_but_the_metadata_service_only_by_itself(api, policy):
    names = policy("10.0.0.0/8,169.254.0.0/16,api.internal.example")
    names["api.internal.example"] = ["10.1.2.3"]
    assert api.post("/api/v1/gateways", tcp_gateway("10.1.2.3:5432", "db", 9101)).status_code == 202
    assert api.post("/api/v1/gateways", tcp_gateway("api.internal.example:80", "api", 9102)).status_code == 202
    r = api.post("/api/v1/gateways", tcp_gateway("169.254.169.254:80"))
    assert r.status_code == 400 and r.json["errors"][0]["reason"] == "refused by policy: metadata service"
    assert api.get("/api/v1/gateways/pivot").status_code == 404
    policy("169.254.169.254")
    assert api.post("/api/v1/gateways", tcp_gateway("169.254.169.254:80")).status_code == 202


def test_a_stored_route_the_policy_no_longer_admits_leaves_the_rendered_configuration(api, policy):
    policy("10.0.0.0/8,127.0.0.0/8")
    assert api.post("/api/v1/gateways", tcp_gateway("10.1.2.3:5432", "db", 9101)).status_code == 202
    assert api.post("/api/v1/gateways", tcp_gateway("127.1:8080", "local", 9102)).status_code == 202
    # (server <name> <address>:<port>): an address in one canonical spelling, never HAProxy's reading of `127.1`
    assert servers() == ["10.1.2.3:5432", "127.0.0.1:8080"]

    policy("127.0.0.0/8")  # the operator narrowed the allowlist
    assert servers() == ["127.0.0.1:8080"]
    _, rendered = publisher.render_namespace(DynamoDBArtifactStore(), "default", publisher.no_targets)
    assert any("[10.1.2.3:5432]" in p and "refused by policy: private" in p for p in rendered.problems), rendered.problems


def servers() -> list[str]:
    _, rendered = publisher.render_namespace(DynamoDBArtifactStore(), "default", publisher.no_targets)
    return sorted(line.split()[2] for line in rendered.text.splitlines() if line.strip().startswith("server "))
