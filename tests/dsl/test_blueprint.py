from __future__ import annotations

from chalicelib.dsl import Blueprint, parse
from chalicelib.dsl.base import Problems
from chalicelib.dsl.blueprint import UNRESOLVED_PORT

from .helpers import errors_of, load, roundtrip, store

SAVA_BLUEPRINT = """
name: sava
gateways: { 9050/http: sava/webport }
clusters:
  sava:
    services:
      - breed: sava:1.0.0
        scale: { cpu: 0.2, memory: 256MB, instances: 2 }
      - breed: sava:1.1.0
        scale: small
    gateways:
      sticky: route
      routes:
        sava:1.0.0: { weight: 90% }
        sava:1.1.0: { weight: 10%, condition: user-agent == Firefox, condition_strength: 50% }
"""

SAVA_DUMP = {
    "name": "sava",
    "kind": "blueprints",
    "metadata": {},
    "gateways": {
        "9050/http": {"routes": {"sava/webport": {"condition_strength": "0%", "rewrites": []}}, "virtual_hosts": []}
    },
    "clusters": {
        "sava": {
            "services": [
                {
                    "breed": {"reference": "sava:1.0.0"},
                    "scale": {"cpu": 0.2, "memory": "256MB", "instances": 2},
                    "environment_variables": {},
                    "arguments": [],
                    "dialects": {},
                },
                {
                    "breed": {"reference": "sava:1.1.0"},
                    "scale": {"reference": "small"},
                    "environment_variables": {},
                    "arguments": [],
                    "dialects": {},
                },
            ],
            "gateways": {
                "sticky": "route",
                "routes": {
                    "sava:1.0.0": {"weight": "90%", "condition_strength": "0%", "rewrites": []},
                    "sava:1.1.0": {
                        "weight": "10%",
                        "condition": {"condition": "user-agent == Firefox"},
                        "condition_strength": "50%",
                        "rewrites": [],
                    },
                },
                "virtual_hosts": [],
            },
            "dialects": {},
        }
    },
    "environment_variables": {},
    "dialects": {},
}


def breed(name, ports=None, **extra):
    return {"name": name, "deployable": f"img/{name}", "ports": ports or {"webport": "8080/http"}, **extra}


def test_reference_sava_blueprint():
    assert roundtrip("blueprint", load(SAVA_BLUEPRINT)) == SAVA_DUMP
    model = parse("blueprints", load(SAVA_BLUEPRINT))
    assert isinstance(model, Blueprint)
    assert list(model.clusters["sava"].gateways) == [UNRESOLVED_PORT]


def test_port_key_is_filled_in_when_the_breeds_are_known():
    resolve = store(**{"breeds/sava:1.0.0": breed("sava:1.0.0"), "breeds/sava:1.1.0": breed("sava:1.1.0")})
    dumped = roundtrip("blueprint", load(SAVA_BLUEPRINT), resolve=resolve)
    assert list(dumped["clusters"]["sava"]["gateways"]) == ["webport"]
    assert dumped["clusters"]["sava"]["gateways"]["webport"]["sticky"] == "route"


def test_port_key_needed_when_several_ports():
    doc = {"name": "b", "clusters": {"c": {"breed": breed("x", {"a": 80, "b": 81}), "gateways": {"routes": {"x": {}}}}}}
    assert errors_of("blueprint", doc) == [
        ("clusters.c.gateways", "name the port: the breeds of this cluster have several ports")
    ]


def test_cluster_shorthands():
    one = roundtrip("blueprint", {"name": "b", "clusters": {"c": "sava:1.0.0"}})
    two = roundtrip("blueprint", {"name": "b", "clusters": {"c": {"services": "sava:1.0.0"}}})
    three = roundtrip("blueprint", {"name": "b", "clusters": {"c": {"services": {"breed": "sava:1.0.0"}}}})
    four = roundtrip("blueprint", {"name": "b", "clusters": {"c": {"services": ["sava:1.0.0"]}}})
    five = roundtrip("blueprint", {"name": "b", "clusters": {"c": {"breed": {"ref": "sava:1.0.0"}}}})
    assert one == two == three == four == five
    assert one["clusters"]["c"]["services"] == [
        {"breed": {"reference": "sava:1.0.0"}, "environment_variables": {}, "arguments": [], "dialects": {}}
    ]


