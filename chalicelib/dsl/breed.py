"""Breed: what to run (deployable), its ports, environment, dependencies and health checks."""
from __future__ import annotations

import re
from typing import Annotated, Any, Callable, ClassVar, Iterator, Literal

from pydantic import BeforeValidator, Field, ValidationInfo, model_serializer, model_validator

from .base import (
    Arguments,
    Artifact,
    DotlessName,
    EnvironmentVariables,
    ListOf,
    Model,
    Name,
    OptionalText,
    Problems,
    Ref,
    as_dict,
    check_name,
    drop_aliases,
    drop_empty_metadata,
    fail_at,
    ref_or,
    rename,
    resolver,
    split_trait,
)
from .secrets import is_secret_reference, shows_no_secret
from .units import Duration, Port

DOCKER = "container/docker"
JAVASCRIPT = "application/javascript"
COMMAND = "command"
_TYPE_ALIASES = {"docker": DOCKER, "javascript": JAVASCRIPT, "js": JAVASCRIPT, "cmd": COMMAND}
_TYPE_RE = re.compile(r"^[a-z0-9][a-z0-9._\-]*(/[a-z0-9][a-z0-9._\-]*)?$")


class Deployable(Model):
    """`image` alone means `{type: container/docker, definition: image}`."""

    type: str = DOCKER
    definition: str = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            if data.startswith("docker://"):
                data = data[len("docker://"):]
            return {"type": DOCKER, "definition": data}
        if isinstance(data, dict) and isinstance(data.get("type"), str):
            kind = data["type"].strip().lower()
            data = {**data, "type": _TYPE_ALIASES.get(kind, kind)}
            if not _TYPE_RE.fullmatch(data["type"]):
                fail_at(("type",), f"invalid deployable type {data['type']!r}")
        return data


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def _rooted(value: Any) -> Any:
    """Vamp takes `path: health` (its fixtures write it so); the probe asks for `/health`."""
    return f"/{value}" if isinstance(value, str) and not value.startswith("/") else value


class HealthCheck(Model):
    path: Annotated[str, BeforeValidator(_rooted)] = Field("/", pattern=r"^/[A-Za-z0-9\-._~/:@!$&()*+,;=%?]*$")
    port: DotlessName
    initial_delay: Duration
    timeout: Duration
    interval: Duration
    failures: int = Field(ge=0)
    protocol: Annotated[Literal["HTTP", "HTTPS", "TCP"], BeforeValidator(_upper)] = "HTTP"


HealthChecks = ListOf(HealthCheck)


def _optional_list(value: Any) -> Any:
    """None stays None (inherit from the breed); [] switches health checks off."""
    if value is None or isinstance(value, list):
        return value
    return [value]


# On clusters and services: absent means "as the breed says", an empty list means none.
OptionalHealthChecks = Annotated[list[HealthCheck] | None, BeforeValidator(_optional_list)]

# `$db.host`, `$db.ports.port`, `$db.environment_variables.X`, `$db.constants.X`, `${...}`, `$$`.
# `[^}$]`, not `[^}]`: finditer tries every `$`, and with `[^}]` each try of "${${${..." read to
# the end of the value (quadratic); now a try stops at the next `$`.
_VALUE_REF_RE = re.compile(r"\$(\$|\{([^}$]*)\}|([A-Za-z0-9_\-.]*[A-Za-z0-9_\-]))")
_REF_FORM_RE = re.compile(
    r"^[^\s.$]+(\.host|\.ports\.[^\s.]+|\.environment_variables\.[^\s.]+|\.constants\.[^\s.]+)?$"
)


def value_references(value: str) -> list[str]:
    """The references (`db.host`, ...) inside an environment value; `$$` is an escaped `$`."""
    found = []
    for m in _VALUE_REF_RE.finditer(value):
        if m.group(1) != "$":
            found.append(m.group(2) if m.group(2) is not None else m.group(3))
    return found


