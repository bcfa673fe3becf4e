"""A release is judged on what the agents report, never on what a token holder claims (issue 10,
finding 5; decision 0022): an operator whose canary fails tries to post healthy figures for it,
and figures that never came from an agent sit in the event store; the canary is rolled back."""
from __future__ import annotations

from chalicelib.store.event_backend import event_store
from chalicelib.store.event_store import new_event

from .conftest import CANARY, STABLE, finished, make_gateway, release, run_until, weights


def test_forged_healthy_metrics_do_not_save_a_failing_canary(api, sfn, traffic):
    make_gateway(api)
    traffic.set(CANARY, errors=25)  # what the agents see: the canary fails
    operator = api.as_role("operator", ["default"])
    refusals = []

    def claim(route, requests, poster):
        tags = ["gateways:shop", f"routes:{route}", "metrics:requests"]
        return new_event(tags, requests, "metrics", posted_by=poster)

    class Forging:
        """Each window: the agents' figures; the operator's claim through the API; and claims
        put straight into the store, half marked as an operator's, half unmarked. The claims
        follow the gateway's weights (the canary's share stays plausible) and would lift the
        canary's success rate above the policy's 99% if they were judged."""

        def tick(self):
            traffic.tick()
            split = weights(api)
            forged = {route: 15_000 * split.get(route, 0) // 100 for route in (STABLE, CANARY)}
            body = [{"tags": ["gateways:shop", f"routes:{r}", "metrics:requests"], "type": "metrics", "value": n}
                    for r, n in forged.items()]
            refusals.append(operator.post("/api/v1/events", body).status_code)
            event_store().publish("default", [claim(r, n // 2, poster) for r, n in forged.items()
                                              for poster in ({"name": "op", "role": "operator"}, None)])

    assert api.post("/api/v1/releases", release(failures=2)).status_code == 202
    status = run_until(api, "r1", Forging(), finished)
    assert status["phase"] == "rolled_back", status
    assert weights(api) == {STABLE: 100, CANARY: 0}
    failed = [c for c in status["checks"] if c["verdict"] == "fail"]
    assert failed and all("success_rate" in c["reason"] for c in failed), status["checks"]
    assert all(c["canary"]["requests"] < 1000 for c in status["checks"] if "canary" in c)  # the agents' alone
    assert refusals and set(refusals) == {403}
