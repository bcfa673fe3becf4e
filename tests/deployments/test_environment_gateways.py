"""Environment variables and their scopes, dependency order, gateway documents, as_blueprint."""
from __future__ import annotations

import pytest

from chalicelib import dsl
from chalicelib.deployments import implied_gateways as G
from chalicelib.deployments.blueprint import as_blueprint
from chalicelib.deployments.environment import EnvironmentError_, environment, order
from chalicelib.deployments.slice import slice_
from tests.deployments.helpers import NOW, breed, deploy, one

APP = {
    "name": "shop",
    "environment_variables": {"web.PASS": "secret", "web.LEVEL": "debug"},
    "clusters": {
        "web": {"services": [{"breed": breed("web:1", environment_variables={
            "DB_HOST": "$db.host", "DB_PORT": "${db.ports.webport}", "PASS": "~", "LEVEL": "info",
            "PRICE": "$$5", "USER": "$db.environment_variables.USER", "NAME": "$own"},
            dependencies={"db": "db:*"}, constants={"own": "web"}),
            "environment_variables": {"LEVEL": "warn"}}]},
        "db": {"services": [{"breed": breed("db:1", "5432/tcp", environment_variables={"USER": "admin"})}]},
    },
}


def shop():
    return deploy(None, dsl.parse("blueprints", APP, resolve=lambda k, n: None))


def test_scopes_references_and_escapes():
    dep = shop()
    env = environment(dep, "web", dep.clusters["web"].services[0], "10.0.0.1", {("db", "webport"): 40001})
    assert env == {"DB_HOST": "10.0.0.1", "DB_PORT": "40001", "PASS": "secret", "LEVEL": "warn",
                   "PRICE": "$5", "USER": "admin", "NAME": "web"}


def test_unfilled_placeholders_and_missing_ports_fail_clearly():
    dep = shop()
    dep.environment_variables = {}
    with pytest.raises(EnvironmentError_, match="PASS is `~`"):
        environment(dep, "web", dep.clusters["web"].services[0], "h", {("db", "webport"): 1})
    dep = shop()
    with pytest.raises(EnvironmentError_, match="no port yet"):
        environment(dep, "web", dep.clusters["web"].services[0], "h", {})


def test_dependencies_deploy_first():
    assert order(shop()) == [("db", "db:1"), ("web", "web:1")]


def test_gateway_documents_and_names():
    bp = one("sava")
    bp["gateways"] = {"9050/http": "sava/webport"}
    dep = deploy(None, deploy(None, bp).model_copy() and bp)
    dep = deploy(dep, one("sava", "1.1.0"))
    docs = G.documents(dep)
    internal = docs["sava/sava/webport"]
    assert "port" not in internal and internal["metadata"] == {"deployment": "sava"}
    assert internal["routes"] == {"sava/sava/sava:1.0.0/webport": {"weight": "100%", "condition_strength": "0%"},
                                  "sava/sava/sava:1.1.0/webport": {"weight": "0%", "condition_strength": "0%"}}
    external = docs["sava/9050"]
    assert external["port"] == "9050/http" and list(external["routes"]) == ["sava/sava/webport"]
    for doc in docs.values():  # every one is a valid gateway
        dsl.parse("gateways", {**doc, "port": doc.get("port", "40000")})


def test_absorb_takes_weights_back_from_stored_gateways():
    dep = deploy(deploy(None, one("sava")), one("sava", "1.1.0"))
    stored = G.documents(dep)
    stored["sava/sava/webport"]["routes"] = {
        "sava/sava/sava:1.0.0/webport": {"weight": "40%"}, "sava/sava/sava:1.1.0/webport": {"weight": "60%"}}
    back = G.absorb(dep, stored)
    assert {k: r.weight for k, r in back.clusters["sava"].gateways["webport"].routes.items()} == {
        "sava:1.0.0": 40, "sava:1.1.0": 60}


def test_as_blueprint_round_trips():
    bp = one("sava", scale={"cpu": 0.5, "memory": "256MB", "instances": 2})
    bp["gateways"] = {"9050": "sava/webport"}
    dep = deploy(None, bp)
    shown = as_blueprint(dep)
    assert shown["kind"] == "blueprints" and shown["clusters"]["sava"]["services"][0]["breed"] == {"reference": "sava:1.0.0"}
    assert shown["clusters"]["sava"]["services"][0]["scale"] == {"cpu": 0.5, "memory": "256MB", "instances": 2}
    assert list(shown["gateways"]) == ["9050/http"] and list(shown["gateways"]["9050/http"]["routes"]) == ["sava/webport"]
    stored = {("breeds", "sava:1.0.0"): {"name": "sava:1.0.0", **{k: v for k, v in bp["clusters"]["sava"][
        "services"][0]["breed"].items() if k != "name"}}}
    again = deploy(None, shown, resolve=lambda k, n: stored.get((k, n)))
    assert again.clusters == dep.clusters and again.gateways.keys() == dep.gateways.keys()
    gone = as_blueprint(slice_(dep, None, NOW))
    assert gone["clusters"] == {} and "gateways" not in gone
