"""Property: every gateway the API accepts renders to a configuration `haproxy -c` accepts, for
every field (finding 10 of issue 10: `balance: "uri depth"` passed the DSL, failed `haproxy -c`,
and the agents then refused the whole namespace's configuration).

"Accepts" = the DSL parses it AND the gateway checks of the write path pass (what the API does
before storing), the port against the operator's policy included. Routes carry any balance the
grammar's words can make (most of them wrong: the DSL must refuse those), /tcp gateways too.
Many gateways go into one configuration per example (haproxy -c costs ~10-50 ms), with ports
unique as the port claims make them (a second gateway on a port is a 409).
"""
from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib import dsl
from chalicelib.dsl import balance
from chalicelib.dsl.condition_grammar import And, Not, Or, Raw, to_text
from chalicelib.errors import ValidationFailed
from chalicelib.gateways import haproxy, ports, spec
from chalicelib.gateways.acl import RenderError
from tests.dsl import strategies as S
from tests.gateways.helpers import haproxy_check

VIRTUAL_HOSTS_PORT = 8081
GOOD_RAW = ["path_beg /api", "hdr(host) -m str -i example.com", "req.hdr_cnt(X-A) gt 0", "src 10.0.0.0/8",
            "url_param(id) -m found", "method GET", "req.hdr(host),lower -m end .example.com", "dst_port 80:90"]
_raw_leaves = st.sampled_from(GOOD_RAW).map(Raw)
conditions = st.recursive(
    st.one_of(S.condition_trees, _raw_leaves),
    lambda inner: st.one_of(st.builds(Not, inner), st.lists(inner, min_size=2, max_size=3).map(lambda xs: And(tuple(xs))),
                            st.lists(inner, min_size=2, max_size=3).map(lambda xs: Or(tuple(xs)))),
    max_leaves=6,
).map(to_text)


def _with_balance(bodies):
    """Route bodies whose balance is any candidate (valid or not) of the grammar's words."""
    return st.tuples(bodies, st.one_of(st.none(), S.balance_candidates)).map(
        lambda t: {**t[0], **({"balance": t[1]} if t[1] is not None else {})})


# /tcp routes sometimes ask for what only HTTP has: the checks must refuse those.
_tcp_bodies = st.one_of(S.tcp_route_bodies, S.route_bodies)


@st.composite
def gateway_batches(draw):
    docs = draw(st.lists(S.gateways(route_body=_with_balance(S.route_bodies), tcp_route_body=_with_balance(_tcp_bodies)),
                         min_size=5, max_size=25))
    extra = draw(st.lists(conditions, min_size=1, max_size=5))  # conditions with raw ACLs HAProxy knows
    docs.append({"name": "with-raw", "routes": {f"[127.0.0.{i + 1}:80]": {"condition": c, "weight": "0%"}
                                                for i, c in enumerate(extra)}})
    return docs


def accepted(doc: dict) -> spec.GatewaySpec | None:
    try:
        model = dsl.parse("gateways", doc)
        gw = spec.from_model(model, lambda kind, name: None)
        haproxy.check_gateway(gw, VIRTUAL_HOSTS_PORT)  # the port against the settings' policy too
        return gw
    except (ValidationFailed, RenderError):
        return None


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(gateway_batches())
def test_every_accepted_gateway_renders_to_a_valid_configuration(docs):
    policy = ports.policy()
    assign = (p for p in itertools.count(20000) if policy.problem(p) is None)  # as the claims assign
    specs, names, taken = [], set(), set()
    for doc in docs:
        gw = accepted(doc)
        if gw is None or gw.name in names or gw.port in taken:  # a second one on a name or port: 409
            continue
        names.add(gw.name)
        port = gw.port if gw.port is not None else next(p for p in assign if p not in taken)
        assert policy.problem(port) is None
        taken.add(port)
        specs.append(spec.GatewaySpec(gw.name, port, gw.mode, gw.sticky, gw.virtual_hosts, gw.routes))
    rendered = haproxy.render("prop", specs, haproxy.Options(virtual_hosts_port=VIRTUAL_HOSTS_PORT))
    assert not [p for p in rendered.problems if "virtual host" not in p], rendered.problems
    ok, message = haproxy_check(rendered.text)
    assert ok, message + "\n" + rendered.text
    assert not warnings(message), message + "\n" + rendered.text


def warnings(message: str) -> list[str]:
    """What HAProxy would quietly do otherwise than written (a TCP backend's HTTP hash falls
    back to roundrobin with a warning); generated host names that resolve nowhere aside."""
    return [line for line in message.splitlines()
            if "[WARNING]" in line and "could not resolve address" not in line]


def test_every_balance_the_dsl_accepts_of_up_to_three_words_passes_haproxy_c_in_its_modes():
    """Every sequence of up to three of the grammar's words (and near misses: `hdr()`,
    `random(0)`, `uri depth` without a number, ...): what the DSL accepts renders, in each mode
    the gateway checks let it through, to a configuration HAProxy takes without a warning."""
    words = S.BALANCE_WORDS
    accepted = set()
    for n in (1, 2, 3):
        for combination in itertools.product(words, repeat=n):
            try:
                accepted.add(balance.parse(" ".join(combination)))
            except ValueError:
                pass
    assert {"uri depth 1", "hdr(host) use_domain_only", "url_param id check_post", "random(2)"} <= accepted
    assert not {"uri depth", "uri len 0", "hdr()", "random(0)", "roundrobin id"} & accepted
    for mode in ("http", "tcp"):
        gateways = []
        for i, text in enumerate(sorted(accepted)):
            gw = spec.GatewaySpec(f"b{i}", 20000 + i, mode, routes=(spec.RouteSpec("[127.0.0.1:80]", balance=text),))
            try:
                haproxy.check_gateway(gw, VIRTUAL_HOSTS_PORT)
            except RenderError:
                assert mode == "tcp" and balance.needs_http(text), text  # only an HTTP hash on /tcp
                continue
            gateways.append(gw)
        rendered = haproxy.render("balances", gateways, haproxy.Options())
        assert not rendered.problems and len(gateways) > (20 if mode == "http" else 8)
        ok, message = haproxy_check(rendered.text)
        assert ok and not warnings(message), message
