"""Vamp's own reader fixtures and tutorial files (tests/dsl/vamp_cases/), read as Vamp's reader
specs say: what Vamp accepts we accept (and read back the same), what it refuses we refuse with
a 400 naming the field. Differences we keep on purpose are in
docs/decisions/0029-vamp-dsl-fidelity.md and asserted here as such."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from chalicelib.dsl import dump, parse
from chalicelib.dsl.units import parse_percent
from chalicelib.errors import ValidationFailed

from .helpers import errors_of, roundtrip, store

CASES = Path(__file__).parent / "vamp_cases"


def case(name: str):
    return yaml.safe_load((CASES / f"{name}.yml").read_text())


def kind_of(name: str) -> str:
    return {"tutorials": "blueprints"}.get(name.split("/")[0], name.split("/")[0] + "s")


# -- Vamp accepts ------------------------------------------------------------------------------------

ACCEPTED = [
    "tutorials/split_a_monolith",
    "breed/breed5", "breed/breed6", "breed/breed8",  # {breed: name}, {breed: {reference}}, {breed: {name, ...}}
    "breed/breed23",  # timeout[TIME_OUT]
    "breed/breed38", "breed/breed39",  # health-check paths without a leading /
    "blueprint/blueprint5", "blueprint/blueprint7",  # generic SLAs and escalations, SLA reference + escalations
    "blueprint/blueprint34",  # a dependency on a breed nobody stored yet
    "blueprint/blueprint42",  # a cluster given as a list
    "blueprint/blueprint47",  # dialect:
    "blueprint/blueprint50",  # a service's HEAP[test]
    "blueprint/blueprint76",  # a named blueprint gateway with its port inside
    "blueprint/blueprint83", "blueprint/blueprint84",  # empty condition
    "blueprint/blueprint90",  # boolean metadata, nested, also on a blueprint gateway
    "blueprint/blueprint91",  # health check path without /
    "gateway/gateway23",  # a route selector
    "sla/sla1", "sla/sla2", "sla/sla4", "sla/sla5", "sla/sla6",  # generic types, to_one/to_all shorthands
    "workflow/workflow10", "workflow/workflow11",  # YAML timestamps in `start`
]


@pytest.mark.parametrize("name", ACCEPTED)
def test_what_vamp_accepts_is_accepted_and_reads_back_the_same(name):
    roundtrip(kind_of(name), case(name))


def test_split_a_monolith_depends_on_breeds_inline_in_other_clusters():
    """Vamp's tutorial: sava-frontend depends on the backends defined inline in the other two
    clusters. The store knows none of them (the resolver finds nothing) and it is accepted."""
    blueprint = parse("blueprints", case("tutorials/split_a_monolith"), resolve=store())
    frontend = blueprint.clusters["sava"].services[0].breed
    assert {a: d.reference for a, d in frontend.dependencies.items()} == {
        "backend1": "sava-backend1:1.2.0", "backend2": "sava-backend2:1.2.0"}
    assert parse("breeds", dump(frontend), resolve=store()).dependencies == frontend.dependencies


def test_a_dependency_not_stored_yet_is_stored_as_a_reference():
    breed = parse("breeds", {"name": "monarch", "deployable": "x", "dependencies": {"db": "mysql"}}, resolve=store())
    assert dump(breed)["dependencies"] == {"db": {"reference": "mysql"}}


@pytest.mark.parametrize("name", ["breed/breed5", "breed/breed6"])
def test_breed_wrapped_dependency_is_a_reference(name):
    assert dump(parse("breeds", case(name)))["dependencies"] == {"db": {"reference": "mysql"}}


def test_breed_wrapped_inline_dependency_is_the_breed():
    assert dump(parse("breeds", case("breed/breed8")))["dependencies"]["db"]["deployable"] == {
        "type": "container/docker", "definition": "magneticio/mysql:latest"}


def test_a_dependency_is_breed_alone():
    doc = {"name": "b", "deployable": "x", "dependencies": {"db": {"breed": "mysql", "weight": 1}}}
    assert errors_of("breeds", doc) == [("dependencies.db.weight", "unknown field (a dependency is `breed: ...` alone)")]


def test_environment_variable_alias_is_kept_and_is_what_the_container_sees():
    breed = parse("breeds", case("breed/breed23"))
    assert set(breed.environment_variables) == {"period", "timeout"}
    assert breed.container_name("timeout") == "TIME_OUT" and breed.container_name("period") == "period"
    assert dump(breed)["environment_variables"] == {"period": "100", "timeout[TIME_OUT]": "10"}
    # Vamp keeps aliases on a breed's variables only: a service's alias is read and dropped
    service = parse("blueprints", case("blueprint/blueprint50")).clusters["supersonic"].services[0]
    assert service.environment_variables == {"HEAP": "2GB"}


def test_aliases_are_names_and_not_a_field():
    assert errors_of("breeds", {"name": "b", "deployable": "x", "environment_variables": {"a[b c]": 1}})[0][0] == \
        "environment_variables.a[b c]"
    assert errors_of("breeds", {"name": "b", "deployable": "x", "environment_aliases": {"a": "b"}}) == [
        ("environment_aliases", "unknown field")]


def test_health_check_path_without_slash_is_rooted():
    checks = parse("breeds", case("breed/breed38")).health_checks
    assert [c.path for c in checks] == ["/path/to/check", "/path/to/check2"]


def test_generic_sla_and_escalations_keep_their_parameters():
    sla = dump(parse("slas", case("sla/sla1")))
    assert sla["type"] == "response_time"
    assert sla["threshold"] == {"upper": 1000, "lower": 100} and sla["window"] == {"interval": 600, "cooldown": 600}
    assert sla["escalations"] == [{"type": "scale_nothing", "minimum": 1, "maximum": 4, "scale_by": 1}]
    assert "parameters" not in sla
    assert errors_of("slas", {"name": "s", "type": "escalation_only", "parameters": {}}) == [
        ("parameters", "unknown field")]


def test_to_one_and_to_all_shorthands():
    sla = dump(parse("slas", case("sla/sla6")))
    group = sla["escalations"][0]
    assert group["type"] == "to_all" and group["escalations"][0] == {"reference": "notify"}
    to_one = group["escalations"][1]
    assert to_one["type"] == "to_one" and [e.get("type") for e in to_one["escalations"]] == ["scale_instances", "to_all"]
    assert to_one["escalations"][1]["escalations"][1] == {"reference": "email"}
    assert dump(parse("slas", case("sla/sla4")))["escalations"][0]["escalations"][1]["type"] == "to_one"


def test_sla_reference_with_escalations():
    sla = dump(parse("blueprints", case("blueprint/blueprint5")))["clusters"]["notorious"]["sla"]
    assert sla["reference"] == "strong-mountain"
    assert [e.get("reference", e.get("type")) for e in sla["escalations"][0]["escalations"]] == [
        "red-flag", "hideous-screaming", "cloud-beam"]


def test_cluster_as_a_list_and_dialect():
    blueprint = parse("blueprints", case("blueprint/blueprint42"))
    assert blueprint.clusters["supersonic"].services[0].breed.reference == "sava1"
    viper = parse("blueprints", case("blueprint/blueprint47")).clusters["viper"]
    assert viper.dialects == {"marathon": {"u": "i"}}


def test_named_blueprint_gateway_is_the_gateway_of_its_port():
    dumped = dump(parse("blueprints", case("blueprint/blueprint76")))
    assert list(dumped["gateways"]) == ["8080/http"]
    assert list(dumped["gateways"]["8080/http"]["routes"]) == ["notorious/web"]
    doc = {"name": "b", "clusters": {"c": "x"}, "gateways": {"8080": {"port": "8080", "routes": "c/web"}}}
    assert errors_of("blueprints", doc) == [
        ("gateways.8080.port", "the key is the port already: give `port` only under a name")]
    doc = {"name": "b", "clusters": {"c": "x"}, "gateways": {"8080": "c/web", "web": {"port": 8080, "routes": "c/web"}}}
    assert errors_of("blueprints", doc) == [("gateways.web.port", "port 8080 has a gateway already")]
    doc = {"name": "b", "clusters": {"c": "x"}, "gateways": {"web": {"routes": "c/web"}}}
    assert errors_of("blueprints", doc) == [
        ("gateways.web", "'web' is not a port: key a gateway by its port, or by a name with `port` inside")]


@pytest.mark.parametrize("name", ["blueprint/blueprint83", "blueprint/blueprint84"])
def test_empty_condition_is_no_condition(name):
    route = parse("blueprints", case(name)).clusters["supersonic"].gateways[""].routes["sava"]
    assert route.condition is None and route.condition_strength == 0


def test_nested_and_boolean_metadata():
    dumped = dump(parse("blueprints", case("blueprint/blueprint90")))
    assert dumped["metadata"] == {"labels": {"essential": True}}
    assert dumped["gateways"]["8080/http"]["metadata"] == {"labels": {"essential": False}}
    assert errors_of("breeds", {"name": "b", "deployable": "x", "metadata": {"a": {"b": math.nan}}}) == [
        ("metadata.a.b", "not a finite number")]
    assert errors_of("breeds", {"name": "b", "deployable": "x", "metadata": {"a": [10**5000]}}) == [
        ("metadata.a[0]", "a number that large")]


def test_rewrite_path_without_a_leading_slash():
    rewrite = parse("rewrites", {"name": "r", "path": "a if user-agent == Firefox"})
    assert rewrite.new_path == "a"


def test_timestamp_start_is_kept_as_iso_text():
    dumped = roundtrip("workflows", case("workflow/workflow10"))
    assert dumped["schedule"]["time"]["start"] == "2007-12-03T08:15:30+00:00"


def test_import_of_a_stored_artifact_by_kind_and_name():
    resolve = store(**{"breeds/sava": {"name": "sava", "kind": "breeds", "metadata": {}, "deployable": "x/sava",
                                       "ports": {"webport": "8080/http"}},
                       "templates/templateA": {"name": "templateA", "kind": "templates", "metadata": {},
                                               "environment_variables": {"A": "1"}}})
    doc = {**case("template/template4"), "name": "sava-copy"}
    breed = dump(parse("breeds", doc, resolve=resolve))
    assert breed["name"] == "sava-copy" and breed["ports"] == {"webport": "8080/http"}
    assert breed["environment_variables"] == {"A": "1"}


# -- Vamp refuses --------------------------------------------------------------------------------------

REFUSED = [
    ("breed/breed16", "environment_variables.port", "$db.ports.web: breed 'mysql' has no port 'web'"),
    ("breed/breed20", "constants.port", "a constant needs a value"),
    ("breed/breed34", "arguments[0].privileged", "privileged is `true` or `false` (got '1')"),
    ("blueprint/blueprint16", "clusters.notorious.gateways.routes.nocturnal-viper.name",
     "a route is a reference or an inline route, not both: drop `name`, or give only `reference`"),
    ("blueprint/blueprint28", "environment_variables.supersonic.port",
     "'port' is not an environment variable of a breed of cluster 'supersonic'"),
    ("blueprint/blueprint29", "environment_variables.supersonic.http",
     "'http' is not an environment variable of a breed of cluster 'supersonic'"),
    ("blueprint/blueprint30", "environment_variables.supersonic.port",
     "'port' is not an environment variable of a breed of cluster 'supersonic'"),
    ("blueprint/blueprint35", "clusters.supersonic.services[0].breed.dependencies.es",
     "dependency 'elastic-search' is not satisfied by a breed of this blueprint"),
    ("blueprint/blueprint53", "clusters.supersonic.services[0].environment_variables.HEAP",
     "a service's environment variable needs a value"),
    ("blueprint/blueprint81", "clusters.notorious.services[0].arguments[0].privileged",
     "privileged is `true` or `false` (got 'abcd')"),
    ("blueprint/blueprint94", "clusters.notorious.services[0].health_checks[0].port",
     "port 'unresolveable' is not a port of breed 'nocturnal-viper'"),
    ("blueprint/blueprint101", "clusters.frontend.services[0].breed.environment_variables."
                               "SAVA_RUNNER_HTTP_DEPENDENCY_URL1", "$backend.ports.ABC: breed 'backend' has no port 'ABC'"),
    ("gateway/gateway21", "selector", "invalid selector: expected a selector"),
    ("gateway/gateway24", "routes.web.selector", "invalid selector: expected a selector"),
    ("gateway/gateway25", "routes.web/port.selector", "a selector is only for a route to one gateway by name"),
    ("gateway/gateway27", "selector", "invalid selector: '[' at position 7 is not a regular expression"),
    ("workflow/workflow20", "arguments[0].privileged", "privileged is `true` or `false` (got 'abcd')"),
    ("workflow/workflow22", "environment_variables.HEAP", "a workflow's environment variable needs a value"),
    ("workflow/workflow23", "environment_variables.THEME", "'THEME' is not an environment variable of breed 'metrics'"),
    ("template/template5", "import", "an import names a template (`<name>`) or an artifact (`<kind>/<name>`)"),
    ("template/template6", "import", "invalid import 'a/b/c': `<name>` or `<kind>/<name>`"),
]


@pytest.mark.parametrize("name, path, reason", REFUSED)
def test_what_vamp_refuses_is_a_400_naming_the_field(name, path, reason):
    kind = "breeds" if name.startswith("template/") else kind_of(name)  # a template's import, as a breed's
    errors = errors_of(kind, case(name), resolve=store())
    assert any(p == path and r.startswith(reason) for p, r in errors), errors


@pytest.mark.parametrize("placeholder", [None, "~"])  # YAML's `~`, and JSON users' string
def test_a_service_or_workflow_placeholder_nothing_can_fill(placeholder):
    blueprint = {"name": "b", "clusters": {"c": {"breed": "x", "environment_variables": {"A": placeholder}}}}
    assert errors_of("blueprints", blueprint) == [
        ("clusters.c.services[0].environment_variables.A", "a service's environment variable needs a value")]
    workflow = {"name": "w", "breed": "x", "schedule": "daemon", "environment_variables": {"A": placeholder}}
    assert errors_of("workflows", workflow) == [
        ("environment_variables.A", "a workflow's environment variable needs a value")]
    # a breed's `~` is filled at deploy time by the blueprint or the service, as before
    assert parse("breeds", {"name": "x", "deployable": "x", "environment_variables": {"A": placeholder}}).name == "x"


def test_breed_reference_checks_wait_for_the_breed():
    """`$db.ports.x` of a dependency given by reference is checked when it is deployed."""
    doc = {"name": "b", "deployable": "x", "environment_variables": {"A": "$db.ports.x"}, "dependencies": {"db": "y"}}
    assert parse("breeds", doc).name == "b"


@pytest.mark.parametrize("selector", ["label(winter)(cold) and id(cold)", "image (^.*$)", "label (water) (ice) ",
                                      "(id(water) and not label(water)(ice)) or image(solid)", "port(8080)",
                                      "id(^water:(.*)$) or image(^ice:(.*)$)", "image((.*))", "true", ""])
def test_vamp_selectors(selector):
    doc = {"name": "g", "port": "8080/http", "selector": selector}
    assert parse("gateways", doc).selector == (selector or None)


@pytest.mark.parametrize("selector", ["winter(cold)", "port(x)", "image(a", "label(a)", "id(a) and", "id(a) id(b)",
                                      "image(()", "id(x)\n"])
def test_malformed_selectors(selector):
    assert [p for p, _ in errors_of("gateways", {"name": "g", "port": "8080/http", "selector": selector})] == ["selector"]


# -- where we differ on purpose (docs/decisions/0029) -------------------------------------------------

DIFFERENT = [
    # HAProxy has no algorithm `custom`: a gateway HAProxy refuses freezes the namespace's nodes
    ("gateway/gateway5", "routes.web/port1.balance", "invalid balance 'custom 1': unknown algorithm 'custom'"),
    # the new path `a` is Vamp's; `b` would be an HAProxy ACL no rendered configuration defines
    ("gateway/gateway6", "routes.web/port1.rewrites[0].path", "invalid rewrite condition"),
]


@pytest.mark.parametrize("name, path, reason", DIFFERENT)
def test_deliberate_differences_are_a_400_saying_why(name, path, reason):
    errors = errors_of(kind_of(name), case(name))
    assert any(p == path and r.startswith(reason) for p, r in errors), errors


def test_external_route_written_as_a_flow_sequence_key_is_refused_as_a_route():
    """`[external/1/2]:` is what Vamp's YAML reader makes of the flow sequence; ours is
    `[host:port]` (egress-checked), so the key's text is refused with the reason."""
    doc = {"name": "sava", "port": "8080/http", "routes": {"[external/1/2]": {"weight": "100%"}}}
    assert errors_of("gateways", doc) == [
        ("routes.[external/1/2]", "invalid external route '[external/1/2]': `[host:port]`")]


# -- numbers no percentage can be ------------------------------------------------------------------

@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, 1e300, 10**5000, -(10**40), "1e400"],
                         ids=["inf", "-inf", "nan", "1e300", "5000 digits", "-1e40", "text 1e400"])
def test_non_finite_and_huge_percentages_are_refused_not_a_crash(value):
    with pytest.raises(ValueError):
        parse_percent(value)
    gateway = {"name": "g", "port": "9050/http", "routes": {"a/b": {"weight": value}}}
    assert [p for p, _ in errors_of("gateways", gateway)] == ["routes.a/b.weight"]
    policy = {"name": "p", "steps": [value]}
    assert "steps" in " ".join(p for p, _ in errors_of("release-policies", policy))
    with pytest.raises(ValidationFailed):
        parse("release-policies", {"name": "p", "steps": {"step": value}})
