"""JSON schemas of the API's bodies, generated from the pydantic models the handlers validate
with: one generator for what a request may send, one for what a response holds (imported only
by openapi.py, on the first GET /openapi.json: never at cold start).

The two differ because the DSL reads more than it writes. A request may use Vamp's shorthands
(a breed's `deployable: image`, a single value for a list, `memory: 256MB` or `256`, a bare
string for a reference), which the models' before-validators expand; a response is the
canonical form they expand to (`memory: "256MB"`, references as `{reference: x}`), with `kind`
and `metadata` at the top and room for what the API adds (a gateway's `nodes`, a deployment's
`status`).
"""
from __future__ import annotations

from typing import Any

from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from chalicelib.dsl.names import DOTLESS_NAME_RE, MAX_NAME, NAME_RE
from chalicelib.text import portable_pattern

ANY: dict = {}
NAME = {"type": "string", "minLength": 1, "maxLength": MAX_NAME, "pattern": portable_pattern(NAME_RE.pattern)}
DOTLESS_NAME = {**NAME, "pattern": portable_pattern(DOTLESS_NAME_RE.pattern)}
NULL = {"type": "null"}
SCALAR_TEXT = {"type": ["string", "number", "boolean"]}
NUMBER_OR_TEXT = {"type": ["string", "number"]}


def _or_null(schema: dict) -> dict:
    return {"anyOf": [schema, NULL]}


def _single_or_list(inner: dict) -> dict:
    """as_list: a list, one item (wrapped), or null (empty)."""
    item = inner.get("items", ANY)
    return {"anyOf": [inner, item, NULL]}


def _reference_shorthand(inner: dict) -> dict:
    """Ref._shorthand: `name`, `{ref: name}` or `{reference: name}`."""
    ref = {"type": "object", "properties": {"ref": {"type": "string"}}, "required": ["ref"],
           "additionalProperties": False}
    return {"anyOf": [{"type": ["string", "integer"]}, ref, inner]}


def _with_kind(inner: dict) -> dict:
    """Artifact._drop_kind: an artifact may name its kind (singular or plural)."""
    if inner.get("type") == "object" and isinstance(inner.get("properties"), dict):
        inner = {**inner, "properties": {"kind": {"type": "string", "description": "singular or plural"},
                                         **inner["properties"]}}
    return inner


def _open_object(inner: dict) -> dict:
    """A model-level before-validator that renames or moves keys (aliases, generic parameters):
    the model's fields, and other keys it reads."""
    return {k: v for k, v in inner.items() if k != "additionalProperties"}


def _object_or_shorthand(inner: dict) -> dict:
    """A model-level `_shorthand`: the map, or a scalar or list it expands to one."""
    return {"anyOf": [inner, {"type": ["string", "number", "boolean", "array", "null"]}]}


# What each before-validator of the models accepts beyond the type it produces (by the
# validator's name). A validator not listed here is documented as accepting anything: the
# document must never say the API refuses what it accepts.
WIDENED = {
    "as_list": _single_or_list,
    "_optional_list": _single_or_list,
    "as_dict": _or_null,
    "drop_aliases": _or_null,
    "_metadata": _or_null,
    "split_arguments": lambda inner: {"anyOf": [inner, {"type": "object"}, NULL]},
    "at_most_items.<locals>.check": lambda inner: inner,
    "_name": lambda inner: {"anyOf": [NAME, {"type": "integer"}]},  # YAML's `9050:` keys are ints
    "_dotless": lambda inner: {"anyOf": [DOTLESS_NAME, {"type": "integer"}]},
    "_scalar_text": lambda inner: _or_null(SCALAR_TEXT) if "anyOf" in inner else SCALAR_TEXT,
    "parse_memory": lambda inner: NUMBER_OR_TEXT,
    "parse_cpu": lambda inner: NUMBER_OR_TEXT,
    "parse_percent": lambda inner: NUMBER_OR_TEXT,
    "parse_time": lambda inner: NUMBER_OR_TEXT,
    "parse_port": lambda inner: NUMBER_OR_TEXT,
    "_milliseconds": lambda inner: NUMBER_OR_TEXT,
    "Ref._shorthand": _reference_shorthand,
    "Artifact._drop_kind": _with_kind,
    "Deployment._no_kind": _with_kind,
    "Event._kind": _with_kind,
}
MODEL_LEVEL_SUFFIXES = {"._aliases": _open_object, "._generic": _open_object, "._units": _open_object,
                        "._drop_nodes": _open_object, "._empty": _object_or_shorthand,
                        "._shorthand": _object_or_shorthand}


