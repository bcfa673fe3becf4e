"""References between artifacts: listing them, and expanding or collapsing them.

Works on the models (every reference is a `Ref` subclass that knows its kind), so it follows
exactly the positions the DSL allows; `expand_references` and `only_references` take and give
dumped dicts, as the API's `expand_references` / `only_references` flags need.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from pydantic import BaseModel

from .base import Artifact, Ref
from .document import dump, parse
from .registry import KINDS, REF_TYPES


@dataclass(frozen=True)
class Reference:
    kind: str  # plural kind of the referenced artifact
    name: str
    path: str  # where, in the referring document (`clusters.sava.services[0].breed`)


def _join(path: str, part: Any) -> str:
    if isinstance(part, int):
        return f"{path}[{part}]"
    return f"{path}.{part}" if path else str(part)


def _children(node: Any, path: str):
    """(child, path) for the fields of a model and the items of lists and dicts."""
    if isinstance(node, BaseModel):
        for field in type(node).model_fields:
            yield getattr(node, field), _join(path, field)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield item, _join(path, i)
    elif isinstance(node, dict):
        for key, item in node.items():
            yield item, _join(path, key)


def references(artifact: Any, path: str = "") -> list[Reference]:
    """Every reference inside an artifact (not inside the artifacts it references)."""
    if isinstance(artifact, Ref):
        return [Reference(artifact.kind, artifact.reference, path)]
    found: list[Reference] = []
    for child, child_path in _children(artifact, path):
        if isinstance(child, (BaseModel, list, dict)):
            found.extend(references(child, child_path))
    return found


def _apply(value: Any, change: Callable[[Any], Any]) -> Any:
    changed = change(value)
    return _transform(value, change) if changed is value else changed


def _transform(node: Any, change: Callable[[Any], Any]) -> Any:
    """Rebuild the tree with `change` applied to every value below the root; a changed value
    is taken as final (so `change` controls its own recursion), an unchanged one is walked."""
    if isinstance(node, list):
        return [_apply(item, change) for item in node]
    if isinstance(node, dict):
        return {key: _apply(item, change) for key, item in node.items()}
    if isinstance(node, BaseModel):
        updates = {}
        for field in type(node).model_fields:
            value = getattr(node, field)
            if isinstance(value, (BaseModel, list, dict)):
                new = _apply(value, change)
                if new is not value:
                    updates[field] = new
        return node.model_copy(update=updates) if updates else node
    return node


def expand_references(kind: str, doc: dict, resolve: Callable[[str, str], dict | None]) -> dict:
    """Replace references by the stored artifacts they name, recursively; unknown ones stay."""

    def change(value: Any, seen: tuple = ()) -> Any:
        if not isinstance(value, Ref):
            return value
        key = (value.kind, value.reference)
        if key in seen:
            return value  # a cycle of references: leave the inner one as it is
        stored = resolve(value.kind, value.reference)
        if not isinstance(stored, dict):
            return value
        # An inline route has no name (Vamp: a route is a reference or inline, not both): the
        # expanded document reads back as it is shown.
        drop = ("kind", "name") if value.kind == "routes" else ("kind",)
        try:
            inline = KINDS[value.kind].model_validate({k: v for k, v in stored.items() if k not in drop})
        except ValueError:
            return value
        return _transform(inline, lambda v: change(v, (*seen, key)))

    return dump(_transform(parse(kind, doc), change))


def only_references(kind: str, doc: dict) -> dict:
    """Replace named inline artifacts by references to them (anonymous ones stay inline)."""

    def change(value: Any) -> Any:
        if isinstance(value, Artifact) and value.name is not None and value.kind in REF_TYPES:
            return REF_TYPES[value.kind](reference=value.name)
        return value

    return dump(_transform(parse(kind, doc), change))
