"""What every DSL model shares: strictness, the artifact header, references and shorthands.

Errors found by a validator that knows a deeper path are raised with `fail(...)`: one pydantic
error of type `vamp` whose context lists (sub-path, reason) pairs; `document.py` unpacks them, so
one validator can report every problem it sees, each at its exact path.
"""
from __future__ import annotations

import math
import re
from typing import Annotated, Any, Callable, ClassVar, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Tag,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .names import check_name
from .secrets import check_environment_value

# Tags of our tagged unions; they appear in pydantic's error locations and are stripped from
# paths. A NUL byte cannot occur in a user's key (names refuse control characters).
REF_TAG = "\x00ref"
INLINE_TAG = "\x00inline"

_UNSAFE_TEXT = re.compile(r"[\x00-\x1f\x7f#'\"\\{}]")

Problem = tuple[tuple, str]


def fail(problems: list[Problem]) -> None:
    """Raise every problem at once, each at its path relative to the value being validated."""
    raise PydanticCustomError(
        "vamp", "{summary}", {"summary": "; ".join(reason for _, reason in problems), "problems": problems}
    )


def fail_at(path: tuple, reason: str) -> None:
    fail([(path, reason)])


class Problems(list):
    """Collects (path, reason) pairs in a validator, raised together by `check()`."""

    def add(self, path: tuple, reason: str) -> None:
        self.append((tuple(path), reason))

    def check(self) -> None:
        if self:
            fail(list(self))


def resolver(info: Any) -> Callable[[str, str], dict | None] | None:
    """The `resolve` callable given to `parse`, if any (passed as pydantic validation context)."""
    context = getattr(info, "context", None)
    return context.get("resolve") if isinstance(context, dict) else None


class Model(BaseModel):
    """Strict: unknown keys are an error everywhere (Vamp's readers are strict too)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)


def _name(value: object) -> str:
    return check_name(value)


def _dotless(value: object) -> str:
    return check_name(value, dotless=True)


def _safe_text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if _UNSAFE_TEXT.search(value):
        raise ValueError(f"{value!r} contains a control character, `#`, a quote, a backslash or a brace")
    return value


def _scalar_text(value: object) -> object:
    """YAML loads `8080`, `true` as numbers and booleans; Vamp keeps such values as strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


Name = Annotated[str, BeforeValidator(_name)]
DotlessName = Annotated[str, BeforeValidator(_dotless)]
SafeText = Annotated[str, AfterValidator(_safe_text)]
Text = Annotated[str, BeforeValidator(_scalar_text)]
OptionalText = Annotated[Union[str, None], BeforeValidator(_scalar_text)]
Scalar = Union[str, int, float, bool, None]


