"""Property: every gateway the API accepts renders to a configuration `haproxy -c` accepts.

"Accepts" = the DSL parses it AND the gateway checks of the write path pass (what the API does
before storing). Many gateways go into one configuration per example (haproxy -c costs
~10-50 ms), with ports made unique as the port claims make them.
"""
from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib import dsl
from chalicelib.dsl.condition_grammar import And, Not, Or, Raw, to_text
from chalicelib.errors import ValidationFailed
from chalicelib.gateways import haproxy, spec
from chalicelib.gateways.acl import RenderError
from tests.dsl import strategies as S
from tests.gateways.helpers import haproxy_check

GOOD_RAW = ["path_beg /api", "hdr(host) -m str -i example.com", "req.hdr_cnt(X-A) gt 0", "src 10.0.0.0/8",
            "url_param(id) -m found", "method GET", "req.hdr(host),lower -m end .example.com", "dst_port 80:90"]
_raw_leaves = st.sampled_from(GOOD_RAW).map(Raw)
conditions = st.recursive(
    st.one_of(S.condition_trees, _raw_leaves),
    lambda inner: st.one_of(st.builds(Not, inner), st.lists(inner, min_size=2, max_size=3).map(lambda xs: And(tuple(xs))),
                            st.lists(inner, min_size=2, max_size=3).map(lambda xs: Or(tuple(xs)))),
    max_leaves=6,
).map(to_text)


@st.composite
def gateway_batches(draw):
    docs = draw(st.lists(S.gateways(), min_size=5, max_size=25))
    extra = draw(st.lists(conditions, min_size=1, max_size=5))  # conditions with raw ACLs HAProxy knows
    docs.append({"name": "with-raw", "routes": {f"[127.0.0.{i + 1}:80]": {"condition": c, "weight": "0%"}
                                                for i, c in enumerate(extra)}})
    return docs


def accepted(doc: dict) -> spec.GatewaySpec | None:
    try:
        model = dsl.parse("gateways", doc)
        gw = spec.from_model(model, lambda kind, name: None)
        haproxy.check_gateway(gw, 8081)
        return gw
    except (ValidationFailed, RenderError):
        return None


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(gateway_batches())
def test_every_accepted_gateway_renders_to_a_valid_configuration(docs):
    ports = itertools.count(20000)
    specs, names = [], set()
    for doc in docs:
        gw = accepted(doc)
        if gw is None or gw.name in names:
            continue
        names.add(gw.name)
        specs.append(spec.GatewaySpec(gw.name, next(ports), gw.mode, gw.sticky, gw.virtual_hosts, gw.routes))
    rendered = haproxy.render("prop", specs, haproxy.Options(virtual_hosts_port=8081))
    assert not [p for p in rendered.problems if "virtual host" not in p], rendered.problems
    ok, message = haproxy_check(rendered.text)
    assert ok, message + "\n" + rendered.text
