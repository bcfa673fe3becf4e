"""End to end on the local stack: the ASL on moto's interpreter, tasks delivered in-process."""
from __future__ import annotations

import time

from .conftest import CANARY, STABLE, finished, make_gateway, release, run_until, weights


def test_healthy_release_is_promoted(api, sfn, traffic):
    make_gateway(api)
    r = api.post("/api/v1/releases", release())
    assert r.status_code == 202, r.body
    assert r.json["phase"] == "progressing" and r.json["weights"] == [20, 50]
    status = run_until(api, "r1", traffic, finished)
    assert status["phase"] == "promoted", status
    assert weights(api) == {CANARY: 100}
    verdicts = [c["verdict"] for c in status["checks"]]
    assert verdicts == ["pass", "pass", "pass"], status["checks"]
    events = api.get("/api/v1/events", headers={}).json
    assert events is not None
