"""Conditions -> HAProxy ACLs, and the checks that keep raw ACLs and rewrite paths to what
HAProxy accepts.

HAProxy's `if` takes only a disjunction of conjunctions of (possibly negated) ACL names, no
parentheses. So a condition tree compiles bottom-up: each leaf is a named ACL, and each
`and`/`or` node sets a transaction variable from its operands' terms
(`http-request set-var(txn.vamp_cN) bool(1) if a b` / `if a or b`) that a named ACL reads back
(`var(txn.vamp_cN) -m bool`). `not` just negates its operand's term. The size of the output is
linear in the size of the tree (no expansion to a normal form).

Raw ACLs (`< ... >`) pass through only when they are a sample fetch of a known list, with
known flags and values of the fetch's type: otherwise HAProxy could refuse the whole
configuration of the namespace (`haproxy -c`), which no user input may cause.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from chalicelib.dsl.condition_grammar import AGENTS, And, Bool, Not, Or, Predicate, Raw


class RenderError(ValueError):
    """Something a user wrote that cannot become a valid HAProxy configuration; `path` says
    where in the gateway (e.g. `routes.sava/web.condition`), when known."""

    def __init__(self, reason: str, path: str = ""):
        super().__init__(reason)
        self.path = path


# name -> (type, min args, max args, derivative: an ACL keyword with its own match method)
_FETCHES: dict[str, tuple[str, int, int, bool]] = {
    "hdr": ("str", 0, 2, False), "req.hdr": ("str", 0, 2, False), "req.fhdr": ("str", 0, 2, False),
    "fhdr": ("str", 0, 2, False), "hdr_cnt": ("int", 0, 1, False), "req.hdr_cnt": ("int", 0, 1, False),
    "req.fhdr_cnt": ("int", 0, 1, False), "fhdr_cnt": ("int", 0, 1, False),
    "req.cook": ("str", 0, 1, False), "cook": ("str", 0, 1, False),
    "req.cook_cnt": ("int", 0, 1, False), "cook_cnt": ("int", 0, 1, False),
    "path": ("str", 0, 0, False), "url": ("str", 0, 0, False), "query": ("str", 0, 0, False),
    "base": ("str", 0, 0, False), "url_param": ("str", 1, 1, False), "urlp": ("str", 1, 1, False),
    "req.ver": ("str", 0, 0, False), "method": ("meth", 0, 0, True),
    "src": ("ip", 0, 0, False), "dst": ("ip", 0, 0, False),
    "src_port": ("int", 0, 0, False), "dst_port": ("int", 0, 0, False),
}
for _base, _args in (("path", 0), ("url", 0), ("base", 0), ("hdr", 2), ("cook", 1)):
    for _suffix in ("beg", "end", "sub", "dir", "dom"):
        _FETCHES[f"{_base}_{_suffix}"] = ("str", 0, _args, True)

_CONVERTERS = {"lower", "upper"}
_METHODS = {"str", "sub", "beg", "end", "dir", "dom", "found"}
_INT_OPS = {"eq", "ge", "gt", "le", "lt"}
_ARG_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")
_EXPR_RE = re.compile(r"^([a-z][a-z0-9_.]*)(?:\(([^()]*)\))?((?:,[a-z_]+)*)$")
_STR_VALUE_RE = re.compile(r"^[A-Za-z0-9_.:/=+*@~?^&,][A-Za-z0-9_.:/=+*@~?^&,\-]*$")
_INT_VALUE_RE = re.compile(r"^\d{1,9}(:\d{1,9})?$")
_IP_RE = re.compile(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:/(\d{1,2}))?$")
_METHOD_RE = re.compile(r"^[A-Z]{1,16}$")


def check_raw(acl: str) -> str:
    """The raw ACL in canonical spacing, or RenderError saying what is not supported."""
    words = acl.split()
    if not words:
        raise RenderError("empty raw ACL")
    m = _EXPR_RE.fullmatch(words[0])
    if not m or m.group(1) not in _FETCHES:
        raise RenderError(f"raw ACL <{acl}>: {words[0]!r} is not a supported sample fetch "
                          f"({', '.join(sorted(_FETCHES))})")
    name, args, converters = m.group(1), m.group(2), [c for c in (m.group(3) or "").split(",") if c]
    kind, low, high, derivative = _FETCHES[name]
    arg_list = [a.strip() for a in args.split(",")] if args else []
    if not low <= len(arg_list) <= high or any(not _ARG_RE.fullmatch(a) for a in arg_list):
        raise RenderError(f"raw ACL <{acl}>: {name} takes {low} to {high} arguments of letters, digits, `_.-`")
    if converters and (derivative or kind != "str" or any(c not in _CONVERTERS for c in converters)):
        raise RenderError(f"raw ACL <{acl}>: converters only {', '.join(sorted(_CONVERTERS))}, on string fetches")
    rest, method, i = words[1:], None, 0
    while i < len(rest) and rest[i].startswith("-"):
        flag = rest[i]
        if flag == "-i" and kind == "str":
            i += 1
        elif flag == "-m" and not derivative and i + 1 < len(rest) and rest[i + 1] in _METHODS:
            method = rest[i + 1]
            i += 2
        elif flag == "--":
            i += 1
            break
        else:
            raise RenderError(f"raw ACL <{acl}>: flag {flag!r} not supported here (-i on strings, "
                              f"-m {'|'.join(sorted(_METHODS))} on plain fetches)")
    values = rest[i:]
    if method == "found":
        if values:
            raise RenderError(f"raw ACL <{acl}>: `-m found` takes no value")
        return " ".join(words)
    if not values:
        raise RenderError(f"raw ACL <{acl}>: a value to match is required")
    if method is not None or kind == "str":
        if method is not None and kind != "str" and not converters:
            raise RenderError(f"raw ACL <{acl}>: -m {method} matches strings, {name} gives a {kind}")
        bad = [v for v in values if not _STR_VALUE_RE.fullmatch(v)]
    elif kind == "int":
        if values[0] in _INT_OPS:
            bad = [] if len(values) == 2 and values[1].isdigit() and len(values[1]) <= 9 else values
        else:
            bad = [v for v in values if not _INT_VALUE_RE.fullmatch(v)]
    elif kind == "ip":
        bad = [v for v in values if not _ip(v)]
    else:  # method names
        bad = [v for v in values if not _METHOD_RE.fullmatch(v)]
    if bad:
        raise RenderError(f"raw ACL <{acl}>: {bad[0]!r} is not a valid {kind} value for {name}")
    return " ".join(words)


def _ip(value: str) -> bool:
    m = _IP_RE.fullmatch(value)
    return bool(m) and all(int(x) <= 255 for x in m.groups()[:4]) and (m.group(5) is None or int(m.group(5)) <= 32)


def _samples(new_path: str) -> list[str]:
    """What `%\[([^\]]*)\]`'s findall gave, without its quadratic search on "%[%[%[..."."""
    found, at = [], 0
    while (start := new_path.find("%[", at)) >= 0 and (end := new_path.find("]", start + 2)) >= 0:
        found.append(new_path[start + 2:end])
        at = end + 1
    return found


