"""One release per gateway, enforced by the store's conditional write (the gateway's lock in the
release's transaction), not by a read before the write: 20 starts at once, one runs."""
from __future__ import annotations

import threading

from .conftest import GATEWAY, make_gateway, release


def test_of_twenty_concurrent_starts_on_one_gateway_exactly_one_is_accepted(api, sfn):
    make_gateway(api)
    n = 20
    barrier = threading.Barrier(n)
    answers: dict[int, tuple[int, dict]] = {}

    def start(i: int) -> None:
        barrier.wait()
        # a slow policy: the winner is still running when every loser has been answered
        r = api.post("/api/v1/releases", release(name=f"r{i}", interval="1h"))
        answers[i] = (r.status_code, r.json)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(answers) == n
    accepted = [i for i, (status, _) in answers.items() if status == 202]
    assert len(accepted) == 1, {i: a[0] for i, a in answers.items()}
    winner = f"r{accepted[0]}"
    refused = [body for status, body in answers.values() if status == 409]
    assert len(refused) == n - 1
    for body in refused:  # the reason names the release that holds the gateway
        assert body["message"] == f"release {winner} is already running on gateway {GATEWAY}", body
        assert body["errors"] == [{"path": "gateway", "reason": f"one release per gateway at a time: held by release {winner}"}]
    assert [r["name"] for r in api.get("/api/v1/releases").json] == [winner]
    dry = api.post("/api/v1/releases?validate_only=true", release(name="dry", interval="1h"))
    assert dry.status_code == 409 and dry.json["errors"][0]["path"] == "gateway"

    # once the winner has finished, the gateway is free for the next one (and only one)
    assert api.post(f"/api/v1/releases/{winner}/abort").json["phase"] == "rolled_back"
    assert api.post("/api/v1/releases", release(name="next", interval="1h")).status_code == 202
    again = api.post("/api/v1/releases", release(name="later", interval="1h"))
    assert again.status_code == 409 and "release next is already running" in again.json["message"]
    assert api.post("/api/v1/releases/next/abort").json["phase"] == "rolled_back"
    assert api.delete(f"/api/v1/releases/{winner}").status_code == 204
    assert api.delete("/api/v1/releases/next").status_code == 204
    # deleting finished releases left no lock behind
    assert api.post("/api/v1/releases", release(name="last", interval="1h")).status_code == 202
