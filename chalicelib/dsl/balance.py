"""A route's `balance`: HAProxy 2.6's own grammar (configuration manual, 4.2 `balance`), as a
table the parser and the property tests share (tests/dsl/strategies.py generates from it).

    roundrobin | static-rr | leastconn | first | source
    uri [len <n>] [depth <n>] [whole] [path-only]          (options in any order, each once)
    url_param <param> [check_post]
    hdr(<name>) [use_domain_only]
    random[(<draws>)]
    rdp-cookie[(<name>)]
    hash <expr>                                            (HAProxy 2.6+)

Stricter than HAProxy where HAProxy is lax: it ignores words after `roundrobin`, takes
`url_param id check_post 10`, and `uri depth` without a number fails the whole configuration
(finding 10 of issue 10). Numbers are 1..65535. A hash of the request (uri, url_param, hdr, a
`hash` of an HTTP fetch) needs an HTTP backend: on a TCP one HAProxy falls back to roundrobin
with a warning, so the gateway check refuses it there (`needs_http`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # header, URL parameter and cookie names
_NUMBER_RE = re.compile(r"^[1-9][0-9]{0,4}$")
MAX_NUMBER = 65535
MAX_LENGTH = 256


@dataclass(frozen=True)
class Option:
    word: str
    number: bool = False  # followed by a positive integer


@dataclass(frozen=True)
class Algorithm:
    name: str
    # None; "name": `(<name>)` required; "name?" / "number?": `(<...>)` optional;
    # "param": a name as the next word; "expr": a sample expression as the next word
    argument: str | None = None
    options: tuple[Option, ...] = ()
    needs_http: bool = False


ALGORITHMS: dict[str, Algorithm] = {a.name: a for a in (
    Algorithm("roundrobin"),
    Algorithm("static-rr"),
    Algorithm("leastconn"),
    Algorithm("first"),
    Algorithm("source"),
    Algorithm("uri", None, (Option("len", True), Option("depth", True), Option("whole"), Option("path-only")), True),
    Algorithm("url_param", "param", (Option("check_post"),), True),
    Algorithm("hdr", "name", (Option("use_domain_only"),), True),
    Algorithm("random", "number?"),
    Algorithm("rdp-cookie", "name?"),
    Algorithm("hash", "expr"),
)}

# `hash <expr>`: fetch -> (takes a name argument, reads the HTTP request); converters after commas.
HASH_FETCHES: dict[str, tuple[bool, bool]] = {
    "src": (False, False), "dst": (False, False), "src_port": (False, False), "dst_port": (False, False),
    "path": (False, True), "url": (False, True), "base": (False, True), "method": (False, True),
    "req.hdr": (True, True), "req.cook": (True, True), "url_param": (True, True), "urlp": (True, True),
}
HASH_CONVERTERS = ("lower", "upper")
_EXPR_RE = re.compile(r"^([a-z_.]{1,16})(?:\(([A-Za-z0-9_-]{1,64})\))?((?:,[a-z]{1,8}){0,4})$")


def _paren(word: str, name: str) -> str | None:
    """`hdr(host)` -> "host", `hdr` -> None; ValueError for `hdr(`, `hdr()`, `hdr(a)b`."""
    if word == name:
        return None
    if not (word.startswith(name + "(") and word.endswith(")")) or len(word) == len(name) + 2:
        raise ValueError(f"`{name}(<argument>)`")
    return word[len(name) + 1:-1]


def _algorithm(word: str) -> Algorithm:
    head = word.split("(", 1)[0]
    found = ALGORITHMS.get(head)
    if found is None:
        raise ValueError(f"unknown algorithm {head!r}: one of {', '.join(ALGORITHMS)}")
    return found


def _hash_expression(expr: str) -> bool:
    """True when the expression reads the HTTP request; ValueError when not supported."""
    m = _EXPR_RE.fullmatch(expr)
    fetch = HASH_FETCHES.get(m.group(1)) if m else None
    converters = [c for c in (m.group(3) or "").split(",") if c] if m else []
    if m is None or fetch is None or fetch[0] != (m.group(2) is not None) \
            or any(c not in HASH_CONVERTERS for c in converters):
        raise ValueError(f"hash {expr!r}: a fetch of {', '.join(HASH_FETCHES)} (req.hdr, req.cook, url_param "
                         f"and urlp with a name in parentheses), converters {', '.join(HASH_CONVERTERS)}")
    return fetch[1]


def parse(value: object) -> str:
    """The canonical text of a balance (words separated by one space), or ValueError saying why."""
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_LENGTH:
        raise ValueError(f"a balance algorithm of at most {MAX_LENGTH} characters")
    words = value.split(" ")
    words = [w for w in words if w]
    if any(not w.isprintable() or w != w.strip() for w in words):
        raise ValueError("words separated by spaces, no other whitespace or control characters")
    first, rest = words[0], words[1:]
    algorithm = _algorithm(first)
    kind = algorithm.argument
    if kind in ("name", "name?", "number?"):
        try:
            inner = _paren(first, algorithm.name)
        except ValueError as error:
            raise ValueError(f"{algorithm.name}: {error}") from None
        if inner is None and kind == "name":
            raise ValueError(f"{algorithm.name} needs a header name: {algorithm.name}(<name>)")
        if inner is not None and kind == "number?" and not _number(inner):
            raise ValueError(f"{algorithm.name}(<draws>): a number 1..{MAX_NUMBER}")
        if inner is not None and kind != "number?" and not _NAME_RE.fullmatch(inner):
            raise ValueError(f"{algorithm.name}({inner}): letters, digits, `_` and `-`, at most 64")
    elif first != algorithm.name:
        raise ValueError(f"{algorithm.name} takes no parentheses")
    if kind in ("param", "expr"):
        if not rest:
            raise ValueError(f"{algorithm.name} needs {'a URL parameter name' if kind == 'param' else 'a sample expression'}")
        argument, rest = rest[0], rest[1:]
        if kind == "param" and not _NAME_RE.fullmatch(argument):
            raise ValueError(f"url_param {argument!r}: letters, digits, `_` and `-`, at most 64")
        if kind == "expr":
            _hash_expression(argument)
    seen: set[str] = set()
    options = {o.word: o for o in algorithm.options}
    i = 0
    while i < len(rest):
        option = options.get(rest[i])
        if option is None:
            allowed = ", ".join(options) or "nothing"
            raise ValueError(f"{algorithm.name} takes {allowed} after it, not {rest[i]!r}")
        if option.word in seen:
            raise ValueError(f"{algorithm.name}: {option.word} given twice")
        seen.add(option.word)
        if option.number:
            if i + 1 >= len(rest) or not _number(rest[i + 1]):
                raise ValueError(f"{algorithm.name} {option.word} <n>: a number 1..{MAX_NUMBER}")
            i += 1
        i += 1
    return " ".join(words)


def _number(text: str) -> bool:
    return bool(_NUMBER_RE.fullmatch(text)) and int(text) <= MAX_NUMBER


def needs_http(balance: str) -> bool:
    """Does this (canonical) balance hash the HTTP request (not possible in a TCP backend)?"""
    words = balance.split(" ")
    algorithm = _algorithm(words[0])
    if algorithm.name == "hash":
        return _hash_expression(words[1])
    return algorithm.needs_http
