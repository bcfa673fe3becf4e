"""Request bodies in JSON or YAML (one document, a list, or a multi-document stream); responses
in JSON, or YAML when Accept asks for it (Vamp: Accept starting with application/x-yaml)."""
from __future__ import annotations

import json
from typing import Any

from chalicelib.errors import (
    FieldError,
    NotAcceptable,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)

JSON_TYPES = {"application/json"}
YAML_TYPES = {"application/x-yaml", "application/yaml", "text/yaml", "text/x-yaml"}
SNIFFED_TYPES = {"", "text/plain", "application/octet-stream"}
YAML_RESPONSE = "application/x-yaml"


def _media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def read_body(raw: bytes | None, content_type: str | None, max_bytes: int) -> list[Any]:
    """The body's documents, in order. Empty body: no documents."""
    if raw and len(raw) > max_bytes:
        raise PayloadTooLarge(f"body larger than {max_bytes} bytes", [FieldError("body", f"{len(raw)} bytes")])
    media = _media_type(content_type)
    if media not in JSON_TYPES | YAML_TYPES | SNIFFED_TYPES:
        raise UnsupportedMediaType(
            f"unsupported media type: {media}",
            [FieldError("Content-Type", "use application/json or application/x-yaml")],
        )
    try:
        text = (raw or b"").decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValidationFailed.at("body", f"not UTF-8: {e.reason} at byte {e.start}") from None
    if not text.strip():
        return []
    if media in JSON_TYPES:
        try:
            docs = [json.loads(text)]
        except json.JSONDecodeError as e:
            raise ValidationFailed.at("body", f"invalid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    else:  # YAML is a superset of JSON, so sniffed bodies go through YAML too
        yaml = _yaml()
        try:
            docs = [d for d in yaml.load_all(text, Loader=_loader()) if d is not None]
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
            reason = getattr(e, "problem", None) or str(e)
            raise ValidationFailed.at("body", f"invalid YAML: {reason}{where}") from None
    # A top-level list is a list of documents, as Vamp accepted it.
    if len(docs) == 1 and isinstance(docs[0], list):
        docs = docs[0]
    return docs


def wants_yaml(accept: str | None) -> bool:
    """YAML when asked for first; JSON for application/json, */*, or no Accept at all."""
    if not accept:
        return False
    types = [_media_type(t) for t in accept.split(",")]
    if types and types[0] in YAML_TYPES:
        return True
    if any(t in JSON_TYPES or t in ("*/*", "application/*") for t in types):
        return False
    if any(t in YAML_TYPES for t in types):
        return True
    raise NotAcceptable(f"cannot answer with {accept}", [FieldError("Accept", "use application/json or application/x-yaml")])


def render(data: Any, accept: str | None) -> tuple[str, str]:
    """(body, content type) for a response."""
    if wants_yaml(accept):
        yaml = _yaml()
        return yaml.dump(data, Dumper=_dumper(), sort_keys=False, default_flow_style=False, allow_unicode=True), YAML_RESPONSE
    return json.dumps(data, separators=(",", ":"), default=str), "application/json"



def _yaml():
    """PyYAML, imported on first use (JSON-only requests never pay for it)."""
    import yaml

    return yaml


def _loader():
    yaml = _yaml()
    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: 5-10x faster


def _dumper():
    yaml = _yaml()
    return getattr(yaml, "CSafeDumper", yaml.SafeDumper)
