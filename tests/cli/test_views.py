"""The pure edits behind update-gateway and undeploy --service, and the list's status word."""

from __future__ import annotations

import click
import pytest

from vamp_cli import views

GATEWAY = {"name": "shop/web/port", "kind": "gateways", "deployed": True, "nodes": {"generation": 3},
           "port": "20001/http", "routes": {
               "shop/web/web:1.0.0/port": {"weight": "100%", "condition_strength": "0%"},
               "shop/web/web:1.1.0/port": {"weight": "0%", "condition_strength": "0%"}}}


def test_weights_parse_vamps_notation_and_refuse_anything_else():
    assert views.parse_weights("web:1.0.0@70%, web:1.1.0@30") == {"web:1.0.0": "70%", "web:1.1.0": "30%"}
    assert views.parse_weights("a/b@c@12.5%") == {"a/b@c": "12.5%"}  # split at the last @
    for bad in ("web:1.0.0=70%", "@70%", "web@seventy", "web@1000%", "web@-5%"):
        with pytest.raises(click.BadParameter):
            views.parse_weights(bad)


def test_a_gateway_changes_only_what_was_asked_and_drops_what_the_api_computes():
    body = views.changed_gateway(GATEWAY, {"web:1.0.0": "70%", "shop/web/web:1.1.0/port": "30%"}, None, None, None)
    assert {k: r["weight"] for k, r in body["routes"].items()} == {
        "shop/web/web:1.0.0/port": "70%", "shop/web/web:1.1.0/port": "30%"}
    assert "nodes" not in body and "deployed" not in body and body["port"] == "20001/http"
    assert GATEWAY["routes"]["shop/web/web:1.0.0/port"]["weight"] == "100%"  # the input is left alone
    conditioned = views.changed_gateway(GATEWAY, {}, "web:1.1.0", "user-agent == Firefox", "50")
    assert conditioned["routes"]["shop/web/web:1.1.0/port"] == {
        "weight": "0%", "condition": {"condition": "user-agent == Firefox"}, "condition_strength": "50%"}
    cleared = views.changed_gateway(conditioned, {}, "web:1.1.0", "", None)
    assert "condition" not in cleared["routes"]["shop/web/web:1.1.0/port"]
    with pytest.raises(click.BadParameter, match="missing: web:1.1.0"):
        views.changed_gateway(GATEWAY, {"web:1.0.0": "100%"}, None, None, None)
    with pytest.raises(click.BadParameter, match="is not a route"):
        views.changed_gateway(GATEWAY, {}, "web:2.0.0", "x", None)


def test_a_slice_names_the_services_asked_for_and_no_others():
    blueprint = {"name": "shop", "clusters": {
        "web": {"services": [{"breed": {"reference": "web:1.0.0"}}, {"breed": {"reference": "web:1.1.0"}}]},
        "db": {"services": [{"breed": {"reference": "db:1"}}]}}}
    assert views.slice_of(blueprint, ("web:1.0.0", "db/db:1")) == {"name": "shop", "clusters": {
        "web": {"services": [{"breed": {"reference": "web:1.0.0"}}]},
        "db": {"services": [{"breed": {"reference": "db:1"}}]}}}
    with pytest.raises(click.BadParameter, match="no service web:9"):
        views.slice_of(blueprint, ("web:9",))


def test_a_deployments_status_word():
    def svc(phase, intention="deployment"):
        return {"status": {"intention": intention, "phase": {"name": phase}}}
    assert views.deployment_status({"clusters": {"a": {"services": [svc("done"), svc("done")]}}}) == "deployed"
    assert views.deployment_status({"clusters": {"a": {"services": [svc("done"), svc("updating")]}}}) == "deploying 1/2"
    assert views.deployment_status({"clusters": {"a": {"services": [svc("failed")]}}}) == "failed 0/1"
    assert views.deployment_status({"clusters": {"a": {"services": [svc("initiated", "undeployment")]}}}) \
        == "undeploying 0/1"
