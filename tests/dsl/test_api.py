from __future__ import annotations

import pytest

from chalicelib.dsl import (
    KINDS,
    Breed,
    Reference,
    dump,
    expand_references,
    normalize_kind,
    only_references,
    parse,
    references,
)
from chalicelib.errors import ValidationFailed

from .helpers import errors_of, load, store
from .test_blueprint import SAVA_BLUEPRINT


def test_kinds():
    assert set(KINDS) == {"breeds", "blueprints", "scales", "slas", "escalations", "routes", "conditions",
                          "rewrites", "workflows", "gateways", "templates", "release-policies"}
    for plural, model in KINDS.items():
        assert model.kind == plural


@pytest.mark.parametrize("kind, plural", [("breed", "breeds"), ("breeds", "breeds"), ("SLA", "slas"),
                                          ("escalation", "escalations"), ("Template", "templates")])
def test_normalize_kind(kind, plural):
    assert normalize_kind(kind) == plural


@pytest.mark.parametrize("kind", ["deployment", "events", "", "breedss", None])
def test_normalize_kind_rejects(kind):
    with pytest.raises(ValidationFailed) as caught:
        normalize_kind(kind)
    assert caught.value.errors[0].path == "kind"


def test_document_kind_must_agree():
    assert parse("breed", {"name": "b", "kind": "breeds", "deployable": "x"}).name == "b"
    assert parse("breeds", {"name": "b", "kind": "breed", "deployable": "x"}).name == "b"
    assert errors_of("breed", {"name": "b", "kind": "scale", "deployable": "x"}) == [
        ("kind", "kind 'scale' does not agree with 'breeds'")
    ]
    assert [p for p, _ in errors_of("blueprint", {"name": "b", "clusters": {"c": {"breed": {"kind": "scales", "name": "x", "deployable": "y"}}}})] == [
        "clusters.c.services[0].breed.kind"
    ]


def test_name_required_with_the_other_errors():
    assert errors_of("scale", {"cpu": 1}) == [("name", "required"), ("memory", "required")]


def test_not_a_map():
    assert errors_of("scale", ["x"]) == [("", "a scale is a map (got list)")]


def test_unknown_keys_rejected_everywhere():
    doc = load(SAVA_BLUEPRINT)
    doc["clusters"]["sava"]["services"][0]["scale"]["x"] = 1
    doc["clusters"]["sava"]["services"][0]["y"] = 1
    doc["clusters"]["sava"]["gateways"]["routes"]["sava:1.0.0"]["z"] = 1
    assert errors_of("blueprint", doc) == [
        ("clusters.sava.services[0].scale.x", "unknown field"),
        ("clusters.sava.services[0].y", "unknown field"),
        ("clusters.sava.gateways.routes.sava:1.0.0.z", "unknown field"),
    ]


def test_no_pydantic_internals_in_paths():
    doc = {"name": "b", "clusters": {"c": {"services": [{"breed": {"name": "x", "deployable": 1},
                                                         "scale": {"cpu": "x", "memory": 1}}]}}}
    paths = [p for p, _ in errors_of("blueprint", doc)]
    assert paths == ["clusters.c.services[0].breed.deployable", "clusters.c.services[0].scale.cpu"]


def test_references_lists_every_reference():
    blueprint = parse("blueprint", {
        "name": "b",
        "clusters": {"c": {
            "services": [{"breed": "x", "scale": "small"}, {"breed": {"name": "y", "deployable": "i", "dependencies": {"d": "z"}}}],
            "sla": {"type": "escalation_only", "escalations": ["e1", "e2"]},
            "gateways": {"p": {"routes": {"x": {"condition": "cond", "rewrites": ["rw"]}, "y": "stored-route"}}},
        }, "db": "z"},
    })
    assert references(blueprint) == [
        Reference("breeds", "x", "clusters.c.services[0].breed"),
        Reference("scales", "small", "clusters.c.services[0].scale"),
        Reference("breeds", "z", "clusters.c.services[1].breed.dependencies.d"),
        Reference("conditions", "cond", "clusters.c.gateways.p.routes.x.condition"),
        Reference("rewrites", "rw", "clusters.c.gateways.p.routes.x.rewrites[0]"),
        Reference("routes", "stored-route", "clusters.c.gateways.p.routes.y"),
        Reference("escalations", "e1", "clusters.c.sla.escalations[0].escalations[0]"),
        Reference("escalations", "e2", "clusters.c.sla.escalations[0].escalations[1]"),
        Reference("breeds", "z", "clusters.db.services[0].breed"),
    ]
    assert references(parse("scale", {"name": "s", "cpu": 1, "memory": 1})) == []


def test_expand_and_only_references():
    resolve = store(**{
        "breeds/x": {"name": "x", "kind": "breeds", "deployable": "img", "dependencies": {"d": {"reference": "z"}}},
        "breeds/z": {"name": "z", "kind": "breeds", "deployable": "db", "dependencies": {"w": "w"}},
        "breeds/w": {"name": "w", "kind": "breeds", "deployable": "db", "dependencies": {"back": "z"}},
        "scales/small": {"name": "small", "kind": "scales", "cpu": 0.5, "memory": "512MB"},
    })
    doc = dump(parse("blueprint", {"name": "b", "clusters": {
        "c": {"breed": "x", "scale": "small"}, "m": "missing", "db": "z", "w": "w"}}))
    expanded = expand_references("blueprints", doc, resolve)
    service = expanded["clusters"]["c"]["services"][0]
    assert service["scale"] == {"name": "small", "cpu": 0.5, "memory": "512MB", "instances": 1}
    assert service["breed"]["name"] == "x"
    inner = service["breed"]["dependencies"]["d"]
    assert inner["name"] == "z"
    # stored data with a cycle (w <-> z) stops expanding instead of looping
    assert inner["dependencies"]["w"]["dependencies"]["back"] == {"reference": "z"}
    assert expanded["clusters"]["m"]["services"][0]["breed"] == {"reference": "missing"}
    assert only_references("blueprints", dump(parse("blueprint", {"name": "b", "clusters": {
        "c": {"breed": {"name": "x", "deployable": "i"}, "scale": {"name": "small", "cpu": 1, "memory": 1}}}}))) == dump(
        parse("blueprint", {"name": "b", "clusters": {"c": {"breed": "x", "scale": "small"}}}))


def test_only_references_keeps_anonymous_inline_artifacts():
    doc = dump(parse("blueprint", {"name": "b", "clusters": {"c": {"breed": {"name": "x", "deployable": "i"},
                                                                       "scale": {"cpu": 1, "memory": 1}}}}))
    collapsed = only_references("blueprint", doc)
    assert collapsed["clusters"]["c"]["services"][0]["breed"] == {"reference": "x"}
    assert collapsed["clusters"]["c"]["services"][0]["scale"] == {"cpu": 1.0, "memory": "1MB", "instances": 1}


def test_parse_returns_the_kinds_model():
    assert isinstance(parse("breed", {"name": "b", "deployable": "x"}), Breed)

