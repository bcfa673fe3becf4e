from __future__ import annotations

import pytest

from chalicelib.dsl import EscalationRef, parse

from .helpers import errors_of, roundtrip

SLA = {
    "name": "sla",
    "type": "response_time_sliding_window",
    "threshold": {"upper": 1000, "lower": "100ms"},
    "window": {"interval": 600, "cooldown": "10m"},
    "escalations": [
        {"type": "scale_instances", "minimum": 1, "maximum": 3, "scale_by": 1},
        "stored-escalation",
    ],
}


def test_sla_escalation_list_is_wrapped_in_to_all():
    dumped = roundtrip("sla", SLA)
    assert dumped == {
        "name": "sla",
        "kind": "slas",
        "metadata": {},
        "type": "response_time_sliding_window",
        "threshold": {"upper": 1000, "lower": 100},
        "window": {"interval": "600s", "cooldown": "600s"},
        "escalations": [
            {"type": "to_all", "escalations": [
                {"type": "scale_instances", "minimum": 1, "maximum": 3, "scale_by": 1},
                {"reference": "stored-escalation"},
            ]}
        ],
    }


def test_single_escalation_stays_single():
    sla = parse("sla", {**SLA, "escalations": {"ref": "e"}})
    assert sla.escalations == [EscalationRef(reference="e")]
    assert roundtrip("sla", {"name": "s", "type": "escalation_only"})["escalations"] == []


def test_sla_rules():
    assert errors_of("sla", {"name": "s", "type": "response_time_sliding_window"}) == [
        ("threshold", "required for response_time_sliding_window"),
        ("window", "required for response_time_sliding_window"),
    ]
    assert errors_of("sla", {**SLA, "threshold": {"upper": 10, "lower": 20}}) == [
        ("threshold.lower", "lower is more than upper")
    ]
    assert errors_of("sla", {"name": "s", "type": "escalation_only", "window": {"interval": 1, "cooldown": 1}}) == [
        ("window", "not allowed for escalation_only")
    ]
    # another type is Vamp's generic SLA (sla/sla1.yml), but its type is still a name
    assert [p for p, _ in errors_of("sla", {"name": "s", "type": "ma gic"})] == ["type"]


@pytest.mark.parametrize(
    "doc, expected",
    [
        ({"type": "scale_instances", "minimum": 1, "maximum": 5, "scale_by": 2, "target": "db"},
         {"type": "scale_instances", "minimum": 1, "maximum": 5, "scale_by": 2, "target": "db"}),
        ({"type": "scale_cpu", "minimum": "500m", "maximum": 4, "scale_by": 0.5},
         {"type": "scale_cpu", "minimum": 0.5, "maximum": 4, "scale_by": 0.5}),
        ({"type": "scale_memory", "minimum": "512MB", "maximum": "2Gi", "scale_by": 256},
         {"type": "scale_memory", "minimum": 512, "maximum": 2048, "scale_by": 256}),
        ({"type": "to_one", "escalations": ["a", {"reference": "b"}]},
         {"type": "to_one", "escalations": [{"reference": "a"}, {"reference": "b"}]}),
    ],
)
def test_escalations(doc, expected):
    dumped = roundtrip("escalation", {"name": "e", **doc})
    assert {k: v for k, v in dumped.items() if k not in ("name", "kind", "metadata")} == expected


@pytest.mark.parametrize(
    "doc, errors",
    [
        ({"type": "scale_instances", "minimum": 1, "maximum": 5},
         [("scale_by", "required for scale_instances")]),
        ({"type": "scale_instances", "minimum": 1.5, "maximum": 5, "scale_by": 1},
         [("minimum", "a whole number of instances")]),
        ({"type": "scale_instances", "minimum": 6, "maximum": 5, "scale_by": 1},
         [("minimum", "minimum is more than maximum")]),
        ({"type": "scale_instances", "minimum": 1, "maximum": 5, "scale_by": 0},
         [("scale_by", "Input should be greater than 0")]),
        ({"type": "scale_memory", "minimum": "1XB", "maximum": 5, "scale_by": 1},
         [("minimum", "invalid memory '1XB': e.g. 256MB, 1GB, 512Mi, 1Gi")]),
        ({"type": "to_all", "escalations": []}, [("escalations", "to_all needs at least one escalation")]),
        ({"type": "to_all", "target": "x", "escalations": ["a"]}, [("target", "not allowed for to_all")]),
        ({"type": "to_all", "escalations": [{"type": "scale_cpu", "minimum": 1}]},
         [("escalations[0].maximum", "required for scale_cpu"), ("escalations[0].scale_by", "required for scale_cpu")]),
    ],
)
def test_escalation_errors(doc, errors):
    assert errors_of("escalation", {"name": "e", **doc}) == errors