def _validator_name(schema: dict) -> str:
    function = schema.get("function", {})
    function = function.get("function") if isinstance(function, dict) else function
    return getattr(function, "__qualname__", "")


class RequestSchema(GenerateJsonSchema):
    """What a request may send: each before-validator widens its field as WIDENED says."""

    def function_before_schema(self, schema) -> dict:
        inner = super().function_before_schema(schema)
        name = _validator_name(schema)
        if name in WIDENED:
            return WIDENED[name](inner)
        for suffix, widen in MODEL_LEVEL_SUFFIXES.items():
            if name.endswith(suffix):
                return widen(inner)
        return {"description": inner.get("description", "") or "read by the DSL (shorthands allowed)"} \
            if inner.get("description") else {}

    def function_wrap_schema(self, schema) -> dict:
        return {}  # a wrap validator may accept anything it can turn into the inner type

    def model_schema(self, schema) -> dict:
        """extra="forbid" puts `additionalProperties: false` beside what the model-level
        validator made of the fields: it belongs inside the map form of a shorthand, and not
        at all where the validator renames keys."""
        out = super().model_schema(schema)
        closed = out.pop("additionalProperties", None)
        name = _validator_name(schema.get("schema", {}))
        if closed is None or any(name.endswith(s) for s, widen in MODEL_LEVEL_SUFFIXES.items() if widen is _open_object):
            return out
        branches = out.get("anyOf", [out])
        for branch in branches:
            if branch.get("type") == "object" and "properties" in branch:
                branch["additionalProperties"] = closed
        return out


class ResponseSchema(GenerateJsonSchema):
    """What a response holds: the serialised (canonical) form. The DSL's model-level
    serializers reshape little (drop empty maps, flatten parameters): the fields are described,
    and any other key allowed."""

    def ser_schema(self, schema) -> dict | None:
        if schema.get("type") == "function-wrap" and schema.get("return_schema", {}).get("type", "any") == "any":
            return None  # a model's own wrap serializer: describe its fields instead of "anything"
        return super().ser_schema(schema)

    def model_schema(self, schema) -> dict:
        out = super().model_schema(schema)
        out.pop("additionalProperties", None)
        return out


def build(models: list[type], mode: str) -> tuple[dict[type, dict], dict]:
    """(model -> {"$ref"}, definitions) for the models, request or response side; definitions
    are suffixed (`BreedRequest`, `Breed`) so both sides live in one document."""
    generator = RequestSchema if mode == "request" else ResponseSchema
    pydantic_mode = "validation" if mode == "request" else "serialization"
    suffix = "Request" if mode == "request" else ""
    refs, schemas = models_json_schema([(m, pydantic_mode) for m in models], schema_generator=generator,
                                       ref_template="#/components/schemas/{model}" + suffix)
    defs = {name + suffix: d if mode == "request" else _any_of(d) for name, d in schemas.get("$defs", {}).items()}
    return {m: refs[(m, pydantic_mode)] for m in models}, defs


def _any_of(schema: Any) -> Any:
    """Responses: `oneOf` (a reference or an inline artifact) as `anyOf`: with other keys
    allowed, a stored document may match both."""
    if isinstance(schema, dict):
        return {("anyOf" if k == "oneOf" else k): _any_of(v) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_any_of(v) for v in schema]
    return schema


def named(request: dict) -> dict:
    """A request that must name its artifact (POST, the multi-document root): a string name."""
    return {"allOf": [request, {"type": "object", "required": ["name"], "properties": {"name": NAME}}]}


def _any_case(name: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in name)


def kind_pattern(names: list[str]) -> dict:
    """Any of `names`, in any case, with spaces around (kinds.normalize_kind)."""
    return {"type": "string", "pattern": r"^\s*(" + "|".join(_any_case(n) for n in names) + r")\s*$"}


def flag_pattern(words: list[str]) -> dict:
    """A query flag: one of `words` in any case, nothing around (http.Call.flag)."""
    return {"type": "string", "pattern": "^(" + "|".join(_any_case(w) for w in words) + ")$"}


def artifact_response(ref: dict, kind: str) -> dict:
    """A stored artifact as the API answers it: name, plural kind and metadata first."""
    return {"allOf": [ref, {"type": "object", "required": ["name", "kind", "metadata"], "properties": {
        "name": {"type": "string"}, "kind": {"const": kind}, "metadata": {"type": "object"}}}]}
