from __future__ import annotations

import pytest

from chalicelib.dsl import dump, parse
from chalicelib.dsl.breed import value_references

from .helpers import errors_of, load, roundtrip, store

SAVA_BREED = """
name: sava:1.0.0
deployable: magneticio/sava:1.0.0
ports: { webport: 8080/http }
environment_variables: { DB_HOST: $db.host, DB_PORT: $db.ports.port, PASS: ~ }
dependencies: { db: mysql:5.* }
health_checks: { port: webport, initial_delay: 10s, timeout: 5s, interval: 10s, failures: 3 }
"""


def test_reference_sava_breed():
    dumped = roundtrip("breed", load(SAVA_BREED))
    assert dumped == {
        "name": "sava:1.0.0",
        "kind": "breeds",
        "metadata": {},
        "deployable": {"type": "container/docker", "definition": "magneticio/sava:1.0.0"},
        "ports": {"webport": "8080/http"},
        "environment_variables": {"DB_HOST": "$db.host", "DB_PORT": "$db.ports.port", "PASS": None},
        "constants": {},
        "arguments": [],
        "dependencies": {"db": {"reference": "mysql:5.*"}},
        "health_checks": [
            {"path": "/", "port": "webport", "initial_delay": "10s", "timeout": "5s", "interval": "10s",
             "failures": 3, "protocol": "HTTP"}
        ],
    }


@pytest.mark.parametrize(
    "deployable, expected",
    [
        ("magneticio/sava:1.0.0", {"type": "container/docker", "definition": "magneticio/sava:1.0.0"}),
        ("docker://magneticio/sava", {"type": "container/docker", "definition": "magneticio/sava"}),
        ({"definition": "img"}, {"type": "container/docker", "definition": "img"}),
        ({"type": "docker", "definition": "img"}, {"type": "container/docker", "definition": "img"}),
        ({"type": "application/javascript", "definition": "run()"}, {"type": "application/javascript", "definition": "run()"}),
        ({"type": "js", "definition": "run()"}, {"type": "application/javascript", "definition": "run()"}),
        ({"type": "cmd", "definition": "python -m http.server"}, {"type": "command", "definition": "python -m http.server"}),
        ({"type": "command", "definition": "sleep 1"}, {"type": "command", "definition": "sleep 1"}),
    ],
)
def test_deployable_forms(deployable, expected):
    assert roundtrip("breeds", {"name": "b", "deployable": deployable})["deployable"] == expected


def test_env_alias_ports_constants_arguments():
    dumped = roundtrip(
        "breed",
        {
            "name": "b",
            "deployable": "img",
            "ports": {"web": 8080, "admin": "9023/tcp", "x": "81"},
            "env": {"A": 1, "B": True, "C": "x", "D": 1.5},
            "constants": {"K": "v"},
            "arguments": [{"privileged": True}, {"net": "host"}],
        },
    )
    assert dumped["ports"] == {"web": "8080/http", "admin": "9023/tcp", "x": "81/http"}
    assert dumped["environment_variables"] == {"A": "1", "B": "true", "C": "x", "D": "1.5"}
    assert dumped["arguments"] == [{"privileged": "true"}, {"net": "host"}]


def test_arguments_single_map_is_split_into_one_key_maps():
    dumped = roundtrip("breed", {"name": "b", "deployable": "img", "arguments": {"a": 1, "b": 2}})
    assert dumped["arguments"] == [{"a": "1"}, {"b": "2"}]


