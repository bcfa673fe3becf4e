"""Vamp's route condition language, parsed into a syntax tree the HAProxy renderer compiles.

    expr      := and_expr ((or | || | "|") and_expr)*
    and_expr  := unary ((and | && | &) unary)*
    unary     := (not | !) unary | "(" expr ")" | true | false | "<" raw acl ">" | predicate
    predicate := (user-agent | host) op VALUE
               | (has | misses) (cookie | header) NAME
               | (cookie | header) NAME op VALUE
    op        := == | = | is | has | contains        (match)
               | != | ! | not | misses | is not      (negated match)

Keywords are case-insensitive (`user-agent`, `user.agent`, `useragent`). Security: the text
ends up in an HAProxy configuration, so only a safe ASCII charset is accepted: no control
characters (so no newline), `#`, quotes, backslashes, braces, `%` or `$`; header and cookie
names are RFC 7230 tokens (minus the characters above and the operator characters); values and
names may not start with `-` (HAProxy would read a flag); a raw ACL
may not load files or maps (`-f`, `-M`, `-u` flags are refused).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Union

from ..errors import ValidationFailed

MAX_LENGTH = 4096
MAX_DEPTH = 32

SUBJECTS = ("user-agent", "host", "cookie", "header")

# Browsers Vamp names; the renderer matches the User-Agent header against these substrings.
AGENTS = {
    "safari": "Safari", "ie": "MSIE", "msie": "MSIE", "chrome": "Chrome",
    "firefox": "Firefox", "opera": "Opera", "edge": "Edge",
}


@dataclass(frozen=True)
class Bool:
    value: bool


@dataclass(frozen=True)
class Not:
    operand: "Node"


@dataclass(frozen=True)
class And:
    operands: tuple["Node", ...]


@dataclass(frozen=True)
class Or:
    operands: tuple["Node", ...]


@dataclass(frozen=True)
class Raw:
    """An HAProxy ACL body passed through (only after the safety checks)."""

    acl: str


@dataclass(frozen=True)
class Predicate:
    """`subject` is one of SUBJECTS. `name` is the cookie/header name (None for user-agent and
    host). `value` None means an existence test (`has cookie X`). `negated` flips the match."""

    subject: str
    negated: bool = False
    name: str | None = None
    value: str | None = None


Node = Union[Bool, Not, And, Or, Raw, Predicate]


class ConditionError(ValueError):
    """A syntax or safety error; `position` is 1-based in the condition text."""

    def __init__(self, reason: str, position: int):
        super().__init__(f"{reason} at position {position}")
        self.reason = reason
        self.position = position


_VALUE_CHARS = r"A-Za-z0-9._\-:/~+*@,;?^"
_WORD_RE = re.compile(rf"[{_VALUE_CHARS}]+")
_NAME_RE = re.compile(r"^[A-Za-z0-9._\-~+*^]+$")
_VALUE_RE = re.compile(rf"^[{_VALUE_CHARS}]+$")
_RAW_RE = re.compile(r"^[A-Za-z0-9 _\-.:/(),=+*@!~?^|&]+$")
_FORBIDDEN_FLAG_RE = re.compile(r"(^|[\s(,])-[fMu]")
_SYMBOLS = ("&&", "||", "!=", "==", "&", "|", "!", "=", "(", ")")

_SUBJECT_WORDS = {
    "user-agent": "user-agent", "user.agent": "user-agent", "useragent": "user-agent",
    "host": "host", "cookie": "cookie", "header": "header",
}
_MATCH_OPS = {"==", "=", "is", "has", "contains"}
_NEGATED_OPS = {"!=", "!", "not", "misses"}


@dataclass(frozen=True)
class _Token:
    kind: str  # "word", "raw", "symbol", "end"
    text: str
    position: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == " ":
            i += 1
            continue
        if ch == "<":
            end = text.find(">", i + 1)
            if end < 0:
                raise ConditionError("unterminated raw ACL `<`", i + 1)
            tokens.append(_Token("raw", text[i + 1:end], i + 1))
            i = end + 1
            continue
        symbol = next((s for s in _SYMBOLS if text.startswith(s, i)), None)
        if symbol:
            tokens.append(_Token("symbol", symbol, i + 1))
            i += len(symbol)
            continue
        m = _WORD_RE.match(text, i)
        if not m:
            raise ConditionError(f"character {ch!r} is not allowed", i + 1)
        tokens.append(_Token("word", m.group(), i + 1))
        i = m.end()
    tokens.append(_Token("end", "", n + 1))
    return tokens


def check_raw_acl(acl: str, position: int = 1) -> str:
    acl = acl.strip()
    if not acl:
        raise ConditionError("empty raw ACL", position)
    if not _RAW_RE.fullmatch(acl):
        bad = next(c for c in acl if not _RAW_RE.fullmatch(c))
        raise ConditionError(f"character {bad!r} is not allowed in a raw ACL", position)
    if _FORBIDDEN_FLAG_RE.search(acl):
        raise ConditionError("a raw ACL may not use the -f, -M or -u flags", position)
    return acl


class _Parser:
    def __init__(self, text: str):
        self.tokens = _tokenize(text)
        self.index = 0
        self.depth = 0

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def next(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def at_word(self, *words: str) -> bool:
        token = self.peek()
        return token.kind == "word" and token.text.lower() in words

    def at_symbol(self, *symbols: str) -> bool:
        token = self.peek()
        return token.kind == "symbol" and token.text in symbols

    def unexpected(self, wanted: str) -> ConditionError:
        token = self.peek()
        found = "the end" if token.kind == "end" else repr(token.text)
        return ConditionError(f"expected {wanted}, found {found}", token.position)

    def parse(self) -> Node:
        node = self.expr()
        if self.peek().kind != "end":
            raise self.unexpected("`and`, `or` or the end")
        return node

    def expr(self) -> Node:
        operands = [self.and_expr()]
        while self.at_word("or") or self.at_symbol("||", "|"):
            self.next()
            operands.append(self.and_expr())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def and_expr(self) -> Node:
        operands = [self.unary()]
        while self.at_word("and") or self.at_symbol("&&", "&"):
            self.next()
            operands.append(self.unary())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def unary(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ConditionError(f"nested more than {MAX_DEPTH} levels", self.peek().position)
        try:
            return self._unary()
        finally:
            self.depth -= 1

    def _unary(self) -> Node:
        token = self.peek()
        if self.at_word("not") or self.at_symbol("!"):
            self.next()
            return Not(self.unary())
        if self.at_symbol("("):
            self.next()
            node = self.expr()
            if not self.at_symbol(")"):
                raise self.unexpected("`)`")
            self.next()
            return node
        if token.kind == "raw":
            self.next()
            return Raw(check_raw_acl(token.text, token.position))
        if self.at_word("true", "false"):
            self.next()
            return Bool(token.text.lower() == "true")
        if self.at_word("has", "misses"):
            self.next()
            subject = self.peek()
            if not self.at_word("cookie", "header"):
                raise self.unexpected("`cookie` or `header`")
            self.next()
            return Predicate(subject.text.lower(), token.text.lower() == "misses", self.name())
        if token.kind == "word" and token.text.lower() in _SUBJECT_WORDS:
            self.next()
            subject = _SUBJECT_WORDS[token.text.lower()]
            name = self.name() if subject in ("cookie", "header") else None
            negated = self.operator()
            return Predicate(subject, negated, name, self.value())
        raise self.unexpected("a condition (user-agent, host, cookie, header, has, misses, "
                              "true, false, not, `(` or `<acl>`)")

    def operator(self) -> bool:
        token = self.peek()
        op = token.text.lower() if token.kind in ("word", "symbol") else ""
        if op in _MATCH_OPS:
            self.next()
            if op == "is" and self.at_word("not"):
                self.next()
                return True
            return False
        if op in _NEGATED_OPS:
            self.next()
            return True
        raise self.unexpected("an operator (== = != ! not is has contains misses)")

    def name(self) -> str:
        token = self.peek()
        if token.kind != "word":
            raise self.unexpected("a cookie or header name")
        if not _NAME_RE.fullmatch(token.text) or token.text.startswith("-"):
            raise ConditionError(f"invalid cookie or header name {token.text!r}", token.position)
        self.next()
        return token.text

    def value(self) -> str:
        token = self.peek()
        if token.kind != "word":
            raise self.unexpected("a value")
        if token.text.startswith("-"):
            raise ConditionError("a value may not start with `-` (HAProxy would read a flag)", token.position)
        self.next()
        return token.text


def _check_text(text: object) -> str:
    if not isinstance(text, str):
        raise ConditionError("a condition is a string", 1)
    if len(text) > MAX_LENGTH:
        raise ConditionError(f"longer than {MAX_LENGTH} characters", MAX_LENGTH + 1)
    for i, ch in enumerate(text):
        if ch in "\t\n\r" or ord(ch) < 32 or ord(ch) >= 127:
            raise ConditionError(f"character {ch!r} is not allowed", i + 1)
    if not text.strip():
        raise ConditionError("empty condition", 1)
    return text


def parse_tree(text: object) -> Node:
    """Parse or raise ConditionError (a ValueError carrying the position)."""
    return _Parser(_check_text(text)).parse()


def parse_condition(text: object, path: str = "condition") -> Node:
    """Parse or raise ValidationFailed at `path` (the caller knows where the text came from)."""
    try:
        return parse_tree(text)
    except ConditionError as error:
        raise ValidationFailed.at(path, str(error)) from None


def _wrap(node: Node) -> str:
    text = to_text(node)
    return f"({text})" if isinstance(node, (And, Or)) else text


def to_text(node: Node) -> str:
    """Canonical DSL text: parse_tree(to_text(n)) == n for every tree the parser can produce."""
    if isinstance(node, Bool):
        return "true" if node.value else "false"
    if isinstance(node, Raw):
        return f"< {node.acl} >"
    if isinstance(node, Not):
        return f"not {_wrap(node.operand)}"
    if isinstance(node, And):
        return " and ".join(_wrap(o) for o in node.operands)
    if isinstance(node, Or):
        return " or ".join(_wrap(o) for o in node.operands)
    if isinstance(node, Predicate):
        if node.value is None:
            return f"{'misses' if node.negated else 'has'} {node.subject} {node.name}"
        if node.name is None:
            return f"{node.subject} {'!=' if node.negated else '=='} {node.value}"
        return f"{node.subject} {node.name} {'misses' if node.negated else 'has'} {node.value}"
    raise TypeError(f"not a condition node: {node!r}")


def agent_pattern(value: str) -> str:
    """The User-Agent substring a named agent stands for (IE -> MSIE); others are literal."""
    return AGENTS.get(value.lower(), value)


def walk(node: Node):
    """Every node of the tree, depth first (the renderer needs all predicates)."""
    yield node
    if isinstance(node, Not):
        yield from walk(node.operand)
    elif isinstance(node, (And, Or)):
        for operand in node.operands:
            yield from walk(operand)