def matches(pattern: str, name: str) -> bool:
    """Dependency names may be wildcards (`mysql:5.*`). Not a regex: `.*a.*a.*...` backtracks
    in O(n^k); this greedy match of the pieces in order is O(len(pattern) * len(name))."""
    if "*" not in pattern:
        return pattern == name
    first, *middle, last = pattern.split("*")
    if len(first) + len(last) > len(name) or not name.startswith(first) or not name.endswith(last):
        return False
    at, end = len(first), len(name) - len(last)
    for piece in middle:  # the leftmost place of each piece leaves the most room for the rest
        found = name.find(piece, at, end)
        if found < 0:
            return False
        at = found + len(piece)
    return True


class BreedRef(Ref):
    kind: ClassVar[str] = "breeds"


def _dependencies(value: Any) -> Any:
    """Vamp's dependency forms `{breed: name}`, `{breed: {reference: x}}` and
    `{breed: {name, deployable, ...}}` are the breed (or reference) they hold."""
    value = as_dict(value)
    if not isinstance(value, dict):
        return value
    problems = Problems()
    out = {}
    for alias, dependency in value.items():
        if isinstance(dependency, dict) and "breed" in dependency:
            for key in dependency:
                if key != "breed":
                    problems.add((alias, key), "unknown field (a dependency is `breed: ...` alone)")
            dependency = dependency["breed"]
        out[alias] = dependency
    problems.check()
    return out


