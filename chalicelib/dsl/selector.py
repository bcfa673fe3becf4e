"""Vamp's route selectors (`label(app)(sava) and not image(^old:.*$)`): the grammar of its
RouteSelectorParser, checked so a malformed one is a 400 as in Vamp. Selectors are stored and
shown; nothing here matches them against running services.

    expr    := term ((or | || | "|") term)*
    term    := factor ((and | && | &) factor)*
    factor  := (! | not) (operand | "(" expr ")") | operand | "(" expr ")"
    operand := true | t | 1 | false | f | 0
             | (name | id | kind | type | namespace | group | image | ip | host) "(" value ")"
             | label "(" value ")" "(" value ")"
             | (port | port_index | index) "(" digits ")"
    value   := [part] "(" part ")" [part] | part       part: printable, no parentheses

A value is a regular expression (Vamp compiles it): one that does not compile is refused too.
Parsed by hand, one pass over the text: no backtracking, whatever the input.
"""
from __future__ import annotations

import re

MAX_LENGTH = 1024
REGEX_KEYWORDS = ("name", "id", "kind", "type", "namespace", "group", "image", "ip", "host")
NUMBER_KEYWORDS = ("port_index", "index", "port")  # longest first: `port_index` before `port`
CONSTANTS = {"true": True, "t": True, "1": True, "false": False, "f": False, "0": False}


class SelectorError(ValueError):
    pass


class _Parser:
    def __init__(self, text: str):
        self.text, self.at = text, 0

    def fail(self, what: str) -> None:
        raise SelectorError(f"invalid selector: {what} at position {self.at + 1}")

    def spaces(self) -> None:
        while self.at < len(self.text) and self.text[self.at] in " \t":
            self.at += 1

    def word(self) -> str:
        start = self.at
        while self.at < len(self.text) and (self.text[self.at].isalnum() or self.text[self.at] == "_"):
            self.at += 1
        return self.text[start:self.at].lower()

    def take(self, token: str) -> bool:
        if self.text.startswith(token, self.at):
            self.at += len(token)
            return True
        return False

    def keyword(self, *words: str) -> bool:
        """One of `words` (case-insensitive) as a whole word, or a symbol like `&&`."""
        self.spaces()
        for word in words:
            end = self.at + len(word)
            if self.text[self.at:end].lower() == word and (
                    not word.isalpha() or end == len(self.text) or not self.text[end].isalnum()):
                self.at = end
                return True
        return False

    def expression(self, depth: int) -> None:
        if depth > 32:
            self.fail("nested too deep")
        self.term(depth)
        while self.keyword("or", "||", "|"):
            self.term(depth)

    def term(self, depth: int) -> None:
        self.factor(depth)
        while self.keyword("and", "&&", "&"):
            self.factor(depth)

    def factor(self, depth: int) -> None:
        self.spaces()
        if self.keyword("!", "not"):
            self.spaces()
        if self.take("("):
            self.expression(depth + 1)
            self.spaces()
            if not self.take(")"):
                self.fail("expected `)`")
        else:
            self.operand()
        self.spaces()

    def operand(self) -> None:
        start = self.at
        word = self.word()
        if word in CONSTANTS:
            return
        if word not in REGEX_KEYWORDS + NUMBER_KEYWORDS + ("label",):
            self.at = start
            self.fail(f"expected a selector ({', '.join(REGEX_KEYWORDS + NUMBER_KEYWORDS)}, label, true or false)")
        for _ in range(2 if word == "label" else 1):
            self.spaces()
            if not self.take("("):
                self.fail(f"expected `(` after {word}")
            value_at = self.at
            value = self.value()
            if word in NUMBER_KEYWORDS and not (value.isascii() and value.isdigit()):
                self.at = value_at
                self.fail(f"{word} takes a number")
            if word not in NUMBER_KEYWORDS:
                _regex(value, value_at)
            if not self.take(")"):
                self.fail("expected `)`")

    def part(self) -> str:
        start = self.at
        while self.at < len(self.text) and self.text[self.at] not in "()" and self.text[self.at].isprintable():
            self.at += 1
        return self.text[start:self.at]

    def value(self) -> str:
        """`[part] ( part ) [part]` or `part`: one group of parentheses at most, as Vamp's."""
        start = self.at
        self.part()
        if self.take("("):
            if not self.part():
                self.fail("expected a value")
            if not self.take(")"):
                self.fail("expected `)`")
            self.part()
        if self.at == start:
            self.fail("expected a value")
        return self.text[start:self.at]


def _regex(value: str, position: int) -> None:
    try:
        re.compile(value)  # only to know it compiles, as Vamp's does; never matched here
    except re.error as error:
        raise SelectorError(f"invalid selector: {value!r} at position {position + 1} is not a regular expression "
                            f"({error.msg})") from None


def check_selector(text: object) -> str:
    """The selector text, or SelectorError (a ValueError) saying where it is malformed."""
    if not isinstance(text, str):
        raise SelectorError("a selector is a string")
    if len(text) > MAX_LENGTH:
        raise SelectorError(f"a selector is at most {MAX_LENGTH} characters")
    parser = _Parser(text)
    parser.expression(0)
    if parser.at != len(text):
        parser.fail("unexpected text")
    return text
