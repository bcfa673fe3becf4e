from __future__ import annotations

from datetime import datetime, timezone

import pytest

from chalicelib.dsl import Event, dump, expand_tags, parse, parse_event
from chalicelib.errors import ValidationFailed

from .helpers import errors_of, roundtrip, store


@pytest.mark.parametrize(
    "schedule, canonical",
    [
        ("daemon", "daemon"),
        ({"daemon": None}, "daemon"),
        ({"time": "PT1M"}, {"time": {"period": "PT1M"}}),
        ({"time": {"period": "P1DT2H", "start": "now", "repeat": 5}},
         {"time": {"period": "P1DT2H", "start": "now", "repeat": 5}}),
        ({"time": {"period": "PT30S", "start": "2024-01-01T00:00:00Z"}},
         {"time": {"period": "PT30S", "start": "2024-01-01T00:00:00Z"}}),
        ({"event": ["deployments:sava", "synchronization"]},
         {"event": {"tags": ["deployments:sava", "synchronization"]}}),
        ({"event": {"tags": "x"}}, {"event": {"tags": ["x"]}}),
    ],
)
def test_workflow_schedules(schedule, canonical):
    dumped = roundtrip("workflow", {"name": "w", "breed": "metrics", "schedule": schedule})
    assert dumped["schedule"] == canonical
    assert dumped["status"] == "starting"


@pytest.mark.parametrize(
    "schedule, path",
    [
        ("hourly", "schedule"),
        ({"time": "1 minute"}, "schedule.time.period"),
        ({"time": "P"}, "schedule.time.period"),
        ({"time": {"period": "PT1M", "start": "tomorrow"}}, "schedule.time.start"),
        ({"time": {"period": "PT1M", "repeat": 0}}, "schedule.time.repeat"),
        ({"event": []}, "schedule.event.tags"),
        ({"time": "PT1M", "event": ["a"]}, "schedule"),
        ({}, "schedule"),
    ],
)
def test_workflow_schedule_errors(schedule, path):
    assert [p for p, _ in errors_of("workflow", {"name": "w", "breed": "b", "schedule": schedule})] == [path]


def test_workflow_inline_breed_status_and_fields():
    dumped = roundtrip(
        "workflows",
        {
            "name": "w",
            "breed": {"name": "script", "deployable": {"type": "application/javascript", "definition": "run()\n"},
                      "environment_variables": {"VAMP_X": None}},
            "schedule": "daemon",
            "status": "suspended",
            "scale": {"cpu": 0.1, "memory": "128MB"},
            "env": {"VAMP_X": 1},
            "arguments": {"a": "b"},
        },
    )
    assert dumped["breed"]["deployable"] == {"type": "application/javascript", "definition": "run()\n"}
    assert dumped["environment_variables"] == {"VAMP_X": "1"}
    assert errors_of("workflow", {"name": "w", "breed": {"deployable": "x"}, "schedule": "daemon", "status": "odd"}) == [
        ("status", "Input should be 'starting', 'running', 'stopping', 'suspended', 'suspending' or 'restarting'"),
    ]
    assert errors_of("workflow", {"name": "w", "breed": {"deployable": "x"}, "schedule": "daemon"}) == [
        ("breed.name", "an inline breed needs a name")
    ]


def test_template_is_a_free_map():
    dumped = roundtrip("template", {"name": "t", "clusters": {"x": {"breed": "y"}}, "anything": [1, {"a": None}]})
    assert dumped == {"name": "t", "kind": "templates", "metadata": {}, "clusters": {"x": {"breed": "y"}},
                      "anything": [1, {"a": None}]}


def test_import_merges_templates_under_the_document():
    resolve = store(**{
        "templates/base": {"name": "base", "kind": "templates", "deployable": "img:1",
                           "ports": {"web": 80}, "environment_variables": {"A": "a", "B": "b"}},
        "templates/more": {"name": "more", "import": "base", "environment_variables": {"C": "c"}},
    })
    breed = parse("breed", {"name": "b", "import": ["more"], "environment_variables": {"A": "mine"}}, resolve=resolve)
    assert breed.deployable.definition == "img:1"
    assert breed.environment_variables == {"A": "mine", "B": "b", "C": "c"}
    assert breed.ports == {"web": "80/http"}


@pytest.mark.parametrize("resolve", [None, store()])
def test_unknown_template(resolve):
    assert errors_of("breed", {"name": "b", "import": "nope"}, resolve=resolve) == [("import", "unknown template 'nope'")]


def test_import_cycles_are_bounded():
    resolve = store(**{"templates/a": {"name": "a", "import": "b"}, "templates/b": {"name": "b", "import": "a"}})
    assert [p for p, _ in errors_of("breed", {"name": "x", "import": "a"}, resolve=resolve)] == ["import"]


def test_expand_tags():
    assert expand_tags(["a:b", "a", "c", "a:b", "d:e:f"]) == ["a:b", "a", "c", "d:e:f", "d"]


def test_events():
    event = parse_event({"tags": ["deployments:sava", "deployed"], "value": {"x": [1, 2]}})
    assert event.tags == ["deployments:sava", "deployments", "deployed"]
    assert event.type == "event"
    assert event.timestamp.tzinfo is not None
    dumped = event.model_dump(mode="json")
    assert parse_event(dumped) == event
    naive = parse_event({"tags": "x", "timestamp": "2024-05-01T10:00:00", "type": "metrics-1_a"})
    assert naive.timestamp == datetime(2024, 5, 1, 10, tzinfo=timezone.utc)
    assert naive.tags == ["x"]
    assert isinstance(naive, Event)


@pytest.mark.parametrize(
    "body, path",
    [
        ({"tags": []}, "tags"),
        ({}, "tags"),
        ({"tags": ["a\nb"]}, "tags[0]"),
        ({"tags": ["a"], "type": "bad type"}, "type"),
        ({"tags": ["a"], "timestamp": "yesterday"}, "timestamp"),
        ({"tags": ["a"], "colour": 1}, "colour"),
    ],
)
def test_event_errors(body, path):
    with pytest.raises(ValidationFailed) as caught:
        parse_event(body)
    assert [e.path for e in caught.value.errors] == [path]


def test_dump_of_workflow_has_kind_and_name_first():
    assert list(dump(parse("workflow", {"name": "w", "breed": "b", "schedule": "daemon"})))[:3] == ["name", "kind", "metadata"]
