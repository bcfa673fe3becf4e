"""How the fake Kubernetes API server (kubernetes_server.py) merges what it is sent: server-side
apply with field managers, strategic merge patch, JSON merge patch and JSON patch, each by the
official OpenAPI schemas the `kubernetes-validate` package bundles (the same ones it validates
with): a list is a map by its `x-kubernetes-list-map-keys`, a set or atomic by
`x-kubernetes-list-type`, a strategic patch merges by `x-kubernetes-patch-merge-key`.

Fields are paths of segments: a map key (str), a list item of a map-list (`("k", keys)`), a value
of a set-list (`("v", json)`); a scalar, an atomic list or map, an empty map is a leaf. A field
manager owns paths; apply sets what its configuration holds, removes what it owned and no longer
holds (unless another manager owns it too), and conflicts with another manager's differing
value unless forced, as structured-merge-diff does.
"""
from __future__ import annotations

import copy
import json
from functools import lru_cache
from importlib import resources
from typing import Any

SCHEMA_VERSION = "1.37.0"
ITEM = object()  # the marker of a map-list item itself (`.` in fieldsV1)
_MISSING = object()


class PatchError(Exception):
    """A patch the API server refuses: `code` and `reason` of its Status."""

    def __init__(self, code: int, reason: str, message: str):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


@lru_cache(maxsize=None)
def _definitions() -> dict:
    folder = resources.files("kubernetes_validate") / "kubernetes-json-schema" / f"v{SCHEMA_VERSION}-local-strict"
    return json.loads((folder / "_definitions.json").read_text())["$defs"]


@lru_cache(maxsize=None)
def kind_schema(kind: str, api_version: str) -> dict:
    group = api_version.split("/")[0].split(".")[0] + "-" if "/" in api_version else ""
    version = api_version.split("/")[-1]
    folder = resources.files("kubernetes_validate") / "kubernetes-json-schema" / f"v{SCHEMA_VERSION}-local-strict"
    return json.loads((folder / f"{kind.lower()}-{group}{version}.json").read_text())


