"""Properties of merge and slice (hypothesis): weights always total 100% on every cluster port,
and merging then slicing the same blueprint leaves the deployment as it was."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib import dsl
from chalicelib.deployments.merge import merge
from chalicelib.deployments.slice import prune, selection_of, slice_
from tests.deployments.helpers import LATER, NOW, breed

CLUSTERS = ["a", "b", "c"]
VERSIONS = ["1", "2", "3", "4"]


@st.composite
def blueprints(draw, clusters=CLUSTERS):
    chosen = draw(st.lists(st.sampled_from(clusters), min_size=1, max_size=len(clusters), unique=True))
    doc = {"name": "bp", "clusters": {}}
    for c in chosen:
        versions = draw(st.lists(st.sampled_from(VERSIONS), min_size=1, max_size=3, unique=True))
        cluster = {"services": [{"breed": breed(f"{c}:{v}")} for v in versions]}
        if draw(st.booleans()):
            given = draw(st.lists(st.integers(0, 100), min_size=1, max_size=len(versions)))
            routes, left = {}, 100
            for v, w in zip(versions, given):
                w = min(w, left)
                left -= w
                routes[f"{c}:{v}"] = {"weight": f"{w}%"}
            cluster["gateways"] = {"routes": routes}
        doc["clusters"][c] = cluster
    return dsl.parse("blueprints", doc)


def totals(dep):
    for cname, cluster in dep.clusters.items():
        for port, gateway in cluster.gateways.items():
            yield cname, port, sum(r.weight for r in gateway.routes.values())


def finish(dep):
    for _, _, s in dep.services():
        s.status.phase.name = "done"
    return dep


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(blueprints(), min_size=1, max_size=4), st.data())
def test_weights_always_total_100(bps, data):
    dep = None
    for bp in bps:
        dep = merge(dep, "d", bp, None, NOW)[0]
        assert all(t == 100 for *_, t in totals(dep))
        if data.draw(st.booleans()):
            sliced = slice_(finish(dep), selection_of(data.draw(blueprints())), LATER)
            for cname, port, total in totals(sliced):
                assert total == 100, (cname, port)
            dep = prune(finish(sliced))
            if dep is None:
                break
            assert all(t == 100 for *_, t in totals(dep))


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(blueprints(clusters=["a", "b"]), blueprints(clusters=["c"]))
def test_merge_then_slice_restores(base, extra):
    before = finish(merge(None, "d", base, None, NOW)[0])
    merged = finish(merge(before, "d", extra, None, LATER)[0])
    assert prune(finish(slice_(merged, selection_of(extra), LATER))) == before
    # the same when the new services join existing clusters at 0%
    newcomers = dsl.parse("blueprints", {"name": "n", "clusters": {
        c: {"services": [{"breed": breed(f"{c}:new")}]} for c in before.clusters}})
    grown = finish(merge(before, "d", newcomers, None, LATER)[0])
    for cname, cluster in grown.clusters.items():
        assert cluster.gateways["webport"].routes[f"{cname}:new"].weight == 0
    assert prune(finish(slice_(grown, selection_of(newcomers), LATER))) == before


@settings(max_examples=30, deadline=None)
@given(blueprints())
def test_merge_then_slice_of_a_new_deployment_is_nothing(bp):
    dep = merge(None, "d", bp, None, NOW)[0]
    assert prune(finish(slice_(dep, selection_of(bp), LATER))) is None