_SAMPLE_FETCHES = {"path", "url", "query", "base", "method", "src", "dst", "hdr", "req.hdr", "req.fhdr",
                   "url_param", "urlp", "req.cook", "cook"}
_SAMPLE_CONVERTERS = {"lower", "upper", "url_dec"}


def check_new_path(new_path: str) -> str:
    """Every `%[...]` of a rewrite's new path is a known fetch with known converters."""
    for expr in _samples(new_path):
        m = _EXPR_RE.fullmatch(expr)
        converters = [c for c in (m.group(3) or "").split(",") if c] if m else []
        args = [a for a in (m.group(2) or "").split(",") if a] if m else []
        if (not m or m.group(1) not in _SAMPLE_FETCHES or any(c not in _SAMPLE_CONVERTERS for c in converters)
                or len(args) > 2 or any(not _ARG_RE.fullmatch(a) for a in args)):
            raise RenderError(f"rewrite %[{expr}]: supported are %[fetch] and %[fetch(arg)] with fetch one of "
                              f"{', '.join(sorted(_SAMPLE_FETCHES))}, converters {', '.join(sorted(_SAMPLE_CONVERTERS))}")
    return new_path


def predicate_criterion(p: Predicate) -> tuple[str, bool]:
    """(ACL criterion, negate) of one predicate (the condition grammar's predicates, dsl/condition_grammar.py)."""
    if p.subject == "user-agent":
        return f"req.fhdr(User-Agent) -m sub {AGENTS.get(p.value.lower(), p.value)}", p.negated
    if p.subject == "host":
        if ":" in p.value:
            return f"req.hdr(host) -m str -i {p.value}", p.negated
        return f"req.hdr(host),field(1,:) -m str -i {p.value}", p.negated
    if p.value is None:  # has / misses
        if p.subject == "cookie":
            return (f"req.cook_cnt({p.name}) eq 0" if p.negated else f"req.cook({p.name}) -m found"), False
        return (f"req.hdr_cnt({p.name}) eq 0" if p.negated else f"req.hdr_cnt({p.name}) gt 0"), False
    if p.subject == "cookie":
        return f"req.cook({p.name}) -m sub {p.value}", p.negated
    return f"req.fhdr({p.name}) -m sub {p.value}", p.negated


@dataclass
class Compiled:
    """ACLs and variable rules of one proxy (ACLs are per proxy in HAProxy)."""

    ids: Any  # a shared counter: variable names are unique in the whole configuration
    acls: list[tuple[str, str]] = field(default_factory=list)  # (name, criterion)
    rules: list[tuple[str, str]] = field(default_factory=list)  # (variable, condition)

    def term(self, node: Any) -> str:
        """A term usable in `if`: an ACL name, maybe negated with `!`."""
        if isinstance(node, Bool):
            return "TRUE" if node.value else "FALSE"
        if isinstance(node, Not):
            if isinstance(node.operand, Bool):
                return self.term(Bool(not node.operand.value))
            inner = self.term(node.operand)
            return inner[1:] if inner.startswith("!") else "!" + inner
        if isinstance(node, Predicate):
            criterion, negate = predicate_criterion(node)
            name = self._acl(criterion)
            return "!" + name if negate else name
        if isinstance(node, Raw):
            return self._acl(check_raw(node.acl))
        if isinstance(node, (And, Or)):
            terms = [self.term(o) for o in node.operands]
            var = f"vamp_c{next(self.ids)}"
            self.rules.append((var, (" " if isinstance(node, And) else " or ").join(terms)))
            return self._acl(f"var(txn.{var}) -m bool")
        raise RenderError(f"not a condition: {node!r}")

    def _acl(self, criterion: str) -> str:
        for name, existing in self.acls:
            if existing == criterion:
                return name
        name = f"vamp_a{next(self.ids)}"
        self.acls.append((name, criterion))
        return name


def check_condition(node: Any) -> None:
    """Raise RenderError if the condition cannot compile (only raw ACLs can fail)."""
    Compiled(itertools.count()).term(node)
