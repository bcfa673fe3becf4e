"""Merge (POST/PUT) and slice (DELETE) of blueprints into deployments, as Vamp does them."""
from __future__ import annotations

import pytest

from chalicelib.deployments.merge import merge
from chalicelib.deployments.model import dump, load
from chalicelib.deployments.slice import prune, selection_of, slice_
from chalicelib.errors import ValidationFailed
from tests.deployments.helpers import LATER, NOW, blueprint, breed, deploy, one, weights


def both() -> dict:
    return {"name": "sava", "clusters": {"sava": {"services": [
        {"breed": breed("sava:1.0.0")}, {"breed": breed("sava:1.1.0")}]}}}


def done(dep):
    for _, _, s in dep.services():
        s.status.phase.name = "done"
    return dep


def test_a_new_deployment_from_a_blueprint():
    dep = deploy(None, one("sava", scale={"cpu": 0.2, "memory": "256MB", "instances": 2}))
    (svc,) = dep.clusters["sava"].services
    assert svc.name == "sava:1.0.0" and svc.scale.instances == 2 and svc.scale.memory == 256
    assert svc.status.intention == "deployment" and svc.status.phase.name == "initiated"
    assert svc.status.since == NOW
    assert weights(dep) == {"sava:1.0.0": 100}
    assert load(dump(dep)) == dep


def test_default_scale_and_references_resolved():
    stored = {("breeds", "sava:1.0.0"): breed("sava:1.0.0"), ("scales", "small"): {"cpu": 0.5, "memory": "512MB"}}
    resolve = lambda k, n: stored.get((k, n))  # noqa: E731
    dep = deploy(None, {"name": "sava", "clusters": {"sava": {"services": [
        {"breed": "sava:1.0.0", "scale": "small"}]}}}, resolve)
    assert dep.clusters["sava"].services[0].scale.cpu == 0.5
    dep = deploy(None, {"name": "sava", "clusters": {"sava": "sava:1.0.0"}}, resolve)
    scale = dep.clusters["sava"].services[0].scale
    assert (scale.cpu, scale.memory, scale.instances) == (1, 1000, 1)


def test_unknown_references_are_400_with_paths():
    with pytest.raises(ValidationFailed) as info:
        merge(None, "x", blueprint({"name": "x", "clusters": {"c": {"services": [
            {"breed": "nope:1", "scale": "nah"}]}}}), lambda k, n: None, NOW)
    assert [e.path for e in info.value.errors] == ["clusters.c.services[0].breed"]


def test_inline_breeds_are_returned_for_storing():
    _, breeds = merge(None, "sava", blueprint(one("sava")), None, NOW)
    assert [b["name"] for b in breeds] == ["sava:1.0.0"] and breeds[0]["kind"] == "breeds"


def test_a_new_version_enters_at_zero_percent_and_old_clusters_stay():
    dep = done(deploy(None, {"name": "sava", "clusters": {
        "sava": {"services": [{"breed": breed("sava:1.0.0")}]},
        "db": {"services": [{"breed": breed("db:1", "5432/tcp")}]}}}))
    dep2 = deploy(dep, one("sava", "1.1.0"), now=LATER)
    assert weights(dep2) == {"sava:1.0.0": 100, "sava:1.1.0": 0}
    old, new = dep2.clusters["sava"].services
    assert old.status.phase.name == "done" and new.status.phase.name == "initiated" and new.status.since == LATER
    assert "db" in dep2.clusters and dep2.clusters["db"].services[0].status.phase.name == "done"


def test_changing_scale_or_env_sends_a_service_back_to_initiated():
    dep = done(deploy(None, one("sava")))
    same = deploy(dep, one("sava"), now=LATER)
    assert same.clusters["sava"].services[0].status.phase.name == "done"
    scaled = deploy(dep, one("sava", scale={"cpu": 2, "memory": "1GB", "instances": 3}), now=LATER)
    (s,) = scaled.clusters["sava"].services
    assert s.status.phase.name == "initiated" and s.scale.instances == 3 and s.status.since == LATER
    root = one("sava")
    root["clusters"]["sava"]["services"][0]["breed"]["environment_variables"] = {"X": "~"}
    dep = done(deploy(None, root))
    root["environment_variables"] = {"sava.X": "1"}
    assert deploy(dep, root, now=LATER).clusters["sava"].services[0].status.phase.name == "initiated"


def test_cluster_gateways_are_replaced_when_given():
    dep = done(deploy(deploy(None, one("sava")), one("sava", "1.1.0")))
    bp = both()
    bp["clusters"]["sava"]["gateways"] = {"routes": {"sava:1.1.0": {"weight": "30%"}}}
    dep2 = deploy(dep, bp, now=LATER)
    assert weights(dep2) == {"sava:1.1.0": 30, "sava:1.0.0": 70}
    assert all(s.status.phase.name == "initiated" for s in dep2.clusters["sava"].services)
    bp["clusters"]["sava"]["gateways"] = {"webport": {"routes": {
        "sava:1.0.0": {"weight": "50%"}, "sava:1.1.0": {"weight": "50%", "condition": "user-agent == Firefox"}}}}
    dep3 = deploy(dep2, bp)
    assert weights(dep3) == {"sava:1.0.0": 50, "sava:1.1.0": 50}
    assert dep3.clusters["sava"].gateways["webport"].routes["sava:1.1.0"].condition_strength == 100


def test_blueprint_gateways_must_route_to_this_deployment():
    bp = one("sava")
    bp["gateways"] = {"9050": "sava/webport"}
    dep = deploy(None, bp)
    assert list(dep.gateways) == ["9050/http"]
    bp["gateways"] = {"9051": "sava/nope"}
    with pytest.raises(ValidationFailed):
        deploy(None, bp)


def test_slice_marks_for_undeployment_and_rebalances():
    dep = done(deploy(deploy(None, one("sava")), one("sava", "1.1.0")))
    bp = both()
    bp["clusters"]["sava"]["gateways"] = {"routes": {"sava:1.0.0": {"weight": "50%"}, "sava:1.1.0": {"weight": "50%"}}}
    dep = done(deploy(dep, bp))
    sliced = slice_(dep, selection_of(blueprint(one("sava", "1.0.0"))), LATER)
    old, new = sliced.clusters["sava"].services
    assert old.status.intention == "undeployment" and old.status.phase.name == "initiated"
    assert new.status.intention == "deployment" and new.status.phase.name == "done"
    assert weights(sliced) == {"sava:1.1.0": 100}
    old.status.phase.name = "done"
    pruned = prune(sliced)
    assert [s.name for s in pruned.clusters["sava"].services] == ["sava:1.1.0"]


def test_slicing_everything_leaves_nothing():
    bp = one("sava")
    bp["gateways"] = {"9050": "sava/webport"}
    dep = done(deploy(None, bp))
    sliced = slice_(dep, None, LATER)
    assert sliced.clusters["sava"].gateways == {} and sliced.gateways == {}
    assert prune(done(sliced)) is None


def test_unknown_services_in_a_slice_are_ignored():
    dep = done(deploy(None, one("sava")))
    assert slice_(dep, {"other": ["x"], "sava": ["sava:9"]}, LATER) == dep


def test_unresolved_cluster_gateway_port_with_several_ports_is_an_error():
    bp = {"name": "x", "clusters": {"c": {"services": [{"breed": {
        "name": "b:1", "deployable": "img", "ports": {"a": "80", "b": "81"}}}],
        "gateways": {"routes": {"b:1": {"weight": "100%"}}}}}}
    with pytest.raises(ValidationFailed):
        merge(None, "x", blueprint(bp), None, NOW)