def test_cluster_level_service_fields_move_into_the_service():
    dumped = roundtrip(
        "blueprint",
        {"name": "b", "clusters": {"c": {"breed": "x", "scale": "small", "env": {"A": 1}, "network": "bridge"}}},
    )
    cluster = dumped["clusters"]["c"]
    assert cluster["network"] == "bridge"
    assert cluster["services"][0]["scale"] == {"reference": "small"}
    assert cluster["services"][0]["environment_variables"] == {"A": "1"}


def test_inline_breed_and_scale_and_sla():
    dumped = roundtrip(
        "blueprint",
        {
            "name": "b",
            "clusters": {
                "c": {
                    "services": [{"breed": breed("x"), "scale": {"cpu": "500m", "memory": "1Gi"},
                                  "health_checks": [], "dialects": {"docker": {"labels": {"a": "b"}}}}],
                    "sla": {"type": "response_time_sliding_window", "threshold": {"upper": 1000, "lower": 100},
                            "window": {"interval": 600, "cooldown": 600},
                            "escalations": [{"type": "scale_instances", "minimum": 1, "maximum": 3, "scale_by": 1}]},
                    "gateways": {"webport": {"routes": {"x": {"weight": "100%"}}}},
                }
            },
        },
    )
    service = dumped["clusters"]["c"]["services"][0]
    assert service["scale"] == {"cpu": 0.5, "memory": "1024MB", "instances": 1}
    assert service["health_checks"] == []
    assert dumped["clusters"]["c"]["sla"]["window"] == {"interval": "600s", "cooldown": "600s"}


def test_at_least_one_service_and_cluster():
    assert errors_of("blueprint", {"name": "b", "clusters": {}}) == [
        ("clusters", "a blueprint needs at least one cluster with a service")
    ]
    assert errors_of("blueprint", {"name": "b", "clusters": {"c": {"services": []}}}) == [
        ("clusters.c.services", "a cluster needs at least one service")
    ]


def test_breed_names_unique_in_a_blueprint():
    doc = {"name": "b", "clusters": {"a": "x", "b": {"services": ["y", {"breed": breed("x")}]}}}
    assert errors_of("blueprint", doc) == [
        ("clusters.b.services[1].breed", "breed 'x' is used more than once in this blueprint")
    ]


def test_cluster_gateway_rules():
    doc = {
        "name": "b",
        "clusters": {
            "c": {
                "services": [{"breed": breed("x", {"web": "80/tcp"})},
                             {"breed": breed("y", {"web": "80/tcp"})}],
                "gateways": {
                    "web": {"sticky": "instance", "routes": {"x": {"weight": "60%", "condition": "has cookie a"},
                                                             "y": {"weight": "50%"}, "z": {}}},
                },
            }
        },
    }
    assert errors_of("blueprint", doc) == [
        ("clusters.c.gateways.web.routes.z", "'z' is not a breed of this cluster"),
        ("clusters.c.gateways.web.routes", "route weights sum to 110%, more than 100%"),
        ("clusters.c.gateways.web.sticky", "sticky is only for /http ports"),
        ("clusters.c.gateways.web.routes.x.condition", "conditions are only for /http ports"),
    ]


def test_cluster_gateway_weights_may_sum_below_100():
    doc = load(SAVA_BLUEPRINT)
    doc["clusters"]["sava"]["gateways"]["routes"]["sava:1.0.0"]["weight"] = "10%"
    assert parse("blueprint", doc).name == "sava"


def test_condition_strength_range_and_default():
    doc = load(SAVA_BLUEPRINT)
    routes = doc["clusters"]["sava"]["gateways"]["routes"]
    routes["sava:1.1.0"]["condition_strength"] = "101%"
    assert errors_of("blueprint", doc) == [
        ("clusters.sava.gateways.routes.sava:1.1.0.condition_strength", "percentage '101%' out of range 0..100%")
    ]
    del routes["sava:1.1.0"]["condition_strength"]
    dumped = roundtrip("blueprint", doc)
    assert dumped["clusters"]["sava"]["gateways"]["routes"]["sava:1.1.0"]["condition_strength"] == "100%"


def test_blueprint_gateway_rules():
    doc = {
        "name": "b",
        "gateways": {
            9050: "c/webport",
            "9051/tcp": {"sticky": "route", "routes": {"c/webport": {"weight": "50%"}}},
            "9052": {"routes": {"nope/webport": {}, "c/other": {}, "c": {}}},
        },
        "clusters": {"c": {"breed": breed("x")}},
    }
    assert errors_of("blueprint", doc) == [
        ("gateways.9051/tcp.routes", "route weights sum to 50%; they must sum to 0% or 100%"),
        ("gateways.9051/tcp.sticky", "sticky is only for /http ports"),
        ("gateways.9052/http.routes.nope/webport", "'nope/webport' is not `<cluster>/<port>` of this blueprint"),
        ("gateways.9052/http.routes.c/other", "'other' is not a port of cluster 'c'"),
        ("gateways.9052/http.routes.c", "'c' is not `<cluster>/<port>` of this blueprint"),
    ]


