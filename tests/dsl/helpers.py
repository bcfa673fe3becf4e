"""Small helpers shared by the DSL tests."""
from __future__ import annotations

import pytest
import yaml

from chalicelib.dsl import dump, parse
from chalicelib.errors import ValidationFailed


def load(text: str):
    return yaml.safe_load(text)


def errors_of(kind: str, data, **kwargs) -> list[tuple[str, str]]:
    """The (path, reason) pairs parse raises; fails the test when parse succeeds."""
    with pytest.raises(ValidationFailed) as caught:
        parse(kind, data, **kwargs)
    return [(e.path, e.reason) for e in caught.value.errors]


def paths_of(kind: str, data, **kwargs) -> list[str]:
    return [path for path, _ in errors_of(kind, data, **kwargs)]


def roundtrip(kind: str, data, **kwargs):
    """parse -> dump -> parse: both the models and the dumps agree; returns the dump."""
    first = parse(kind, data, **kwargs)
    dumped = dump(first)
    second = parse(kind, dumped)
    assert second == first
    assert dump(second) == dumped
    return dumped


def store(**documents):
    """A resolve callable over {"kind/name": document}."""

    def resolve(kind: str, name: str):
        return documents.get(f"{kind}/{name}")

    return resolve
