"""Request bodies in JSON or YAML (one document, a list, or a multi-document stream); responses
in JSON, or YAML when Accept asks for it (Vamp: Accept starting with application/x-yaml)."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from chalicelib.errors import (
    FieldError,
    NotAcceptable,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)
from chalicelib.settings import settings
from chalicelib.text import NOT_TEXT_RE

JSON_TYPES = {"application/json"}
YAML_TYPES = {"application/x-yaml", "application/yaml", "text/yaml", "text/x-yaml"}
SNIFFED_TYPES = {"", "text/plain", "application/octet-stream"}
YAML_RESPONSE = "application/x-yaml"


def _media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


@dataclass(frozen=True)
class Limits:
    """The shape a body may have once parsed (docs/decisions/0024): the byte limit alone lets a
    427-byte YAML alias bomb expand to millions of values, and 40,000 nested `[` overflow the
    C stack of libyaml's composer (a segfault) or Python's (RecursionError)."""

    depth: int = 64  # collections inside collections
    nodes: int = 100_000  # values in all (scalars and collections, aliases at their expanded size)
    alias_nodes: int = 10_000  # values reached through YAML aliases, in all

    @classmethod
    def from_settings(cls) -> "Limits":
        s = settings()
        return cls(s.max_body_depth, s.max_body_nodes, s.max_yaml_alias_nodes)


def read_body(raw: bytes | None, content_type: str | None, max_bytes: int, limits: Limits | None = None) -> list[Any]:
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
    limits = limits or Limits.from_settings()
    if media in JSON_TYPES:
        docs = [_json(text, limits)]
    else:  # YAML is a superset of JSON, so sniffed bodies go through YAML too
        docs = _yaml_documents(text, limits)
    # A top-level list is a list of documents, as Vamp accepted it.
    if len(docs) == 1 and isinstance(docs[0], list):
        docs = docs[0]
    return docs


def _not_a_number(constant: str):
    raise ValueError(f"{constant} is not a number JSON can carry")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # `1e400`: stored as inf, every page holding it invalid JSON
        raise ValueError(f"{text[:40]} is out of range")
    return value


def _json(text: str, limits: Limits) -> Any:
    try:
        doc = json.loads(text, parse_constant=_not_a_number, parse_float=_finite_float)
    except json.JSONDecodeError as e:
        raise ValidationFailed.at("body", f"invalid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except RecursionError:  # json's C scanner counts its depth against Python's recursion limit
        raise ValidationFailed.at("body", f"invalid JSON: nested more than {limits.depth} levels") from None
    except ValueError as e:  # e.g. an integer of more than 4300 digits
        raise ValidationFailed.at("body", f"invalid JSON: {e}") from None
    _check_shape(doc, limits)
    return doc


def _check_shape(doc: Any, limits: Limits) -> None:
    """Depth and size of a loaded JSON value, without recursion."""
    nodes, todo = 0, [(doc, 0)]
    while todo:
        value, depth = todo.pop()
        nodes += 1
        if nodes > limits.nodes:
            raise ValidationFailed.at("body", f"more than {limits.nodes} values")
        _check_scalar(value)
        if isinstance(value, dict):
            _check_keys(value)
        if isinstance(value, (dict, list)):
            if depth >= limits.depth:
                raise ValidationFailed.at("body", f"invalid JSON: nested more than {limits.depth} levels")
            children = value.values() if isinstance(value, dict) else value
            todo.extend((child, depth + 1) for child in children)
            nodes += len(value) if isinstance(value, dict) else 0  # the keys


def _check_scalar(value: Any) -> None:
    """What no stored document may hold: text that cannot be encoded (a lone surrogate made every
    YAML listing of its kind fail) and numbers that are not finite (NaN, inf: invalid JSON)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise ValidationFailed.at("body", f"not text: a lone surrogate U+{ord(value[e.start]):04X}") from None
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValidationFailed.at("body", f"{value} is not a finite number")


def _check_keys(mapping: dict) -> None:
    """Keys are names (metadata, variables, routes): no control or format characters."""
    for key in mapping:
        if isinstance(key, str):
            _check_scalar(key)
            bad = NOT_TEXT_RE.search(key)
            if bad:
                raise ValidationFailed.at("body", f"key {key!r}: U+{ord(bad.group()):04X} is a control or format character")


def _check_text(doc: Any) -> None:
    """_check_scalar/_check_keys over a YAML document (its shape is bounded by the composer)."""
    todo = [doc]
    while todo:
        value = todo.pop()
        _check_scalar(value)
        if isinstance(value, dict):
            _check_keys(value)
            todo.extend(value.values())
        elif isinstance(value, list):
            todo.extend(value)


def _yaml_documents(text: str, limits: Limits) -> list[Any]:
    yaml = _yaml()
    loader = _loader()(text, limits)
    try:
        docs = []
        while loader.check_data():
            doc = loader.get_data()
            if doc is not None:
                _check_text(doc)
                docs.append(doc)
        return docs
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        reason = getattr(e, "problem", None) or str(e)
        raise ValidationFailed.at("body", f"invalid YAML: {reason}{where}") from None
    except (ValueError, TypeError, OverflowError) as e:  # a constructor's: an int of 5000 digits, ...
        raise ValidationFailed.at("body", f"invalid YAML: {e}") from None
    finally:
        loader.dispose()


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
        try:
            text = yaml.dump(data, Dumper=_dumper(), sort_keys=False, default_flow_style=False, allow_unicode=True)
        except (UnicodeEncodeError, yaml.YAMLError):  # a lone surrogate stored before admission refused it
            text = yaml.dump(_leaves(data, _encodable), Dumper=_dumper(), sort_keys=False, default_flow_style=False,
                             allow_unicode=True)
        return text, YAML_RESPONSE
    try:
        return json.dumps(data, separators=(",", ":"), default=str, allow_nan=False), "application/json"
    except ValueError:  # NaN or inf stored before admission refused them: null, never invalid JSON
        return json.dumps(_leaves(data, _finite), separators=(",", ":"), default=str, allow_nan=False), "application/json"


