"""What the agent lets HAProxy run: the sections and directives the control plane renders
(chalicelib/gateways/templates/*.j2), in the shapes it renders them, and nothing else.

A signature (envelope.py) says the control plane produced a configuration; this says the
configuration is one the control plane *can* produce, so a leaked signing key, or a bug
upstream, still cannot make HAProxy run a program (`program`, `external-check`, `lua-*`),
change its environment (`setenv`...), open a socket of its own (`stats socket`), or read a file
(`errorfile`, `ca-file`, `crt`, `-f` pattern files, `map` converters, `log` to a file ...): the
renderer writes none of these, so none of them passes. It is an allowlist, not a list of the
dangerous: a directive added to the templates must be added here (the property test in
tests/gateways/test_allowlist.py renders the gateway property tests' gateways and checks every
configuration passes).

Checked line by line; HAProxy's own syntax is narrowed first so that what is checked is what
HAProxy reads: no backslash (HAProxy decodes `\\x70rogram`), no quote and no `$` (environment
expansion) but in the renderer's constant lines, no `#` but a whole-line comment, no `.if`
blocks, ASCII only. Pure: `check(text)` returns the refusals (empty: it passes).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from chalicelib.contract.log_format import (
    GLOBAL_LOG_LINE,
    IDLE_BIND_LINE,
    LOG_FORMAT_LINE,
    NODE_ADDRESS_ENV,
    TCP_LOG_FORMAT_LINE,
    proxy_gateway,
)

IDENT = r"[A-Za-z0-9_.:\-]{1,512}"
NUM = r"\d{1,9}"
ADDR = r"(?:[A-Za-z0-9.\-_]{1,253}|[0-9A-Fa-f:.]{2,45}|\*)"
TIME = r"\d{1,9}(?:us|ms|s|m|h|d)?"
BALANCE = r"[a-z][a-z_\-]*(?:\([A-Za-z0-9_\-]*\))?(?: [A-Za-z0-9_\-]+)*"
# `balance hash <expr>` (dsl/balance.py): the expression is checked as a sample fetch, as in ACLs.
HASH_EXPR = r"(?P<expr>[a-z][a-z0-9_.]*(?:\([^\s()'\"$\\#{}]*\))?(?:,[a-z_]+(?:\([^\s()'\"$\\#{}]*\))?)*)"
MODE = r"(?:http|tcp)"
_FMT = re.compile(r"^[A-Za-z0-9\-._~/:@!+,;=*&%\[\]()^]{1,2048}")
_SAMPLE_IN_FMT = re.compile(r"%\[([^\]%]*)\]")  # no `%` inside: linear on `%[%[%[...`

# Sample fetches the renderer writes (gateways/acl.py's raw-ACL list, the predicates, and its own
# variables and draws), converters, and the ACL flags and match methods. Nothing that reads a
# file, the environment, or runs code (env, lua.*, map*, -f, -M ...).
FETCHES = frozenset({
    "hdr", "req.hdr", "req.fhdr", "fhdr", "hdr_cnt", "req.hdr_cnt", "req.fhdr_cnt", "fhdr_cnt",
    "req.cook", "cook", "req.cook_cnt", "cook_cnt", "path", "url", "query", "base", "url_param", "urlp",
    "req.ver", "method", "src", "dst", "src_port", "dst_port", "var", "rand",
    *(f"{base}_{suffix}" for base in ("path", "url", "base", "hdr", "cook")
      for suffix in ("beg", "end", "sub", "dir", "dom")),
})
CONVERTERS = frozenset({"lower", "upper", "field"})
FMT_FETCHES = frozenset({"path", "url", "query", "base", "method", "src", "dst", "hdr", "req.hdr", "req.fhdr",
                         "url_param", "urlp", "req.cook", "cook"})
FMT_CONVERTERS = frozenset({"lower", "upper", "url_dec"})
METHODS = frozenset({"str", "sub", "beg", "end", "dir", "dom", "found", "bool", "int"})
# Arguments and values are names and strings to match (a header, a cookie, a host): harmless
# whatever they hold, once the fetches and converters that would read a file are out. What
# would end them early (parentheses, braces, spaces) or be decoded (quotes, `$`, `\`) is not.
_ARGS = r"[^\s()'\"$\\#{}]*"
_EXPR = re.compile(rf"^([a-z][a-z0-9_.]*)(?:\(({_ARGS})\))?((?:,[a-z_]+(?:\({_ARGS}\))?)*)")
_CONVERTER = re.compile(rf"^,([a-z_]+)(?:\(({_ARGS})\))?")  # matched at each converter in turn, never searched
_ACL_NAME = re.compile(r"^!?" + IDENT)
_VALUE = re.compile(r"^[^\s{}'\"$\\#]{1,1024}")

# Why a few of the refused are refused, for the node's report.
DANGEROUS = {
    "program": "runs a command", "external-check": "runs a command", "setenv": "changes HAProxy's environment",
    "presetenv": "changes HAProxy's environment", "resetenv": "changes HAProxy's environment",
    "unsetenv": "changes HAProxy's environment", "lua-load": "runs Lua code", "lua-load-per-thread": "runs Lua code",
    "lua-prepend-path": "runs Lua code", "stats": "opens a socket or page of its own",
    "errorfile": "reads a file", "errorfiles": "reads a file", "ca-file": "reads a file", "crt": "reads a file",
    "crt-base": "reads a file", "ca-base": "reads a file", "load-server-state-from-file": "reads a file",
    "server-state-file": "reads a file", "chroot": "changes the file system root", "user": "changes its user",
    "group": "changes its group", "uid": "changes its user", "gid": "changes its group", "daemon": "detaches",
    "master-worker": "changes how the agent runs it", "pidfile": "writes a file", "log": "logs elsewhere",
    "userlist": "a section the control plane never renders", "peers": "opens connections of its own",
    "listen": "a section the control plane never renders", "mailers": "sends mail", "cache": "a cache section",
    "ring": "writes elsewhere", "http-errors": "reads files", "fcgi-app": "a section the control plane never renders",
    "module-path": "loads code", "wurfl-data-file": "reads a file", "51degrees-data-file": "reads a file",
}


# Lines are matched whole (fullmatch); the `^` also tells the regex audit (tests/dsl/regex_audit.py)
# that no search tries every start.
def _line(pattern: str) -> re.Pattern[str]:
    return re.compile(f"^(?:{pattern})")


def _exact(line: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(line))


# A gateway on the node's address (contract node_bind_line): the one variable is the agent's own.
NODE_BIND_LINE = re.compile(r'^bind "\$\{' + NODE_ADDRESS_ENV + r'\}:' + NUM + '"')

# Per section kind: (keyword, pattern of the whole line). `if COND` and ACL criteria are checked
# apart (see _condition, _criterion): a pattern ends in (?P<cond>...) / (?P<criterion>...).
COND = r"(?P<cond>.+)"
SECTIONS: dict[str, list[tuple[str, re.Pattern[str]]]] = {
    "global": [
        ("log", _exact(GLOBAL_LOG_LINE)),
        ("maxconn", _line(rf"maxconn {NUM}")),
        ("hard-stop-after", _line(rf"hard-stop-after {TIME}")),
    ],
    "resolvers": [
        ("parse-resolv-conf", _line(r"parse-resolv-conf")),
        ("hold", _line(rf"hold valid {TIME}")),
    ],
    "defaults": [
        ("mode", _line(rf"mode {MODE}")),
        ("log", _line(r"log global")),
        ("log-format", _exact(LOG_FORMAT_LINE)),
        ("option", _line(r"option redispatch")),
        ("retries", _line(rf"retries {NUM}")),
        ("timeout", _line(rf"timeout (?:connect|client|server|http-request|queue) {TIME}")),
        ("default-server", _line(r"default-server init-addr last,libc,none")),
    ],
    "frontend": [
        ("bind", _line(rf"bind {ADDR}:{NUM}")),
        ("bind", _exact(IDLE_BIND_LINE)),
        ("bind", NODE_BIND_LINE),
        ("mode", _line(rf"mode {MODE}")),
        ("log-format", _exact(TCP_LOG_FORMAT_LINE)),
        ("acl", _line(rf"acl {IDENT} (?P<criterion>.+)")),
        ("http-request", _line(rf"http-request set-var\(txn\.{IDENT}\) bool\(1\) if {COND}")),
        ("http-request", _line(rf"http-request set-var\(txn\.vamp_sticky\) req\.cook\({IDENT}\)")),
        ("http-request", _line(r"http-request set-var\(txn\.vamp_w\) rand\(100\)")),
        ("tcp-request", _line(r"tcp-request content set-var\(txn\.vamp_w\) rand\(100\)")),
        ("http-request", _line(r"http-request set-var\(txn\.vamp_host\) req\.hdr\(host\),field\(1,:\),lower")),
        ("use_backend", _line(rf"use_backend {IDENT} if {COND}")),
    ],
    "backend": [
        ("mode", _line(rf"mode {MODE}")),
        ("balance", _line(rf"balance {BALANCE}")),
        ("balance", _line(rf"balance hash {HASH_EXPR}")),
        ("option", _line(r"option forwardfor")),
        ("cookie", _line(rf"cookie {IDENT} insert indirect nocache")),
        ("http-response", _line(rf'http-response add-header Set-Cookie "{IDENT}={IDENT};Path=/" if {COND}')),
        ("acl", _line(rf"acl {IDENT} (?P<criterion>.+)")),
        ("http-request", _line(rf"http-request set-var\(txn\.{IDENT}\) bool\(1\) if {COND}")),
        ("http-request", _line(r"http-request set-path (?P<fmt>\S+) if " + COND)),
        ("server", _line(rf"server {IDENT} {ADDR}:{NUM}(?: weight {NUM})?(?: check)?(?: cookie {IDENT})?"
                         r"(?: resolvers vamp resolve-prefer ipv4)?")),
    ],
}
HEADERS = {
    "global": _line(r"global"),
    "defaults": _line(r"defaults"),
    "resolvers": _line(r"resolvers vamp"),
    "frontend": _line(rf"frontend {IDENT}"),
    "backend": _line(rf"backend {IDENT}"),
}
ONCE = ("global", "defaults", "resolvers")
# HAProxy's other sections: refused, and so is every line in them.
OTHER_SECTIONS = frozenset({"listen", "program", "userlist", "peers", "mailers", "cache", "ring", "http-errors",
                            "fcgi-app", "log-forward", "crt-store", "traces"})
QUOTED = frozenset({GLOBAL_LOG_LINE, LOG_FORMAT_LINE, TCP_LOG_FORMAT_LINE, IDLE_BIND_LINE})
_QUOTED_COOKIE = re.compile(rf'^http-response add-header Set-Cookie "{IDENT}={IDENT};Path=/" if [^"\'$\\]+')


@dataclass(frozen=True)
class Refusal:
    line: int
    section: str  # "global", "backend rt.x.y", ... ("" before any section)
    keyword: str
    reason: str

    @property
    def gateway(self) -> str | None:
        kind, _, name = self.section.partition(" ")
        return proxy_gateway(name) if kind in ("frontend", "backend") else None

    def __str__(self) -> str:
        where = f" ({self.section})" if self.section else ""
        return f"line {self.line}{where}: `{self.keyword}` {self.reason}"


def check(text: str) -> list[Refusal]:
    """Every line the control plane would never have rendered (empty: the text passes)."""
    refusals: list[Refusal] = []
    kind, section, seen = "", "", set()
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.strip(" \t")
        if not line or line.startswith("#"):
            if line.startswith("#") and not line.isascii():
                refusals.append(Refusal(number, section, "#", "a comment outside ASCII"))
            continue
        keyword = line.split()[0]

        def refuse(reason: str) -> None:
            refusals.append(Refusal(number, section, keyword, reason))

        if problem := _syntax(line):
            refuse(problem)
            continue
        header = next((k for k, pattern in HEADERS.items() if keyword == k and pattern.fullmatch(line)), None)
        if header is not None:
            if header in ONCE and header in seen:
                section = line
                refuse(f"a second {header} section: the control plane renders one")
                continue
            seen.add(header)
            kind, section = header, line
            continue
        if keyword in HEADERS:
            refuse(f"in a section header the control plane never renders: {' '.join(line.split())[:200]!r}")
            continue
        if keyword in OTHER_SECTIONS:
            kind, section = "refused", " ".join(line.split())[:200]
            why = DANGEROUS.get(keyword)
            refuse(f"{why}: not a section the control plane renders" if why else
                   "is not a section the control plane renders")
            continue
        if kind == "refused":
            refuse("inside a section the control plane never renders")
            continue
        if not kind:
            why = DANGEROUS.get(keyword)
            refuse(f"{why}: not a section the control plane renders" if why else
                   "is not a section the control plane renders")
            continue
        reason = _directive(kind, keyword, line)
        if reason:
            refuse(reason)
    return refusals


def _syntax(line: str) -> str | None:
    if not line.isascii() or any(ord(c) < 32 and c != "\t" for c in line):
        return "has characters outside printable ASCII"
    if line.startswith("."):
        return "is a conditional block or diagnostic: never rendered"
    if "\\" in line:
        return "has a backslash (an escape HAProxy decodes): never rendered"
    if "#" in line:
        return "has an inline `#`: never rendered"
    if line in QUOTED:
        return None
    if '"' in line or "'" in line or "$" in line:
        if _QUOTED_COOKIE.fullmatch(" ".join(line.split())) or NODE_BIND_LINE.fullmatch(line.strip()):
            return None
        return "has quotes or `$` (environment expansion) outside the renderer's constant lines"
    return None


def _directive(kind: str, keyword: str, line: str) -> str | None:
    normal = line if line in QUOTED else " ".join(line.split())
    candidates = [pattern for name, pattern in SECTIONS[kind] if name == keyword]
    if not candidates:
        why = DANGEROUS.get(keyword)
        return f"{why}: not a directive the control plane renders in {kind}" if why else \
            f"is not a directive the control plane renders in {kind}"
    for pattern in candidates:
        m = pattern.fullmatch(normal)
        if not m:
            continue
        groups = m.groupdict()
        if groups.get("criterion") is not None and (problem := _criterion(groups["criterion"])):
            return f"with an ACL the control plane never renders: {problem}"
        if groups.get("fmt") is not None and (problem := _fmt(groups["fmt"])):
            return f"with a path the control plane never renders: {problem}"
        if groups.get("expr") is not None and (problem := _expression(groups["expr"], FETCHES, CONVERTERS)):
            return f"with a hash the control plane never renders: {problem}"
        if groups.get("cond") is not None and (problem := _condition(groups["cond"])):
            return f"with a condition the control plane never renders: {problem}"
        return None
    return f"in a form the control plane never renders in {kind}: {normal[:200]!r}"


def _expression(expr: str, fetches: frozenset[str], converters: frozenset[str]) -> str | None:
    m = _EXPR.fullmatch(expr)
    if not m:
        return f"{expr!r} is not a sample fetch"
    if m.group(1) not in fetches:
        return f"sample fetch {m.group(1)!r} is not one the control plane renders"
    rest = m.group(3) or ""
    while rest:  # _EXPR matched the whole chain: each step takes one converter off its front
        converter = _CONVERTER.match(rest)
        if converter is None:
            return f"{expr!r} is not a sample fetch"
        if converter.group(1) not in converters:
            return f"converter {converter.group(1)!r} is not one the control plane renders"
        rest = rest[converter.end():]
    return None


def _criterion(criterion: str) -> str | None:
    """`<fetch>[,conv...] [-i] [-m method] [--] values...` (no -f/-M pattern files)."""
    words = criterion.split()
    if problem := _expression(words[0], FETCHES, CONVERTERS):
        return problem
    i, rest = 0, words[1:]
    while i < len(rest) and rest[i].startswith("-"):
        if rest[i] == "-i":
            i += 1
        elif rest[i] == "-m" and i + 1 < len(rest) and rest[i + 1] in METHODS:
            i += 2
        elif rest[i] == "--":
            i += 1
            break
        else:
            return f"flag {rest[i]!r} (only -i, -m <method>, --)"
    for value in rest[i:]:
        if not _VALUE.fullmatch(value):
            return f"value {value[:80]!r}"
    return None


def _condition(cond: str) -> str | None:
    """ACL names (maybe negated), `or`, and anonymous ACLs `{ criterion }` / `!{ criterion }`."""
    words = cond.split()
    i = 0
    while i < len(words):
        word = words[i]
        if word in ("{", "!{"):
            end = words.index("}", i) if "}" in words[i:] else -1
            if end < 0 or end == i + 1:
                return "an unclosed or empty { }"
            if problem := _criterion(" ".join(words[i + 1:end])):
                return problem
            i = end + 1
            continue
        if word not in ("or", "||") and not _ACL_NAME.fullmatch(word):
            return f"{word[:80]!r}"
        i += 1
    return None


def _fmt(fmt: str) -> str | None:
    if not _FMT.fullmatch(fmt):
        return f"{fmt[:80]!r}"
    for expr in _SAMPLE_IN_FMT.findall(fmt):
        if problem := _expression(expr, FMT_FETCHES, FMT_CONVERTERS):
            return problem
    return None


def gateways(refusals: list[Refusal]) -> list[str]:
    """The gateways the refused lines belong to, in order, once each."""
    out: list[str] = []
    for r in refusals:
        if r.gateway is not None and r.gateway not in out:
            out.append(r.gateway)
    return out