def test_duplicate_gateway_ports():
    doc = {"name": "b", "gateways": {"9050/http": "c/p", 9050: "c/p", "9050/tcp": "c/p"}, "clusters": {"c": "x"}}
    assert errors_of("blueprint", doc) == [
        ("gateways.9050", "port 9050 is already used by gateway '9050/http'"),
        ("gateways.9050/tcp", "port 9050 is already used by gateway '9050/http'"),
    ]


def test_escalation_targets_name_clusters():
    sla = {"type": "escalation_only", "escalations": [
        {"type": "scale_instances", "minimum": 1, "maximum": 3, "scale_by": 1, "target": "db"},
        {"type": "to_one", "escalations": [{"type": "scale_cpu", "minimum": 1, "maximum": 2, "scale_by": 0.5,
                                            "target": "nope"}]},
    ]}
    doc = {"name": "b", "clusters": {"web": {"breed": "x", "sla": sla}, "db": "y"}}
    assert errors_of("blueprint", doc) == [
        ("clusters.web.sla.escalations[0].escalations[1].escalations[0].target",
         "escalation target 'nope' is not a cluster of this blueprint"),
    ]


def test_dependencies_present_in_the_blueprint():
    doc = {
        "name": "b",
        "clusters": {
            "web": {"breed": breed("sava", dependencies={"db": "mysql:5.*", "cache": "redis"})},
            "db": "mysql:5.7",
        },
    }
    assert errors_of("blueprint", doc) == [
        ("clusters.web.services[0].breed.dependencies.cache",
         "dependency 'redis' is not satisfied by a breed of this blueprint"),
    ]
    # A referenced breed's dependencies are the deployment's business, as in Vamp: the blueprint
    # is stored; dependency_problems finds them when asked with a resolver.
    resolve = store(**{"breeds/sava": breed("sava", dependencies={"db": "postgres"})})
    doc = {"name": "b", "clusters": {"web": "sava"}}
    blueprint = parse("blueprint", doc, resolve=resolve)
    problems = Problems()
    blueprint.dependency_problems(problems, resolve)
    assert list(problems) == [
        (("clusters", "web", "services", 0, "breed", "dependencies", "db"),
         "dependency 'postgres' is not satisfied by a breed of this blueprint"),
    ]


def test_environment_variables_scopes():
    doc = {
        "name": "b",
        "environment_variables": {"web.PASS": "x", "nope.A": "y", "PLAIN": "z"},
        "clusters": {"web": {"services": {"breed": breed("x", environment_variables={"PASS": None}),
                                          "environment_variables": {"PASS": "s", "TYPO": "t"}}}},
    }
    assert errors_of("blueprint", doc) == [
        ("clusters.web.services[0].environment_variables.TYPO", "'TYPO' is not an environment variable of breed 'x'"),
        ("environment_variables.nope.A", "expected `<cluster>.<variable>` naming a cluster"),
        ("environment_variables.PLAIN", "expected `<cluster>.<variable>` naming a cluster"),
    ]


def test_structural_errors_listed_together():
    doc = load(SAVA_BLUEPRINT)
    doc["clusters"]["sava"]["services"][0]["scale"]["memory"] = "256XB"
    doc["clusters"]["sava"]["services"][1]["scale"] = {"cpu": 1}
    doc["clusters"]["sava"]["gateways"]["routes"]["sava:1.1.0"]["condition"] = "user-agent == Fire\nfox"
    doc["gateways"]["9050"] = "sava/webport"
    doc["colour"] = "red"
    assert errors_of("blueprint", doc) == [
        ("gateways.9050", "port 9050 is already used by gateway '9050/http'"),
        ("clusters.sava.services[0].scale.memory", "invalid memory '256XB': e.g. 256MB, 1GB, 512Mi, 1Gi"),
        ("clusters.sava.services[1].scale.memory", "required"),
        ("clusters.sava.gateways.routes.sava:1.1.0.condition.condition", "character '\\n' is not allowed at position 19"),
        ("colour", "unknown field"),
    ]
