"""Property: every configuration the renderer produces passes the agent's allowlist (agent/
allowlist.py), for the gateways the property tests generate (test_properties.py's batches), with
instances behind deployment routes, every bind and the virtual-hosts frontend on or off. An
allowlist that refused one would stop a namespace's gateways on every node."""
from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent import allowlist
from chalicelib.gateways import acl, haproxy, spec
from tests.gateways.test_properties import accepted, gateway_batches

instance_names = st.from_regex(r"[a-z][a-z0-9\-]{0,20}(-[0-9a-f]{6,12})?", fullmatch=True)
instance_hosts = st.one_of(st.from_regex(r"10\.[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{1,2}", fullmatch=True),
                           st.just("127.0.0.1"), st.from_regex(r"[a-z][a-z0-9\-]{0,10}\.svc", fullmatch=True))
instances = st.lists(st.builds(haproxy.Instance, instance_names, instance_hosts, st.integers(1, 65535),
                               st.integers(0, 256)), max_size=3)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(gateway_batches(), st.sampled_from(["127.0.0.1", "0.0.0.0", "::", "10.1.2.3", "node"]), st.sampled_from([0, 8081]),
       st.data())
def test_every_configuration_the_renderer_produces_passes_the_allowlist(docs, bind, vh_port, data):
    ports = itertools.count(20000)
    specs, names = [], set()
    for doc in docs:
        gw = accepted(doc)
        if gw is None or gw.name in names:
            continue
        names.add(gw.name)
        specs.append(spec.GatewaySpec(gw.name, next(ports), gw.mode, gw.sticky, gw.virtual_hosts, gw.routes))
    served = {(g.name, r.name): data.draw(instances) for g in specs for r in g.routes}
    options = haproxy.Options(bind=bind, virtual_hosts_port=vh_port,
                              instances=lambda g, r: served.get((g.name, r.name), []))
    rendered = haproxy.render("prop", specs, options)
    refusals = allowlist.check(rendered.text)
    assert not refusals, "\n".join(map(str, refusals)) + "\n\n" + rendered.text


def test_a_namespace_without_gateways_passes_too():
    for port in (0, 8081):
        rendered = haproxy.render("empty", [], haproxy.Options(virtual_hosts_port=port))
        assert allowlist.check(rendered.text) == [], rendered.text


def test_the_allowlist_knows_every_fetch_and_converter_the_renderer_lets_through():
    """A fetch added to the renderer's raw-ACL or rewrite lists must be added to the agent's."""
    assert set(acl._FETCHES) <= allowlist.FETCHES
    assert acl._CONVERTERS <= allowlist.CONVERTERS
    assert acl._SAMPLE_FETCHES <= allowlist.FMT_FETCHES and acl._SAMPLE_CONVERTERS <= allowlist.FMT_CONVERTERS
    assert acl._METHODS <= allowlist.METHODS
