"""Mappings as OpenSearch applies them to documents, for the fake (tests/fakes/opensearch_server.py).

An index's mapping comes from the highest-priority index template matching its name when it is
created. Each document is parsed against it: a mapped field's value must fit its type (the
error bodies are OpenSearch's `mapper_parsing_exception`, with its wording), `date_nanos` holds
1970-01-01T00:00:00Z .. 2262-04-11T23:47:16.854775807Z, an unmapped field is ignored under
`dynamic: false`, refused under `strict`, and mapped (dynamic templates first, then OpenSearch's
defaults: text + keyword for strings, long, float, boolean, object, date detection) otherwise.
Mapped fields (objects and multi-fields included) count toward `index.mapping.total_fields.limit`
(default 1000); a document whose new fields pass it is refused whole. What a document yields for
search is its indexed values per field path: keyword exact strings, text lowercase tokens,
numbers, dates as nanoseconds since the epoch.
"""
from __future__ import annotations

import fnmatch
import ipaddress
import math
import re
from datetime import datetime, timezone
from typing import Any

MAX_NANOS = 2**63 - 1  # 2262-04-11T23:47:16.854775807Z
DEFAULT_TOTAL_FIELDS = 1000
_INT_RANGES = {"byte": 2**7, "short": 2**15, "integer": 2**31, "long": 2**63}
_NUMERIC = {"byte", "short", "integer", "long", "float", "double", "half_float", "scaled_float", "unsigned_long"}
# strict_date_optional_time(_nanos): yyyy[-MM[-dd['T'HH[:mm[:ss[.S{1,9}]]]]]][Z|±HH:mm]
_ISO = re.compile(r"^(-?\d{4,})(?:-(\d\d)(?:-(\d\d)(?:T(\d\d)(?::(\d\d)(?::(\d\d)(?:[.,](\d{1,9}))?)?)?)?)?)?"
                  r"(Z|[+-]\d\d:?\d\d)?$")


class MappingError(Exception):
    """A document the mapping refuses: status 400, with OpenSearch's error type and reason."""

    def __init__(self, kind: str, reason: str, caused_by: dict | None = None):
        super().__init__(reason)
        self.kind, self.reason, self.caused_by = kind, reason, caused_by

    def body(self) -> dict:
        error = {"type": self.kind, "reason": self.reason}
        if self.caused_by:
            error["caused_by"] = self.caused_by
        return error


def parse_date_nanos(value: Any, formats: str = "strict_date_optional_time||epoch_millis") -> int:
    """Nanoseconds since the epoch (may be negative) of a date value; ValueError if unparseable."""
    allowed = formats.split("||")
    if isinstance(value, bool):
        raise ValueError("boolean")
    if isinstance(value, (int, float)) or (isinstance(value, str) and re.fullmatch(r"^-?\d+(\.\d+)?$", value)):
        number = float(value)
        if "epoch_second" in allowed:
            return int(number * 1_000_000_000)
        if "epoch_millis" in allowed:
            return int(number * 1_000_000)
        raise ValueError("a number, and the format takes none")
    if not isinstance(value, str):
        raise ValueError("not a date")
    m = _ISO.match(value)
    if not m:
        raise ValueError("not strict_date_optional_time")
    year, month, day, hour, minute, second, fraction, zone = m.groups()
    dt = datetime(int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0), int(second or 0),
                  tzinfo=timezone.utc)
    seconds = int((dt - datetime(1970, 1, 1, tzinfo=timezone.utc)).total_seconds())
    if zone and zone != "Z":
        sign = -1 if zone[0] == "+" else 1
        digits = zone[1:].replace(":", "")
        seconds += sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return seconds * 1_000_000_000 + int((fraction or "0").ljust(9, "0"))


def _leaf_values(kind: str, spec: dict, value: Any) -> list:
    """What one value of a mapped field indexes as; ValueError (with why) if it does not fit."""
    if kind == "keyword":
        if isinstance(value, (dict, list)):
            raise ValueError("an object or array is not a keyword")
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        limit = spec.get("ignore_above")
        return [] if limit is not None and len(text) > int(limit) else [text]
    if kind in ("text", "match_only_text"):
        return [t for t in re.split(r"\W+", str(value).lower()) if t]
    if kind in ("date", "date_nanos"):
        nanos = parse_date_nanos(value, spec.get("format", "strict_date_optional_time||epoch_millis"))
        if kind == "date_nanos" and nanos < 0:
            raise OverflowError(f"date[{value}] is before the epoch in 1970 and cannot be stored in nanosecond resolution")
        if kind == "date_nanos" and nanos > MAX_NANOS:
            raise OverflowError(f"date[{value}] is after 2262-04-11T23:47:16.854775807 and cannot be stored in "
                                "nanosecond resolution")
        return [nanos]
    if kind in _INT_RANGES:
        if isinstance(value, bool):
            raise ValueError("a boolean is not a number")
        number = float(value)  # strings coerce; "abc" is a ValueError
        if math.isnan(number) or math.isinf(number) or not -_INT_RANGES[kind] <= number < _INT_RANGES[kind]:
            raise ValueError(f"Value [{value}] is out of range for {'an' if kind == 'integer' else 'a'} {kind}")
        return [int(number)]
    if kind in _NUMERIC:
        if isinstance(value, bool):
            raise ValueError("a boolean is not a number")
        number = float(value)
        if math.isnan(number) or math.isinf(number):
            raise ValueError(f"[{kind}] supports only finite values, but got [{value}]")
        return [number]
    if kind == "boolean":
        if value in (True, False):
            return [bool(value)]
        if value in ("true", "false", ""):
            return [value == "true"]
        raise ValueError(f"Failed to parse value [{value}] as only [true] or [false] are allowed.")
    if kind == "ip":
        return [str(ipaddress.ip_address(str(value)))]
    raise ValueError(f"the fake does not know the type [{kind}]")