def _leaves(value: Any, leaf) -> Any:
    """`value` with `leaf` applied to every key and scalar in it."""
    if isinstance(value, dict):
        return {leaf(k): _leaves(v, leaf) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_leaves(v, leaf) for v in value]
    return leaf(value)


def _encodable(value: Any) -> Any:
    """Lone surrogates written out as `\\udXXX` text."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8") if isinstance(value, str) else value


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value



def _yaml():
    """PyYAML, imported on first use (JSON-only requests never pay for it)."""
    import yaml

    return yaml


def _loader():
    """PyYAML's safe loading with a composer that counts (`_bounded_loader`), on libyaml's
    parser when present (its scanner and parser keep explicit stacks: only its composer recurses)."""
    return _bounded_loader()


@lru_cache(maxsize=1)
def _bounded_loader():
    from yaml.composer import Composer, ComposerError
    from yaml.constructor import SafeConstructor
    from yaml.events import AliasEvent, MappingStartEvent, SequenceStartEvent
    from yaml.resolver import Resolver

    class BoundedComposer(Composer):
        """Composer that refuses, before anything is constructed: collections nested deeper than
        `limits.depth`, more than `limits.nodes` values (an alias counts as the values it
        stands for), aliases standing for more than `limits.alias_nodes` values in all, and an
        alias inside its own anchor (a cycle)."""

        def __init__(self, limits: Limits):
            Composer.__init__(self)
            self.limits = limits
            self.depth = 0  # collections around the node being composed
            self.deepest = 0  # the deepest level reached inside it
            self.nodes = 0
            self.alias_nodes = 0
            self.sizes: dict[str, tuple[int, int]] = {}  # anchor -> (values, height), once composed

        def compose_document(self):
            self.sizes = {}
            return Composer.compose_document(self)

        def _refuse(self, reason: str, event) -> None:
            raise ComposerError(None, None, reason, event.start_mark)

        def _count(self, size: int, event) -> None:
            self.nodes += size
            if self.nodes > self.limits.nodes:
                self._refuse(f"more than {self.limits.nodes} values", event)

        def _reach(self, level: int, event) -> None:
            if level > self.limits.depth:
                self._refuse(f"nested more than {self.limits.depth} levels", event)
            self.deepest = max(self.deepest, level)

        def compose_node(self, parent, index):
            event = self.peek_event()
            if isinstance(event, AliasEvent):
                if event.anchor in self.anchors and event.anchor not in self.sizes:
                    self._refuse(f"alias *{event.anchor} inside its own anchor", event)
                size, height = self.sizes.get(event.anchor, (1, 0))
                self.alias_nodes += size
                if self.alias_nodes > self.limits.alias_nodes:
                    self._refuse(f"aliases expand to more than {self.limits.alias_nodes} values", event)
                self._reach(self.depth + height, event)  # an alias is as deep as what it stands for
                self._count(size, event)
                return Composer.compose_node(self, parent, index)
            start, outer = self.depth, self.deepest
            self.deepest = start
            if isinstance(event, (SequenceStartEvent, MappingStartEvent)):
                self.depth += 1
                self._reach(self.depth, event)
            before = self.nodes
            self._count(1, event)
            node = Composer.compose_node(self, parent, index)
            self.depth = start
            if event.anchor is not None:
                self.sizes[event.anchor] = (self.nodes - before, self.deepest - start)
            self.deepest = max(outer, self.deepest)
            return node

    from yaml.nodes import ScalarNode, SequenceNode

    class RouteKeyConstructor(SafeConstructor):
        """Vamp's YAML reader takes a flow-sequence key (`[external/1/2]:`, `[127.0.0.1:8080]:`,
        an external route written unquoted) as the text it is; PyYAML found an unhashable key."""

        def construct_mapping(self, node, deep=False):
            for i, (key, value) in enumerate(node.value):
                if isinstance(key, SequenceNode) and key.value and all(isinstance(k, ScalarNode) for k in key.value):
                    text = "[" + ", ".join(k.value for k in key.value) + "]"
                    node.value[i] = (ScalarNode("tag:yaml.org,2002:str", text, key.start_mark, key.end_mark), value)
            return super().construct_mapping(node, deep=deep)

    try:
        from yaml._yaml import CParser as parser  # libyaml: 5-10x faster scanning and parsing
    except ImportError:
        parser = None
    if parser is not None:
        class BoundedLoader(BoundedComposer, parser, RouteKeyConstructor, Resolver):
            def __init__(self, stream: str, limits: Limits):
                parser.__init__(self, stream)
                BoundedComposer.__init__(self, limits)
                RouteKeyConstructor.__init__(self)
                Resolver.__init__(self)
    else:
        from yaml.parser import Parser
        from yaml.reader import Reader
        from yaml.scanner import Scanner

        class BoundedLoader(Reader, Scanner, Parser, BoundedComposer, RouteKeyConstructor, Resolver):
            def __init__(self, stream: str, limits: Limits):
                Reader.__init__(self, stream)
                Scanner.__init__(self)
                Parser.__init__(self)
                BoundedComposer.__init__(self, limits)
                RouteKeyConstructor.__init__(self)
                Resolver.__init__(self)

    return BoundedLoader


def _dumper():
    yaml = _yaml()
    return getattr(yaml, "CSafeDumper", yaml.SafeDumper)