class Breed(Artifact):
    kind: ClassVar[str] = "breeds"
    deployable: Deployable
    ports: Annotated[dict[DotlessName, Port], BeforeValidator(drop_aliases)] = {}
    environment_variables: EnvironmentVariables = {}
    constants: Annotated[dict[DotlessName, OptionalText], BeforeValidator(drop_aliases)] = {}
    arguments: Arguments = []
    dependencies: Annotated[dict[Name, ref_or(BreedRef, "Breed")], BeforeValidator(_dependencies)] = {}
    health_checks: HealthChecks = []
    # Variable name -> its alias, the name the container gets (`timeout[TIME_OUT]`); written
    # back into the keys by the serializer, never given as a field of its own.
    environment_aliases: dict[str, str] = Field(default_factory=dict, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        data = rename(data, "env", "environment_variables")
        if not isinstance(data, dict):
            return data
        if "environment_aliases" in data:
            fail_at(("environment_aliases",), "unknown field")
        variables = as_dict(data.get("environment_variables"))
        if not isinstance(variables, dict):
            return data
        names: dict = {}
        aliases: dict[str, str] = {}
        problems = Problems()
        for key, value in variables.items():
            name, alias = split_trait(key)
            if alias is not None:
                try:
                    aliases[check_name(name)] = check_name(alias, what="alias")
                except ValueError as error:
                    problems.add(("environment_variables", key), str(error))
            names[name] = value
        problems.check()
        return {**data, "environment_variables": names, "environment_aliases": aliases}

    @model_serializer(mode="wrap")
    def _quiet(self, handler: Any) -> Any:
        data = drop_empty_metadata(handler(self))
        if self.environment_aliases and isinstance(data.get("environment_variables"), dict):
            data["environment_variables"] = {
                (f"{k}[{self.environment_aliases[k]}]" if k in self.environment_aliases else k): v
                for k, v in data["environment_variables"].items()}
        return data

    def container_name(self, variable: str) -> str:
        """The name a container sees for one of this breed's variables (its alias, if any)."""
        return self.environment_aliases.get(variable, variable)

    @model_validator(mode="after")
    def _rules(self, info: ValidationInfo) -> "Breed":
        problems = Problems()
        for alias, dep in self.dependencies.items():
            if isinstance(dep, Breed) and dep.name is None:
                problems.add(("dependencies", alias, "name"), "an inline breed needs a name")
        for key, value in self.constants.items():
            if value is None:
                problems.add(("constants", key), "a constant needs a value")
        for i, check in enumerate(self.health_checks):
            if check.port not in self.ports:
                problems.add(("health_checks", i, "port"), f"port {check.port!r} is not a port of this breed")
        for key, value in self.environment_variables.items():
            for ref in value_references(value or ""):
                if is_secret_reference(ref):  # checked by the value's type (secrets.py)
                    continue
                # The reason never repeats the value, a password perhaps (secrets.shows_no_secret).
                if not _REF_FORM_RE.fullmatch(ref):
                    problems.add(("environment_variables", key),
                                 "invalid reference (write `$$` for a literal `$`)")
                elif "." in ref and ref.split(".")[0] not in self.dependencies:
                    alias = f"${ref.split('.')[0]}" if shows_no_secret(ref) else "a reference"
                    problems.add(("environment_variables", key), f"{alias} is not a dependency of this breed")
                elif (lacking := missing_trait(self.dependencies.get(ref.split(".")[0]), ref)) is not None:
                    shown = f"${ref}" if shows_no_secret(ref) else "a reference"
                    problems.add(("environment_variables", key), f"{shown}: {lacking}")
        dependency_problems(self, resolver(info), problems)
        problems.check()
        return self


_GROUPS = {"ports": "port", "environment_variables": "environment variable", "constants": "constant"}


def missing_trait(breed: Any, ref: str) -> str | None:
    """Why `alias.<group>.<name>` names nothing of `breed` (a Breed model; None when the breed
    is only a reference, known at deploy time): Vamp's BreedTraitValueValidator."""
    parts = ref.split(".")
    if not isinstance(breed, Breed) or len(parts) != 3 or parts[1] not in _GROUPS:
        return None
    if parts[2] in getattr(breed, parts[1]):
        return None
    return f"breed {breed.name!r} has no {_GROUPS[parts[1]]} {parts[2]!r}"


def _dependencies_of(node: Any) -> Iterator[tuple[str, str | None, Any]]:
    """(alias, breed name, inline breed or None) for a Breed model or a stored breed document."""
    if isinstance(node, Breed):
        for alias, dep in node.dependencies.items():
            yield (alias, dep.reference, None) if isinstance(dep, BreedRef) else (alias, dep.name, dep)
        return
    deps = node.get("dependencies") if isinstance(node, dict) else None
    for alias, dep in (deps or {}).items() if isinstance(deps, dict) else ():
        if isinstance(dep, str):
            yield alias, dep, None
        elif isinstance(dep, dict) and ("reference" in dep or "ref" in dep):
            yield alias, dep.get("reference", dep.get("ref")), None
        elif isinstance(dep, dict):
            yield alias, dep.get("name"), dep


def dependency_problems(
    breed: Breed, resolve: Callable[[str, str], dict | None] | None, problems: Problems
) -> None:
    """Cycles among dependencies (inline ones, and stored ones when `resolve` finds them). A
    dependency no stored breed has yet is no error here: as in Vamp, it may be a breed defined
    inline in another cluster of the blueprint, or stored later; deploying checks it."""
    if breed.name is None:
        return
    done: set[str] = set()

    def visit(name: str, node: Any, chain: list[str], top_alias: str | None) -> str | None:
        for alias, dep_name, inline in _dependencies_of(node):
            alias_at_top = alias if top_alias is None else top_alias
            if not isinstance(dep_name, str) or dep_name in done:
                continue
            if dep_name in chain or any(matches(dep_name, c) for c in chain):
                cycle = " -> ".join([*chain, dep_name])
                problems.add(("dependencies", alias_at_top), f"dependency cycle: {cycle}")
                continue
            target = inline
            if target is None:
                if resolve is None or "*" in dep_name:
                    continue
                target = resolve("breeds", dep_name)
                if target is None:
                    continue
            visit(dep_name, target, [*chain, dep_name], alias_at_top)
            done.add(dep_name)
        return None

    visit(breed.name, breed, [breed.name], None)


BreedOrRef = ref_or(BreedRef, Breed)
