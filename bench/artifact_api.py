"""p50/p99 of create, get and one list page through the whole API (auth included, in-process
Chalice over moto's server), with 100 and with 10,000 artifacts stored. The list must cost the
same whatever the table holds: a Query with a Limit plus a counter item, never a Scan."""
from __future__ import annotations

import json
import logging

from bench.common import local_aws, percentiles, timed, verdict

GOAL = 1.5
N = 200


def _seed(total: int, offset: int) -> None:
    from chalicelib.store.artifact_store import Write
    from chalicelib.store.dynamodb_artifacts import MAX_WRITES, DynamoDBArtifactStore

    store = DynamoDBArtifactStore()
    names = [f"seed-{i:06d}" for i in range(offset, total)]
    for i in range(0, len(names), MAX_WRITES):
        store.apply("default", [Write("breeds", n, {"kind": "breeds", "name": n, "deployable": {
            "type": "container/docker", "definition": "x/y:1"}}, expected_version=None) for n in names[i:i + MAX_WRITES]])


def _measure(client, headers, label: str) -> dict[str, tuple[float, float]]:
    def create(i):
        body = json.dumps({"name": f"{label}-{i}", "deployable": "magneticio/sava:1.0.0", "ports": {"webport": "8080/http"}})
        r = client.http.post("/api/v1/breeds", headers=headers, body=body)
        assert r.status_code == 201, r.body

    def get(i):
        r = client.http.get(f"/api/v1/breeds/{label}-{i % N}", headers=headers)
        assert r.status_code == 200, r.body

    def page(i):
        r = client.http.get("/api/v1/breeds?per_page=30", headers=headers)
        assert r.status_code == 200 and len(json.loads(r.body)) == 30

    return {op: percentiles(timed(fn, N)) for op, fn in (("create", create), ("get", get), ("list page", page))}


def _dynamodb_calls() -> list[str]:
    from chalicelib.store import table

    calls: list[str] = []
    table.client().meta.events.register("before-call.dynamodb.*", lambda event_name, **_: calls.append(event_name.split(".")[-1]))
    return calls


def main() -> bool:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with local_aws("vamp-bench-api") as (_, token):
        import app
        from chalice.test import Client

        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        results = {}
        with Client(app.app) as client:
            _seed(100 - N // 2, 0)  # the measured creates bring the table to ~100 on average
            results[100] = _measure(client, headers, "small")
            _seed(10_000 - N, 100 - N // 2)
            results[10_000] = _measure(client, headers, "large")
            calls = _dynamodb_calls()
            client.http.get("/api/v1/breeds?per_page=30", headers=headers)
    print(f"\n(b) artifact API through Chalice on moto, {N} requests each, milliseconds")
    print(f"    {'operation':12} {'p50 @100':>9} {'p99 @100':>9} {'p50 @10k':>9} {'p99 @10k':>9}")
    for op in ("create", "get", "list page"):
        s, l = results[100][op], results[10_000][op]
        print(f"    {op:12} {s[0]:9.2f} {s[1]:9.2f} {l[0]:9.2f} {l[1]:9.2f}")
    ratio = results[10_000]["list page"][0] / results[100]["list page"][0]
    print(f"    list page p50 ratio 10,000 / 100 stored: {ratio:.2f}   goal <= {GOAL}: {verdict(ratio <= GOAL)}")
    print(f"    DynamoDB calls for one list page at 10k: {', '.join(calls)} (no Scan: {'Scan' not in calls})")
    return ratio <= GOAL


if __name__ == "__main__":
    main()