@lru_cache(maxsize=None)
def validator(kind: str, api_version: str) -> Any:
    """kubernetes-validate's check of `kind` (its bundled schemas, strict), built once: the
    package's own `validate` reads and parses every schema again on each call."""
    import jsonschema
    from referencing import Registry, Resource

    folder = resources.files("kubernetes_validate") / "kubernetes-json-schema" / f"v{SCHEMA_VERSION}-local-strict"
    definitions = Resource.from_contents(json.loads((folder / "_definitions.json").read_text()))
    schema = kind_schema(kind, api_version)
    registry = Resource.from_contents(schema) @ (definitions @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def _resolve(node: dict) -> dict:
    while isinstance(node, dict) and "$ref" in node:
        extra = {k: v for k, v in node.items() if k not in ("$ref", "description")}
        node = {**_definitions()[node["$ref"].rsplit("/", 1)[-1]], **extra}
    return node if isinstance(node, dict) else {}


def _child(node: dict, key: str) -> dict:
    node = _resolve(node)
    props = node.get("properties") or {}
    if key in props:
        return props[key]
    extra = node.get("additionalProperties")
    return extra if isinstance(extra, dict) else {}


def _items(node: dict) -> dict:
    return _resolve(node).get("items") or {}


def _is_map(node: dict, value: Any) -> bool:
    node = _resolve(node)
    return isinstance(value, dict) and node.get("x-kubernetes-map-type") != "atomic" and (
        "properties" in node or isinstance(node.get("additionalProperties"), dict))


def _list_type(node: dict) -> tuple[str, list[str]]:
    node = _resolve(node)
    kind = node.get("x-kubernetes-list-type", "atomic")
    return kind, list(node.get("x-kubernetes-list-map-keys") or [])


def _item_key(item: Any, keys: list[str]) -> tuple:
    return tuple((k, item.get(k)) for k in keys) if isinstance(item, dict) else (("", item),)


# -- field sets ----------------------------------------------------------------------------------

def fields(obj: Any, node: dict, prefix: tuple = ()) -> dict[tuple, Any]:
    """Every field of `obj` as path -> value (ITEM for a map-list item itself)."""
    out: dict[tuple, Any] = {}
    if _is_map(node, obj) and obj:
        for key, value in obj.items():
            if value is not None:
                out.update(fields(value, _child(node, key), prefix + (key,)))
        return out
    if isinstance(obj, list):
        kind, keys = _list_type(node)
        if kind == "map":
            for item in obj:
                segment = ("k", _item_key(item, keys))
                out[prefix + (segment,)] = ITEM
                out.update(fields(item, _items(node), prefix + (segment,)))
            return out
        if kind == "set":
            for value in obj:
                out[prefix + (("v", json.dumps(value, sort_keys=True)),)] = value
            return out
    out[prefix] = obj
    return out


def owned_fields(kind: str, obj: dict) -> dict[tuple, Any]:
    """The fields a manager may own: labels, annotations, spec (never status or server metadata)."""
    schema = kind_schema(obj.get("kind") or kind, obj.get("apiVersion") or "v1")
    meta = obj.get("metadata") or {}
    view = {"metadata": {k: meta[k] for k in ("labels", "annotations") if meta.get(k)}}
    if "spec" in obj:
        view["spec"] = obj["spec"]
    return {p: v for p, v in fields(view, schema).items() if len(p) > 1}


def fields_v1(paths) -> dict:
    """Paths as the API server shows them in `metadata.managedFields[].fieldsV1`."""
    tree: dict = {}
    for path in sorted(paths, key=lambda p: (len(p), repr(p))):
        node = tree
        for segment in path:
            if isinstance(segment, str):
                name = "f:" + segment
            elif segment[0] == "k":
                name = "k:" + json.dumps(dict(segment[1]), sort_keys=True, separators=(",", ":"))
            else:
                name = "v:" + segment[1]
            node = node.setdefault(name, {})
        if path and not isinstance(path[-1], str) and path[-1][0] == "k":
            node.setdefault(".", {})
    return tree


def _locate(obj: Any, segment: Any) -> tuple[Any, Any]:
    """(container, index) of a segment inside obj, or (None, None)."""
    if isinstance(segment, str):
        return (obj, segment) if isinstance(obj, dict) and segment in obj else (None, None)
    if not isinstance(obj, list):
        return None, None
    for index, item in enumerate(obj):
        if segment[0] == "k" and isinstance(item, dict) and _item_key(item, [k for k, _ in segment[1]]) == segment[1]:
            return obj, index
        if segment[0] == "v" and json.dumps(item, sort_keys=True) == segment[1]:
            return obj, index
    return None, None


def remove_field(obj: dict, path: tuple) -> None:
    """Remove a field, and the maps that held only it."""
    trail = []
    node: Any = obj
    for segment in path[:-1]:
        container, index = _locate(node, segment)
        if container is None:
            return
        trail.append((container, index))
        node = container[index]
    container, index = _locate(node, path[-1])
    if container is None:
        return
    del container[index]
    for container, index in reversed(trail):
        if container[index] in ({}, []) and isinstance(container, dict):
            del container[index]
        else:
            break


# -- server-side apply -----------------------------------------------------------------------------

def _apply_merge(base: Any, config: Any, node: dict) -> Any:
    if _is_map(node, config) and isinstance(base, dict):
        out = dict(base)
        for key, value in config.items():
            if value is None:
                continue
            out[key] = _apply_merge(base.get(key, _MISSING), value, _child(node, key)) if key in base else \
                copy.deepcopy(value)
        return out
    if isinstance(config, list) and isinstance(base, list):
        kind, keys = _list_type(node)
        if kind == "map":
            merged = {_item_key(i, keys): i for i in base}
            order = [_item_key(i, keys) for i in config]
            for item in config:
                key = _item_key(item, keys)
                merged[key] = _apply_merge(merged[key], item, _items(node)) if key in merged else copy.deepcopy(item)
            return [merged[k] for k in order] + [v for k, v in merged.items() if k not in order]
        if kind == "set":
            return list(config) + [v for v in base if v not in config]
    return copy.deepcopy(config)


def apply(kind: str, current: dict | None, config: dict, manager: str, managers: dict[str, set],
          force: bool) -> tuple[dict, dict[str, set]]:
    """The object after `manager` applies `config`, and every manager's fields after it."""
    wanted = owned_fields(kind, config)
    before = owned_fields(kind, current) if current else {}
    managers = {m: set(p) for m, p in managers.items()}
    conflicts = []
    for path, value in wanted.items():
        if value is ITEM:
            continue
        for other, paths in managers.items():
            if other != manager and path in paths and before.get(path, _MISSING) != value:
                conflicts.append((other, path))
    if conflicts and not force:
        listed = "; ".join(f'conflict with "{m}": {_dotted(p)}' for m, p in conflicts)
        raise PatchError(409, "Conflict", f"Apply failed with {len(conflicts)} conflict(s): {listed}")
    for other, path in conflicts:
        managers[other].discard(path)
    result = copy.deepcopy(current) if current else {}
    others = set().union(*(p for m, p in managers.items() if m != manager)) if managers else set()
    # Shortest first: a list item goes with everything in it.
    for path in sorted(managers.get(manager, set()) - set(wanted), key=len):
        if path not in others and not any(o[:len(path)] == path for o in others):
            remove_field(result, path)
    schema = kind_schema(config.get("kind") or kind, config.get("apiVersion") or "v1")
    result = _apply_merge(result, config, schema)
    managers[manager] = set(wanted)
    return result, {m: p for m, p in managers.items() if p}


def updated_by(kind: str, before: dict | None, after: dict, manager: str,
               managers: dict[str, set]) -> dict[str, set]:
    """Ownership after an update (POST, PUT, a patch): the manager takes every field it changed."""
    old = owned_fields(kind, before) if before else {}
    new = owned_fields(kind, after)
    changed = {p for p, v in new.items() if old.get(p, _MISSING) != v}
    gone = set(old) - set(new)
    out = {m: (p - changed - gone) for m, p in managers.items()}
    out[manager] = out.get(manager, set()) | changed
    return {m: p for m, p in out.items() if p}


def _dotted(path: tuple) -> str:
    parts = []
    for segment in path:
        if isinstance(segment, str):
            parts.append("." + segment)
        elif segment[0] == "k":
            parts.append("[" + ",".join(f"{k}={json.dumps(v)}" for k, v in segment[1]) + "]")
        else:
            parts.append(f"[{segment[1]}]")
    return "".join(parts)


# -- the other patch types ---------------------------------------------------------------------------

def strategic_merge(base: Any, patch: Any, node: dict) -> Any:
    """A strategic merge patch: maps merge (null deletes), lists with a merge key merge by it
    (`$patch: delete` removes an item), other lists are replaced."""
    if not isinstance(patch, dict) or not isinstance(base, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    out = dict(base)
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key == "$retainKeys":
            continue  # ordering and retention hints kubectl sends: the merge does not need them
        if key.startswith("$"):
            raise PatchError(400, "BadRequest", f"unknown strategic merge patch directive {key!r}")
        child = _child(node, key)
        if value is None:
            out.pop(key, None)
        elif isinstance(value, list) and isinstance(base.get(key), list):
            out[key] = _strategic_list(base[key], value, child)
        elif isinstance(value, dict) and isinstance(base.get(key), dict) and _resolve(child).get(
                "x-kubernetes-map-type") != "atomic":
            out[key] = strategic_merge(base[key], value, child)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _strategic_list(base: list, patch: list, node: dict) -> list:
    resolved = _resolve(node)
    if "merge" not in (resolved.get("x-kubernetes-patch-strategy") or ""):
        return copy.deepcopy(patch)
    key = resolved.get("x-kubernetes-patch-merge-key")
    if not key:
        return list(base) + [v for v in patch if v not in base]
    out = [copy.deepcopy(i) for i in base]
    for item in patch:
        index = next((n for n, i in enumerate(out) if isinstance(i, dict) and i.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if index is not None:
                del out[index]
        elif index is None:
            out.append(copy.deepcopy(item))
        else:
            out[index] = strategic_merge(out[index], item, _items(node))
    return out


def merge_patch(base: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(base) if isinstance(base, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def json_patch(doc: Any, operations: Any) -> Any:
    """RFC 6902: add, remove, replace, move, copy, test."""
    if not isinstance(operations, list):
        raise PatchError(400, "BadRequest", "a JSON patch is a list of operations")
    doc = copy.deepcopy(doc)
    for op in operations:
        if not isinstance(op, dict) or "path" not in op:
            raise PatchError(400, "BadRequest", f"invalid JSON patch operation {op!r}")
        kind = op.get("op")
        if kind in ("move", "copy"):
            value = copy.deepcopy(_pointer_get(doc, op.get("from", "")))
            if kind == "move":
                doc = _pointer_set(doc, op["from"], _MISSING)
            doc = _pointer_set(doc, op["path"], value, insert=True)
        elif kind == "test":
            if _pointer_get(doc, op["path"]) != op.get("value"):
                raise PatchError(422, "Invalid", f"the test of {op['path']} failed")
        elif kind in ("add", "replace"):
            if kind == "replace":
                _pointer_get(doc, op["path"])
            doc = _pointer_set(doc, op["path"], copy.deepcopy(op.get("value")), insert=kind == "add")
        elif kind == "remove":
            doc = _pointer_set(doc, op["path"], _MISSING)
        else:
            raise PatchError(400, "BadRequest", f"unknown JSON patch operation {kind!r}")
    return doc


def _tokens(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(400, "BadRequest", f"invalid JSON pointer {pointer!r}")
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _pointer_get(doc: Any, pointer: str) -> Any:
    for token in _tokens(pointer):
        try:
            doc = doc[int(token)] if isinstance(doc, list) else doc[token]
        except (KeyError, IndexError, ValueError, TypeError):
            raise PatchError(422, "Invalid", f"the path {pointer!r} does not exist") from None
    return doc


def _pointer_set(doc: Any, pointer: str, value: Any, insert: bool = False) -> Any:
    tokens = _tokens(pointer)
    if not tokens:
        return value
    parent = _pointer_get(doc, "/" + "/".join(t.replace("~", "~0").replace("/", "~1") for t in tokens[:-1])) \
        if len(tokens) > 1 else doc
    last = tokens[-1]
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last) if last.isdigit() else -1
        if not 0 <= index <= len(parent) - (0 if insert and value is not _MISSING else 1):
            raise PatchError(422, "Invalid", f"the path {pointer!r} does not exist")
        if value is _MISSING:
            del parent[index]
        elif insert:
            parent.insert(index, value)
        else:
            parent[index] = value
    elif isinstance(parent, dict):
        if value is _MISSING:
            if last not in parent:
                raise PatchError(422, "Invalid", f"the path {pointer!r} does not exist")
            del parent[last]
        else:
            parent[last] = value
    else:
        raise PatchError(422, "Invalid", f"the path {pointer!r} does not exist")
    return doc
