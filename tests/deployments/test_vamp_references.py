"""References a stored blueprint or breed leaves open are resolved when it is deployed (Vamp's
"split a monolith": dependencies on breeds inline in other clusters), or the deploy is a 400
naming them; a breed variable's alias is what the container sees."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from chalicelib import dsl
from chalicelib.deployments.merge import merge
from chalicelib.deployments.sync import service_spec
from chalicelib.errors import ValidationFailed
from tests.deployments.helpers import NOW, breed, deploy

MONOLITH = yaml.safe_load((Path(__file__).parents[1] / "dsl" / "vamp_cases" / "tutorials" /
                           "split_a_monolith.yml").read_text())
NS = "vamprefs"


def test_split_a_monolith_deploys_its_three_clusters_dependencies_first():
    bp = dsl.parse("blueprints", MONOLITH, resolve=lambda k, n: None)
    dep, inline = merge(None, "sava:1.2", bp, lambda k, n: None, NOW)
    assert sorted(b["name"] for b in inline) == ["sava-backend1:1.2.0", "sava-backend2:1.2.0", "sava-frontend:1.2.0"]
    assert set(dep.clusters) == {"sava", "backend1", "backend2"}
    frontend = dep.clusters["sava"].services[0]
    spec = service_spec(dep, "sava", frontend, {("backend1", "webport"): 40001, ("backend2", "webport"): 40002}, "10.0.0.9")
    assert spec.env == {"BACKEND_1": "http://10.0.0.9:40001/api/message", "BACKEND_2": "http://10.0.0.9:40002/api/message"}


def test_a_dependency_nobody_deploys_is_a_400_at_deploy_time():
    doc = {"name": "x", "clusters": {"web": {"services": [{"breed": breed("web:1", dependencies={"db": "mysql:1"})}]}}}
    bp = dsl.parse("blueprints", {**doc, "clusters": {**doc["clusters"], "db": "mysql:1"}}, resolve=lambda k, n: None)
    stored = {("breeds", "mysql:1"): breed("mysql:1")}
    assert deploy(None, bp, lambda k, n: stored.get((k, n))).clusters["db"].services[0].name == "mysql:1"
    # the stored breed `web:2` depends on `mysql:1`, which this deployment does not run
    stored[("breeds", "web:2")] = breed("web:2", dependencies={"db": "mysql:1"})
    lone = dsl.parse("blueprints", {"name": "y", "clusters": {"web": "web:2"}})
    with pytest.raises(ValidationFailed) as caught:
        merge(None, "y", lone, lambda k, n: stored.get((k, n)), NOW)
    assert [(e.path, e.reason) for e in caught.value.errors] == [
        ("clusters.web.services[0].breed.dependencies.db",
         "breed 'mysql:1' is not deployed in deployment 'y': add it to the blueprint (or deploy it first)")]


def test_the_container_sees_the_alias():
    bp = {"name": "a", "clusters": {
        "db": {"services": [{"breed": breed("db:1", environment_variables={"timeout[TIME_OUT]": "10"})}]},
        "web": {"services": [{"breed": breed("web:1", environment_variables={"T": "$db.environment_variables.timeout"},
                                             dependencies={"db": "db:1"})}]}}}
    dep = deploy(None, bp)
    # a reference names the variable (`timeout`), the container gets its alias
    assert service_spec(dep, "db", dep.clusters["db"].services[0], {}, "h").env == {"TIME_OUT": "10"}
    assert service_spec(dep, "web", dep.clusters["web"].services[0], {}, "h").env == {"T": "10"}


def test_stored_blueprint_with_open_references_deploys_once_they_exist(api):
    blueprint = {"name": "later", "clusters": {"web": {"services": [{"breed": "web:9"}]}}}
    assert api.post(f"/{NS}/api/v1/blueprints", blueprint).status_code == 201  # stored, unresolved
    r = api.post(f"/{NS}/api/v1/deployments?validate_only=true", {"reference": "later"})
    assert r.status_code == 400, r.body
    assert [(e["path"], e["reason"]) for e in r.json["errors"]] == [("clusters.web.services[0].breed", "unknown breed 'web:9'")]
    front = {"name": "web:9", "deployable": "x/web", "dependencies": {"db": "db:9"}}
    assert api.post(f"/{NS}/api/v1/breeds", front).status_code == 201  # its own dependency unresolved too
    r = api.post(f"/{NS}/api/v1/deployments?validate_only=true", {"reference": "later"})
    assert r.status_code == 400, r.body
    assert [e["path"] for e in r.json["errors"]] == ["clusters.web.services[0].breed.dependencies.db"]
    both = {"name": "later", "clusters": {"web": {"services": [{"breed": "web:9"}]},
                                          "db": {"services": [{"breed": {"name": "db:9", "deployable": "x/db"}}]}}}
    assert api.put(f"/{NS}/api/v1/blueprints/later", both).status_code == 200
    r = api.post(f"/{NS}/api/v1/deployments?validate_only=true", {"reference": "later"})
    assert r.status_code in (200, 202), r.body
