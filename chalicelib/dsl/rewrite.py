"""Rewrite: `{name, path: "<new path> if <condition>"}`, rendered as `http-request set-path`.

The new path is an HAProxy log-format string, so it is restricted to a safe charset where `%`
only opens a sample fetch `%[...]` with safe contents; the condition uses our grammar.
"""
from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, model_validator

from .base import Artifact, Ref, is_reference, ref_or
from .condition_grammar import Node, parse_tree

_LITERAL = r"[A-Za-z0-9\-._~/:@!+,;=*&]"
_SAMPLE = r"%\[[A-Za-z0-9_.,():\-/^]+\]"
# Vamp takes any path (`path: a if b` in its own fixtures): a literal or a sample first, never
# `-` (HAProxy could read a flag), then the safe charset.
_FIRST = r"[A-Za-z0-9._~/:@!+,;=*&]"
_NEW_PATH_RE = re.compile(rf"^(?:{_FIRST}|{_SAMPLE})(?:{_LITERAL}|{_SAMPLE})*$")
# On the stripped text: `(.+?)\s*$` made the condition's trailing spaces quadratic to backtrack,
# and `\s+(.+)` can split a run of spaces in as many ways; `\s+(\S.*)` cannot.
_SPLIT_RE = re.compile(r"^(\S+)\s+if\s+(\S.*)$", re.IGNORECASE | re.DOTALL)


def split_rewrite(text: Any) -> tuple[str, Node]:
    """'<new path> if <condition>' -> (new path, condition tree); ValueError when invalid."""
    if not isinstance(text, str):
        raise ValueError("a rewrite path is a string '<new path> if <condition>'")
    m = _SPLIT_RE.fullmatch(text.strip())
    if not m:
        raise ValueError(f"invalid rewrite {text!r}: expected '<new path> if <condition>'")
    new_path, condition = m.groups()
    if not _NEW_PATH_RE.fullmatch(new_path):
        raise ValueError(
            f"invalid new path {new_path!r}: safe URL characters only, not starting with `-`, "
            "`%` only as a sample fetch `%[...]`"
        )
    try:
        tree = parse_tree(condition)
    except ValueError as error:
        raise ValueError(f"invalid rewrite condition: {error}") from None
    return new_path, tree


def _check(text: Any) -> str:
    split_rewrite(text)
    return text.strip()


class Rewrite(Artifact):
    kind: ClassVar[str] = "rewrites"
    path: Annotated[str, AfterValidator(_check)]

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"path": data} if isinstance(data, str) else data

    @property
    def new_path(self) -> str:
        return split_rewrite(self.path)[0]

    @property
    def condition(self) -> Node:
        return split_rewrite(self.path)[1]


class RewriteRef(Ref):
    kind: ClassVar[str] = "rewrites"


def _is_rewrite_reference(value: Any) -> bool:
    """Names have no whitespace, inline rewrites always do (`a if b`)."""
    if isinstance(value, str):
        return not any(c.isspace() for c in value)
    return is_reference(value)


RewriteOrRef = ref_or(RewriteRef, Rewrite, _is_rewrite_reference)
