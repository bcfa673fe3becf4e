"""Property tests: every valid document survives parse -> dump -> parse unchanged."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.dsl import KINDS, dump, parse, parse_event
from chalicelib.dsl.condition_grammar import parse_tree, to_text

from .strategies import KIND_STRATEGIES, condition_trees, events

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_every_kind_has_a_strategy():
    assert set(KIND_STRATEGIES) == set(KINDS)


@pytest.mark.parametrize("kind", sorted(KIND_STRATEGIES))
def test_parse_dump_parse(kind):
    @FAST
    @given(KIND_STRATEGIES[kind])
    def check(document):
        artifact = parse(kind, document)
        dumped = dump(artifact)
        assert dumped["kind"] == kind and dumped["name"] == document["name"]
        again = parse(kind, dumped)
        assert again == artifact
        assert dump(again) == dumped

    check()


@FAST
@given(condition_trees)
def test_condition_text_roundtrip(tree):
    assert parse_tree(to_text(tree)) == tree


@FAST
@given(st.text(max_size=40))
def test_condition_parser_never_crashes(text):
    try:
        parse_tree(text)
    except ValueError:
        pass


@FAST
@given(events)
def test_event_roundtrip(body):
    event = parse_event(body)
    assert parse_event(event.model_dump(mode="json")) == event
