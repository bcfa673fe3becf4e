"""Reading and writing whole documents: templates' `import`, validation with Vamp-style error
paths (every problem at once), and the canonical dump."""
from __future__ import annotations

import json
from typing import Any, Callable

from pydantic import ValidationError
from pydantic_core import to_jsonable_python

from ..errors import FieldError, PayloadTooLarge, ValidationFailed
from .base import INLINE_TAG, REF_TAG, normalize_kind
from .names import check_name
from .registry import KINDS
from .template import deep_merge

Resolve = Callable[[str, str], "dict | None"]

_MESSAGES = {
    "missing": "required",
    "extra_forbidden": "unknown field",
}
_MAX_IMPORT_DEPTH = 10
# The canonical form of one artifact, as JSON text, is stored in one DynamoDB item (400 KB with
# its keys; a bigger one was a 500) and copied into its archive event (docs/decisions/0024).
MAX_DOCUMENT_BYTES = 256 * 1024


def error_path(loc: tuple) -> str:
    """pydantic's loc -> `clusters.sava.services[0].scale.memory` (union tags and `[key]` dropped)."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in (REF_TAG, INLINE_TAG, "[key]", ""):  # "": a cluster gateway's unnamed port
            continue
        elif isinstance(part, str) and part.startswith(("function-", "list[", "dict[")):  # a validator's tag, not a field
            continue
        else:
            path = f"{path}.{part}" if path else str(part)
    return path


def field_errors(error: Any) -> list[FieldError]:
    """A pydantic ValidationError -> FieldErrors; our `vamp` errors carry their own sub-paths."""
    out: list[FieldError] = []
    for item in error.errors(include_url=False):
        loc = tuple(item["loc"])
        if item["type"] == "vamp":
            for sub, reason in item["ctx"]["problems"]:
                out.append(FieldError(error_path(loc + tuple(sub)), reason))
            continue
        reason = _MESSAGES.get(item["type"], item["msg"])
        if reason.startswith("Value error, "):
            reason = reason[len("Value error, "):]
        out.append(FieldError(error_path(loc), reason))
    unique: dict[tuple, FieldError] = {}
    for e in out:
        unique.setdefault((e.path, e.reason), FieldError(_short(e.path), _short(e.reason)))
    return list(unique.values())


def _short(text: str, keep: int = 200) -> str:
    """Reasons quote the value given: a 40,000-character one is not sent back whole."""
    return text if len(text) <= 2 * keep + 5 else f"{text[:keep]} ... {text[-keep:]}"


def import_reference(item: Any) -> tuple[str, str]:
    """`name` (a template) or `<kind>/<name>` (any stored artifact, `breeds/sava`), as Vamp's
    ImportReader reads them; ValidationFailed for anything else (an empty name was a 500: an
    empty DynamoDB key)."""
    if not isinstance(item, str):
        raise ValidationFailed.at("import", f"an import is `<name>` or `<kind>/<name>` (got {type(item).__name__})")
    if not item:
        raise ValidationFailed.at("import", "an import names a template (`<name>`) or an artifact (`<kind>/<name>`)")
    kind, slash, name = item.rpartition("/")
    if slash and "/" in kind:
        raise ValidationFailed.at("import", f"invalid import {item!r}: `<name>` or `<kind>/<name>`")
    try:
        return (normalize_kind(kind) if slash else "templates"), check_name(name, what="import")
    except ValueError as error:
        raise ValidationFailed.at("import", str(error)) from None


def apply_imports(data: dict, resolve: Resolve | None, depth: int = 0) -> dict:
    """`import: name` (or a list): the named templates (or `<kind>/<name>`: stored artifacts)
    are deep-merged under the document, later ones over earlier ones."""
    if "import" not in data:
        return data
    names = data["import"]
    names = names if isinstance(names, list) else [names]
    merged: dict = {}
    for item in names:
        kind, name = import_reference(item)
        template = resolve(kind, name) if resolve is not None else None
        if not isinstance(template, dict):
            what = "template" if kind == "templates" else singular(kind)
            raise ValidationFailed.at("import", f"unknown {what} {name!r}")
        if depth >= _MAX_IMPORT_DEPTH:
            raise ValidationFailed.at("import", f"templates import each other more than {_MAX_IMPORT_DEPTH} deep")
        template = apply_imports(template, resolve, depth + 1)
        content = {k: v for k, v in template.items() if k not in ("name", "kind", "metadata")}
        merged = deep_merge(merged, content)
    return deep_merge(merged, {k: v for k, v in data.items() if k != "import"})


def memoize(resolve: Resolve | None) -> Resolve | None:
    """One look-up per (kind, name) during a parse: validators may ask several times."""
    if resolve is None:
        return None
    cache: dict[tuple[str, str], Any] = {}

    def cached(kind: str, name: str) -> dict | None:
        if (kind, name) not in cache:
            cache[(kind, name)] = resolve(kind, name)
        return cache[(kind, name)]

    return cached


def parse(kind: str, data: Any, *, resolve: Resolve | None = None) -> Any:
    """Validate a loaded YAML/JSON document as an artifact of `kind` (singular or plural)."""

    plural = normalize_kind_or_fail(kind)
    if not isinstance(data, dict):
        raise ValidationFailed.at("", f"a {singular(plural)} is a map (got {type(data).__name__})")
    resolve = memoize(resolve)
    data = apply_imports(data, resolve)
    errors: list[FieldError] = []
    if "kind" in data:
        try:
            given = normalize_kind(data["kind"])
        except ValueError:
            given = None
        if given != plural:
            errors.append(FieldError("kind", f"kind {data['kind']!r} does not agree with {plural!r}"))
        data = {k: v for k, v in data.items() if k != "kind"}
    if data.get("name") is None:
        errors.append(FieldError("name", "required"))

    try:
        model = KINDS[plural].model_validate(data, context={"resolve": resolve})
    except ValidationError as error:
        errors.extend(field_errors(error))
    if errors:
        raise ValidationFailed(f"Invalid {singular(plural)}", errors)
    return model


def singular(plural: str) -> str:
    return plural[:-3] + "y" if plural.endswith("ies") else plural[:-1]


def normalize_kind_or_fail(kind: Any) -> str:
    try:
        return normalize_kind(kind)
    except ValueError as error:
        raise ValidationFailed.at("kind", str(error)) from None


def dump(artifact: Any) -> dict:
    """The canonical JSON-able form: `name` and plural `kind` first, None-valued fields left out.
    PayloadTooLarge (413) when it is larger than an item can hold (MAX_DOCUMENT_BYTES)."""
    body = artifact.model_dump(mode="json", exclude_none=True)
    if artifact.__pydantic_extra__:  # a template's free content keeps its nulls

        body.update(to_jsonable_python(artifact.__pydantic_extra__))
    head = {"name": body.pop("name")} if "name" in body else {}
    kind = getattr(type(artifact), "kind", None)
    if isinstance(kind, str):
        head["kind"] = kind
        head["metadata"] = body.pop("metadata", {})
    document = {**head, **body}
    size = len(json.dumps(document, separators=(",", ":"), default=str))  # as the store writes it
    if size > MAX_DOCUMENT_BYTES:
        raise PayloadTooLarge(f"the document is larger than an item can hold ({MAX_DOCUMENT_BYTES} bytes)",
                              [FieldError("", f"{size} bytes as stored, more than {MAX_DOCUMENT_BYTES}")])
    return document