def as_list(value: Any) -> Any:
    """A single value where a list is expected is wrapped; `~` means empty."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def as_dict(value: Any) -> Any:
    """`~` is an empty map; int keys (YAML's `9050:`) become strings, as names are strings."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {(str(k) if isinstance(k, int) and not isinstance(k, bool) else k): v for k, v in value.items()}
    return value


def ListOf(item: Any, at_most: int | None = None) -> Any:  # noqa: N802 - reads like a type
    """A list (a single value is wrapped); with `at_most`, a longer one is refused before its
    items are validated (docs/decisions/0024)."""
    if at_most is None:
        return Annotated[list[item], BeforeValidator(as_list)]
    return Annotated[list[item], BeforeValidator(as_list), BeforeValidator(at_most_items(at_most))]


def at_most_items(limit: int, what: str = "items") -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if isinstance(value, (list, tuple, dict)) and len(value) > limit:
            fail_at((), f"at most {limit} {what} (got {len(value)})")
        return value

    return check


def MapOf(key: Any, value: Any) -> Any:  # noqa: N802
    return Annotated[dict[key, value], BeforeValidator(as_dict)]


def rename(data: Any, alias: str, field: str) -> Any:
    """Accept `alias` for `field` (e.g. `env` for `environment_variables`); both is an error."""
    if isinstance(data, dict) and alias in data:
        if field in data:
            fail_at((alias,), f"give either `{alias}` or `{field}`, not both")
        data = {(field if k == alias else k): v for k, v in data.items()}
    return data


def _metadata_value(value: Any, path: tuple = ()) -> Any:
    """Vamp's metadata is free YAML (`labels: {essential: true}`): maps with string keys, lists
    and scalars, at any depth the body's own bound allows; never NaN or an infinity (they
    have no JSON, and every listing holding one would be invalid)."""
    if isinstance(value, dict):
        problems = Problems()
        for key, item in value.items():
            if not isinstance(key, str):
                problems.add((*path, str(key)), "metadata keys are strings")
                continue
            try:
                _metadata_value(item, (*path, key))
            except PydanticCustomError as error:
                problems.extend(error.context["problems"])
        problems.check()
    elif isinstance(value, list):
        problems = Problems()
        for i, item in enumerate(value):
            try:
                _metadata_value(item, (*path, i))
            except PydanticCustomError as error:
                problems.extend(error.context["problems"])
        problems.check()
    elif isinstance(value, float) and not math.isfinite(value):
        fail_at(path, "not a finite number")
    elif isinstance(value, int) and value.bit_length() > 14_000:  # no text for it (Python's 4,300 digits)
        fail_at(path, "a number that large")
    elif value is not None and not isinstance(value, (str, int, float, bool)):
        fail_at(path, f"a map, a list, a string, a number or a boolean (got {type(value).__name__})")
    return value


def _metadata(value: Any) -> Any:
    value = as_dict(value)
    if not isinstance(value, dict):
        fail_at((), "metadata is a map")
    return _metadata_value(value)


def generic_parameters(data: Any, known_types: tuple[str, ...], core: tuple[str, ...]) -> Any:
    """Vamp's generic SLAs and escalations: a `type` Vamp does not know is kept with every other
    key as its parameters, passed through to the workflows that act on it (stored under
    `parameters`, written back at the top level by `flatten_parameters`)."""
    if not isinstance(data, dict):
        return data
    if "parameters" in data and data.get("type") in known_types:
        fail_at(("parameters",), "unknown field")
    kind = data.get("type")
    if not isinstance(kind, str) or kind in known_types:
        return data
    try:
        check_name(kind, what="type")
    except ValueError as error:
        fail_at(("type",), str(error))
    parameters = {k: v for k, v in data.items() if k not in core}
    _metadata_value(parameters)
    return {**{k: v for k, v in data.items() if k in core}, "parameters": parameters}


def flatten_parameters(data: Any) -> Any:
    if isinstance(data, dict) and "parameters" in data:
        data = {**{k: v for k, v in data.items() if k != "parameters"}, **data["parameters"]}
    return data


def _privileged(arguments: Any) -> Any:
    """`privileged` is a boolean, as Vamp's ArgumentReader says (`true`/`false`, any case)."""
    problems = Problems()
    for i, argument in enumerate(arguments):
        value = argument.get("privileged")
        if value is not None and value.lower() not in ("true", "false"):
            problems.add((i, "privileged"), f"privileged is `true` or `false` (got {value!r})")
    problems.check()
    return arguments


def split_trait(key: Any) -> tuple[Any, str | None]:
    """`timeout[TIME_OUT]` -> ("timeout", "TIME_OUT"): Vamp's trait alias, the name a container
    sees; other keys -> (key, None). Both parts are then checked as names."""
    if isinstance(key, str) and key.endswith("]") and "[" in key:
        at = key.index("[")
        return key[:at], key[at + 1:-1]
    return key, None


def drop_aliases(value: Any) -> Any:
    """Vamp reads an alias on ports, constants and a service's or blueprint's variables, and
    keeps it only on a breed's variables: here too, `port[PORT]` is the port `port`."""
    value = as_dict(value)
    if not isinstance(value, dict):
        return value
    out: dict = {}
    for key, item in value.items():
        name, alias = split_trait(key)
        if alias is not None:
            check_name(alias, what="alias")
        out[name] = item
    return out


def rename_dialect(data: Any) -> Any:
    """Vamp's DialectReader reads `dialects` or `dialect`."""
    return rename(data, "dialect", "dialects")


def split_arguments(value: Any) -> Any:
    """Arguments are one-key maps; a map of several keys is split into several, in order."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [{k: v} for k, v in value.items()]
    if isinstance(value, list):
        problems = Problems()
        for i, item in enumerate(value):
            if not isinstance(item, dict) or len(item) != 1:
                problems.add((i,), "an argument is a map of exactly one key")
        problems.check()
    return value


Metadata = Annotated[dict[str, Any], BeforeValidator(_metadata)]
# Values are strings, as in Vamp; `${ssm:...}` / `${secretsmanager:...}` inside one name a secret (secrets.py).
EnvironmentVariables = Annotated[
    dict[Name, Annotated[OptionalText, AfterValidator(check_environment_value)]], BeforeValidator(drop_aliases)]
Arguments = Annotated[list[dict[Name, Text]], BeforeValidator(split_arguments), AfterValidator(_privileged)]
Dialects = MapOf(Name, Any)


KIND_NAMES = (
    "breeds", "blueprints", "scales", "slas", "escalations", "routes", "conditions", "rewrites",
    "workflows", "gateways", "templates", "release-policies",
)


def normalize_kind(kind: object) -> str:
    """`breed` or `breeds` -> `breeds`; anything else is a ValueError."""
    if isinstance(kind, str):
        key = kind.strip().lower()
        for plural in (key, key + "s", key[:-1] + "ies" if key.endswith("y") else ""):
            if plural in KIND_NAMES:
                return plural
    raise ValueError(f"unknown kind {kind!r}; one of {', '.join(KIND_NAMES)}")


class Artifact(Model):
    """The header of every artifact: a name, an optional agreeing `kind`, flat `metadata`."""

    kind: ClassVar[str]
    name: Name | None = None
    metadata: Metadata = {}

    @model_validator(mode="before")
    @classmethod
    def _drop_kind(cls, data: Any) -> Any:
        if isinstance(data, dict) and "kind" in data:
            data = dict(data)
            given = data.pop("kind")
            try:
                ok = normalize_kind(given) == cls.kind
            except ValueError:
                ok = False
            if not ok:
                fail_at(("kind",), f"kind {given!r} does not agree with {cls.kind!r}")
        return data

    @model_serializer(mode="wrap")
    def _quiet(self, handler: Any) -> Any:
        return drop_empty_metadata(handler(self))


def drop_empty_metadata(data: Any) -> Any:
    """Inline artifacts rarely carry metadata: an empty map is left out (`dump` puts it back at
    the top level, where Vamp always shows it)."""
    if isinstance(data, dict) and data.get("metadata") == {}:
        del data["metadata"]
    return data


class Ref(Model):
    """A reference to a stored artifact: a bare string, `ref: x` or `reference: x`."""

    kind: ClassVar[str]
    reference: Name

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, (str, int)) and not isinstance(data, bool):
            return {"reference": data}
        if isinstance(data, dict) and "ref" in data:
            data = rename(data, "ref", "reference")
        return data

    @property
    def name(self) -> str:
        return self.reference


def is_reference(value: Any) -> bool:
    if isinstance(value, Ref):
        return True
    if isinstance(value, str):
        return True
    return isinstance(value, dict) and len(value) == 1 and ("ref" in value or "reference" in value)


def ref_or(ref: type, inline: Any, is_ref: Callable[[Any], bool] = is_reference) -> Any:
    """A field that is either a reference or an inline artifact, without union names in paths."""

    def pick(value: Any) -> str:
        return REF_TAG if is_ref(value) else INLINE_TAG

    return Annotated[
        Union[Annotated[ref, Tag(REF_TAG)], Annotated[inline, Tag(INLINE_TAG)]],
        Discriminator(pick),
    ]
