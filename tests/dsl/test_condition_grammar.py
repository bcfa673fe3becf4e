from __future__ import annotations

import pytest

from chalicelib.dsl import parse_condition, to_text
from chalicelib.dsl.condition_grammar import (
    And,
    Bool,
    ConditionError,
    Not,
    Or,
    Predicate,
    Raw,
    agent_pattern,
    parse_tree,
    walk,
)
from chalicelib.errors import ValidationFailed

UA = "user-agent"


@pytest.mark.parametrize(
    "text, tree",
    [
        ("user-agent == Firefox", Predicate(UA, False, None, "Firefox")),
        ("User-Agent = Chrome", Predicate(UA, False, None, "Chrome")),
        ("user.agent is Safari", Predicate(UA, False, None, "Safari")),
        ("USERAGENT has IE", Predicate(UA, False, None, "IE")),
        ("useragent contains Opera", Predicate(UA, False, None, "Opera")),
        ("user-agent != Edge", Predicate(UA, True, None, "Edge")),
        ("user-agent ! Edge", Predicate(UA, True, None, "Edge")),
        ("user-agent not Edge", Predicate(UA, True, None, "Edge")),
        ("user-agent misses Edge", Predicate(UA, True, None, "Edge")),
        ("user-agent is not Edge", Predicate(UA, True, None, "Edge")),
        ("user-agent==Firefox", Predicate(UA, False, None, "Firefox")),
        ("host == www.example.com:8080", Predicate("host", False, None, "www.example.com:8080")),
        ("has cookie group", Predicate("cookie", False, "group", None)),
        ("misses cookie group", Predicate("cookie", True, "group", None)),
        ("HAS HEADER X-Canary", Predicate("header", False, "X-Canary", None)),
        ("misses header X-Canary", Predicate("header", True, "X-Canary", None)),
        ("cookie group has admin", Predicate("cookie", False, "group", "admin")),
        ("header X-Version has v2", Predicate("header", False, "X-Version", "v2")),
        ("header X-Version misses v2", Predicate("header", True, "X-Version", "v2")),
        ("true", Bool(True)),
        ("FALSE", Bool(False)),
        ("< hdr_sub(user-agent) Android >", Raw("hdr_sub(user-agent) Android")),
        ("<req.hdr(host) -m str example.com>", Raw("req.hdr(host) -m str example.com")),
    ],
)
def test_predicates(text, tree):
    assert parse_tree(text) == tree
    assert parse_tree(to_text(tree)) == tree


def test_boolean_structure_and_precedence():
    a = Predicate(UA, False, None, "Firefox")
    b = Predicate("cookie", False, "beta", None)
    c = Predicate("host", False, None, "x")
    assert parse_tree("user-agent == Firefox and has cookie beta or host == x") == Or((And((a, b)), c))
    assert parse_tree("user-agent == Firefox && has cookie beta || host == x") == Or((And((a, b)), c))
    assert parse_tree("user-agent == Firefox & (has cookie beta | host == x)") == And((a, Or((b, c))))
    assert parse_tree("not has cookie beta") == Not(b)
    assert parse_tree("! (has cookie beta)") == Not(b)
    assert parse_tree("!has cookie beta") == Not(b)
    assert parse_tree("a" if False else "true and false and true") == And((Bool(True), Bool(False), Bool(True)))
    assert parse_tree("(true and false) and true") == And((And((Bool(True), Bool(False))), Bool(True)))
    assert to_text(parse_tree("(true and false) and true")) == "(true and false) and true"


def test_to_text_is_canonical():
    assert to_text(parse_tree("User.Agent is not  Firefox")) == "user-agent != Firefox"
    assert to_text(parse_tree("misses cookie x or not header h has v")) == "misses cookie x or not header h has v"


def test_named_agents_are_kept_and_expand_for_the_renderer():
    assert parse_tree("user-agent == IE").value == "IE"
    assert agent_pattern("IE") == "MSIE"
    assert agent_pattern("firefox") == "Firefox"
    assert agent_pattern("Mobile") == "Mobile"


def test_walk_visits_every_predicate():
    tree = parse_tree("has cookie a and (host == b or not header c has d)")
    assert [n.subject for n in walk(tree) if isinstance(n, Predicate)] == ["cookie", "host", "header"]


@pytest.mark.parametrize(
    "text, position",
    [
        ("user-agent ==", 14),
        ("user-agent Firefox", 12),
        ("(has cookie x", 14),
        ("has cookie x)", 13),
        ("has x y", 5),
        ("firefox", 1),
        ("true false", 6),
        ("", 1),
        ("< unterminated", 1),
    ],
)
def test_syntax_errors_carry_the_position(text, position):
    with pytest.raises(ConditionError) as caught:
        parse_tree(text)
    assert caught.value.position == position
    assert f"at position {position}" in str(caught.value)


def test_parse_condition_raises_validation_failed_at_the_callers_path():
    with pytest.raises(ValidationFailed) as caught:
        parse_condition("user-agent ==", "routes.a.condition")
    assert [(e.path, e.reason) for e in caught.value.errors] == [
        ("routes.a.condition", "expected a value, found the end at position 14")
    ]


def test_depth_and_length_are_bounded():
    with pytest.raises(ConditionError):
        parse_tree("(" * 200 + "true" + ")" * 200)
    with pytest.raises(ConditionError):
        parse_tree("not " * 100 + "true")
    with pytest.raises(ConditionError):
        parse_tree(" or ".join(["true"] * 2000))
    assert parse_tree("(" * 10 + "true" + ")" * 10) == Bool(True)


# Anything that could end an HAProxy line, open a comment or a quoted string, escape, expand a
# variable or load a file must be refused, wherever in a condition it appears.
HOSTILE = [
    "user-agent == Firefox\nuse_backend evil",
    "user-agent == Firefox\r\nx",
    "user-agent == Fire\x00fox",
    "user-agent == Fire\tfox",
    "user-agent == Firefox # comment",
    "user-agent == Firefox#",
    "user-agent == 'Firefox'",
    "user-agent == Fire'fox",
    'user-agent == "Firefox"',
    "user-agent == Fire\\fox",
    "user-agent == Fire}fox",
    "user-agent == Fire{fox",
    "user-agent == ${HOME}",
    "user-agent == $HOME",
    "user-agent == %[src]",
    "host == a\u2028b",
    "host == caf\u00e9",
    "has cookie a'b",
    "has header X-A#",
    "has header X\\A",
    "cookie a}b has c",
    'header "x" has y',
    "< -f /etc/passwd >",
    "< hdr(host) -f /etc/passwd >",
    "< hdr(host) -M /etc/map >",
    "< hdr(host) -u 1 x >",
    "< hdr(host),-f x >",
    "< hdr(host) x\nuse_backend evil >",
    "< hdr(host) 'x' >",
    "< hdr(host) \"x\" >",
    "< hdr(host) x # y >",
    "< hdr(host) {x} >",
    "< hdr(host) x\\y >",
    "< hdr(host) %[src] >",
    "< hdr(host) $x >",
    "< >",
    "< a < b >",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_conditions_are_refused(text):
    with pytest.raises(ConditionError):
        parse_tree(text)


@pytest.mark.parametrize(
    "text", ["user-agent == -f", "host == -f /etc/passwd", "header X has -f/etc/passwd", "has cookie -M", "cookie -u has x"]
)
def test_values_and_names_that_look_like_flags_are_refused(text):
    with pytest.raises(ConditionError):
        parse_tree(text)


def test_to_text_rejects_non_nodes():
    with pytest.raises(TypeError):
        to_text("true")  # type: ignore[arg-type]
