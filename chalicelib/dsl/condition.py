"""Condition: a named route condition (`/conditions`), `{name, condition: "<text>"}`."""
from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, model_validator

from .base import Artifact, Ref, is_reference, ref_or
from .condition_grammar import ConditionError, Node, parse_tree


def _check(text: Any) -> str:
    parse_tree(text)  # a ConditionError is a ValueError: pydantic reports it at the field
    return text.strip()


ConditionText = Annotated[str, AfterValidator(_check)]


class Condition(Artifact):
    kind: ClassVar[str] = "conditions"
    condition: ConditionText

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"condition": data} if isinstance(data, str) else data

    @property
    def tree(self) -> Node:
        return parse_tree(self.condition)


class ConditionRef(Ref):
    kind: ClassVar[str] = "conditions"


def _is_condition_reference(value: Any) -> bool:
    """A string is inline condition text when it parses, else the name of a stored condition."""
    if isinstance(value, str):
        if any(c.isspace() for c in value):
            return False  # names have no whitespace: report the grammar's error, not the name's
        try:
            parse_tree(value)
        except ConditionError:
            return True
        return False
    return is_reference(value)


ConditionOrRef = ref_or(ConditionRef, Condition, _is_condition_reference)