def test_errors_are_all_listed_with_exact_paths():
    assert errors_of(
        "breed",
        {
            "name": "b c",
            "deployable": "img",
            "ports": {"web.port": "8080/udp"},
            "constants": {"a.b": "x"},
            "env": {"A": "x"},
            "environment_variables": {"A": "y"},
            "colour": "red",
        },
    ) == [("env", "give either `env` or `environment_variables`, not both")]
    got = errors_of(
        "breed",
        {
            "name": "b c",
            "ports": {"web.port": "8080/udp"},
            "constants": {"a.b": "x"},
            "arguments": [{"a": 1, "b": 2}],
            "health_checks": [{"port": "web", "initial_delay": "1x", "timeout": 1, "interval": 1, "failures": -1}],
            "colour": "red",
        },
    )
    assert [p for p, _ in got] == [
        "name",
        "deployable",
        "ports.web.port",
        "ports.web.port",
        "constants.a.b",
        "arguments[0]",
        "health_checks[0].initial_delay",
        "health_checks[0].failures",
        "colour",
    ]
    assert ("colour", "unknown field") in got
    assert ("deployable", "required") in got


def test_health_check_port_must_be_a_port_of_the_breed():
    assert errors_of(
        "breed",
        {"name": "b", "deployable": "i", "ports": {"web": 80},
         "health_checks": {"port": "admin", "initial_delay": 1, "timeout": 1, "interval": 1, "failures": 1}},
    ) == [("health_checks[0].port", "port 'admin' is not a port of this breed")]


def test_env_references_name_dependencies():
    assert errors_of(
        "breed", {"name": "b", "deployable": "i", "env": {"A": "$db.host", "B": "${db.nope.x}", "C": "$$db.host $LOCAL"}}
    ) == [
        ("environment_variables.A", "$db is not a dependency of this breed"),
        ("environment_variables.B", "invalid reference (write `$$` for a literal `$`)"),
    ]


def test_value_references():
    assert value_references("$db.host:${db.ports.port}/$$x $LOCAL") == ["db.host", "db.ports.port", "LOCAL"]


def test_dependency_forms():
    dumped = roundtrip(
        "breed",
        {"name": "a", "deployable": "i",
         "dependencies": {"x": "b:1", "y": {"ref": "c"}, "z": {"reference": "d"}, "w": {"name": "e", "deployable": "i"}}},
    )
    assert dumped["dependencies"]["x"] == {"reference": "b:1"}
    assert dumped["dependencies"]["y"] == {"reference": "c"}
    assert dumped["dependencies"]["z"] == {"reference": "d"}
    assert dumped["dependencies"]["w"]["name"] == "e"


def test_inline_dependency_needs_a_name():
    assert errors_of("breed", {"name": "a", "deployable": "i", "dependencies": {"x": {"deployable": "i"}}}) == [
        ("dependencies.x.name", "an inline breed needs a name")
    ]


def test_cycles_between_inline_breeds():
    doc = {"name": "a", "deployable": "i",
           "dependencies": {"b": {"name": "b", "deployable": "i", "dependencies": {"a": "a"}}}}
    assert errors_of("breed", doc) == [("dependencies.b", "dependency cycle: a -> b -> a")]
    assert errors_of("breed", {"name": "a", "deployable": "i", "dependencies": {"me": "a"}}) == [
        ("dependencies.me", "dependency cycle: a -> a")
    ]


def test_cycles_through_resolve_and_unknown_breeds_left_to_deploy_time():
    resolve = store(**{
        "breeds/b": {"name": "b", "deployable": "i", "dependencies": {"c": {"reference": "c"}}},
        "breeds/c": {"name": "c", "deployable": "i", "dependencies": {"a": "a"}},
    })
    doc = {"name": "a", "deployable": "i", "dependencies": {"b": "b", "m": "missing", "w": "mysql:5.*"}}
    # `missing` may be stored later or be inline in a blueprint: Vamp's BreedReader takes it
    assert errors_of("breed", doc, resolve=resolve) == [
        ("dependencies.b", "dependency cycle: a -> b -> c -> a"),
    ]
    # without resolve nothing stored can be checked
    assert parse("breed", doc).name == "a"


def test_dump_of_parse_is_stable():
    breed = parse("breed", load(SAVA_BREED))
    assert parse("breeds", dump(breed)) == breed