def _dynamic_type(value: Any, date_detection: bool) -> dict | None:
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "long"}
    if isinstance(value, float):
        return {"type": "float"}
    if isinstance(value, dict):
        return {"type": "object"}
    if isinstance(value, str):
        if date_detection:
            try:
                parse_date_nanos(value, "strict_date_optional_time")
                return {"type": "date"}
            except ValueError:
                pass
        return {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
    return None


def _mapping_type(value: Any) -> str:
    return {bool: "boolean", int: "long", float: "double", dict: "object", str: "string"}.get(type(value), "object")


class Mapping:
    """One index's mapping: field path -> its spec ({"type": ...}; objects too)."""

    def __init__(self, mappings: dict | None = None, settings: dict | None = None):
        mappings = mappings or {}
        self.dynamic = mappings.get("dynamic", True)
        self.date_detection = mappings.get("date_detection", True)
        self.templates = mappings.get("dynamic_templates", [])
        flat = _flat_settings(settings or {})
        self.total_fields_limit = int(flat.get("index.mapping.total_fields.limit", DEFAULT_TOTAL_FIELDS))
        self.fields: dict[str, dict] = {}
        self._add("", mappings.get("properties", {}))

    def _add(self, prefix: str, properties: dict) -> None:
        for name, spec in properties.items():
            path = prefix + name
            kind = spec.get("type", "object" if "properties" in spec else None)
            self.fields[path] = {**{k: v for k, v in spec.items() if k != "properties"}, "type": kind}
            if "properties" in spec:
                self._add(path + ".", spec["properties"])

    def count(self, fields: dict[str, dict] | None = None) -> int:
        specs = (fields if fields is not None else self.fields).values()
        return sum(1 + len(spec.get("fields", {})) for spec in specs)

    def as_properties(self) -> dict:
        out: dict = {}
        for path, spec in sorted(self.fields.items()):
            *parents, leaf = path.split(".")
            node = out
            for parent in parents:
                node = node.setdefault(parent, {}).setdefault("properties", {})
            node.setdefault(leaf, {}).update(spec)
        return {"dynamic": self.dynamic, "properties": out}

    def parse(self, source: Any, doc_id: str) -> dict[str, list]:
        """The document's indexed values by field path; MappingError if the mapping refuses it.
        New dynamic fields are added only when the whole document is accepted."""
        if not isinstance(source, dict):
            raise MappingError("mapper_parsing_exception", "failed to parse",
                               {"type": "not_x_content_exception",
                                "reason": "Compressor detection can only be called on some xcontent bytes"})
        added: dict[str, dict] = {}
        indexed: dict[str, list] = {}
        self._walk(source, "", self.dynamic, added, indexed, doc_id)
        if added and self.count() + self.count(added) > self.total_fields_limit:
            raise MappingError("illegal_argument_exception",
                               f"Limit of total fields [{self.total_fields_limit}] has been exceeded")
        self.fields.update(added)
        return indexed

    def _spec(self, path: str, added: dict) -> dict | None:
        return self.fields.get(path) or added.get(path)

    def _walk(self, obj: dict, prefix: str, dynamic: Any, added: dict, indexed: dict, doc_id: str) -> None:
        for key, value in obj.items():
            if key == "" or key.strip(".") != key or ".." in key:
                raise MappingError("mapper_parsing_exception", "failed to parse",
                                   {"type": "illegal_argument_exception",
                                    "reason": f"field name cannot contain only whitespace or dots: ['{key}']"
                                    if key else "field name cannot be an empty string"})
            if "." in key:  # `a.b: 1` is `a: {b: 1}`
                head, rest = key.split(".", 1)
                value, key = {rest: value}, head
            path = prefix + key
            self._field(path, key, value, dynamic, added, indexed, doc_id)

    def _field(self, path: str, key: str, value: Any, dynamic: Any, added: dict, indexed: dict, doc_id: str) -> None:
        if value is None:
            return
        if isinstance(value, list):
            for item in value:
                self._field(path, key, item, dynamic, added, indexed, doc_id)
            return
        spec = self._spec(path, added)
        if spec is None:
            mode = str(dynamic).lower()
            if mode == "false":
                return  # kept in _source, not indexed
            if mode == "strict":
                parent = path.rpartition(".")[0] or "_doc"
                raise MappingError("strict_dynamic_mapping_exception",
                                   f"mapping set to strict, dynamic introduction of [{key}] within [{parent}] is not allowed")
            spec = self._from_templates(path, key, value) or _dynamic_type(value, self.date_detection)
            if spec is None:
                return
            added[path] = spec
        kind = spec.get("type")
        if kind in ("object", None):
            if spec.get("enabled", True) is False:
                return
            if not isinstance(value, dict):
                raise MappingError("mapper_parsing_exception",
                                   f"object mapping for [{path}] tried to parse field [{key}] as object, but found a "
                                   "concrete value")
            self._walk(value, path + ".", spec.get("dynamic", dynamic), added, indexed, doc_id)
            return
        if isinstance(value, dict):
            raise MappingError("mapper_parsing_exception",
                               f"failed to parse field [{path}] of type [{kind}] in document with id '{doc_id}'. "
                               "Preview of field's value: '" + str(value)[:50] + "'")
        try:
            values = _leaf_values(kind, spec, value)
        except (ValueError, OverflowError) as e:
            raise MappingError("mapper_parsing_exception",
                               f"failed to parse field [{path}] of type [{kind}] in document with id '{doc_id}'. "
                               f"Preview of field's value: '{value}'",
                               {"type": "illegal_argument_exception", "reason": str(e)}) from None
        indexed.setdefault(path, []).extend(values)
        for sub, sub_spec in spec.get("fields", {}).items():
            try:
                indexed.setdefault(f"{path}.{sub}", []).extend(_leaf_values(sub_spec["type"], sub_spec, value))
            except (ValueError, OverflowError):
                pass

    def _from_templates(self, path: str, key: str, value: Any) -> dict | None:
        for entry in self.templates:
            (_, rule), *_ = entry.items()
            if "path_match" in rule and not fnmatch.fnmatchcase(path, rule["path_match"]):
                continue
            if "match" in rule and not fnmatch.fnmatchcase(key, rule["match"]):
                continue
            if "match_mapping_type" in rule and rule["match_mapping_type"] not in ("*", _mapping_type(value)):
                continue
            if isinstance(value, dict) and rule["mapping"].get("type", "object") != "object":
                continue  # an object under a leaf template: mapped as an object (its leaves match)
            return dict(rule["mapping"])
        return None

    def kind(self, path: str) -> str | None:
        spec = self.fields.get(path)
        if spec is None and "." in path:
            parent, _, sub = path.rpartition(".")
            multi = (self.fields.get(parent) or {}).get("fields", {}).get(sub)
            return multi["type"] if multi else None
        return None if spec is None else spec.get("type")

    def spec(self, path: str) -> dict:
        if path in self.fields:
            return self.fields[path]
        parent, _, sub = path.rpartition(".")
        return (self.fields.get(parent) or {}).get("fields", {}).get(sub, {})

    def query_value(self, path: str, value: Any) -> Any:
        """A term or range bound as the field indexes it; MappingError (a 400) if it cannot be."""
        kind = self.kind(path)
        if kind is None:
            return None
        if kind in ("text", "match_only_text"):
            return str(value)  # term queries are not analysed: an upper-case term matches nothing
        try:
            values = _leaf_values(kind, {k: v for k, v in self.spec(path).items() if k != "ignore_above"}, value)
        except (ValueError, OverflowError) as e:
            raise MappingError("search_phase_execution_exception", "all shards failed",
                               {"type": "illegal_argument_exception", "reason": str(e)}) from None
        return values[0] if values else None


def _flat_settings(settings: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in settings.items():
        name = prefix + key
        if isinstance(value, dict):
            out.update(_flat_settings(value, name + "."))
        else:
            out[name] = value
    if out and not all(k.startswith("index.") for k in out):
        out = {(k if k.startswith("index.") else "index." + k): v for k, v in out.items()}
    return out


def refresh_seconds(settings: dict | None) -> float | None:
    """index.refresh_interval in seconds (default 1s); None for -1 (no periodic refresh)."""
    value = str(_flat_settings(settings or {}).get("index.refresh_interval", "1s"))
    if value == "-1":
        return None
    m = re.fullmatch(r"^(\d+(?:\.\d+)?)(ms|s|m)?$", value)
    if not m:
        raise ValueError(f"failed to parse setting [index.refresh_interval] with value [{value}]")
    number, unit = float(m.group(1)), m.group(2) or "ms"
    return number / 1000 if unit == "ms" else number * (60 if unit == "m" else 1)


_INDEX_BAD = set('\\/*?"<>| ,#:')


def index_name_error(name: str) -> str | None:
    """Why OpenSearch refuses an index name (MetadataCreateIndexService.validateIndexOrAliasName), or None."""
    if not name:
        return "must not be empty"
    if name != name.lower():
        return "must be lowercase"
    bad = sorted(_INDEX_BAD & set(name))
    if bad:
        return "must not contain the following characters " + "[" + ", ".join(repr(c)[1:-1] for c in bad) + "]"
    if name[0] in "-_+":
        return "must not start with '_', '-', or '+'"
    if name in (".", ".."):
        return "must not be '.' or '..'"
    if len(name.encode()) > 255:
        return f"index name is too long, ({len(name.encode())} > 255)"
    return None
