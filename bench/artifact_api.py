"""p50/p99 of create, get and one list page through the whole API (auth included, in-process
Chalice over moto's server), with 100 and with 10,000 artifacts stored. The list must cost the
same whatever the table holds: a Query with a Limit plus a counter item, never a Scan."""
from __future__ import annotations

import json
import logging

from bench.common import local_aws, percentiles, timed, verdict

GOAL = 1.5
N = 200


def _seed(count: int, offset: int) -> None:
    """Items as the store writes them, by BatchWriteItem (moto deep-copies the whole table on
    every transaction, so seeding 10,000 through the API would take hours), plus the counter."""
    from chalicelib.store import table

    ddb, name = table.client(), table.table_name()
    for start in range(offset, offset + count, 25):
        batch = []
        for i in range(start, min(start + 25, offset + count)):
            doc = json.dumps({"kind": "breeds", "name": f"seed-{i:06d}", "deployable": {
                "type": "container/docker", "definition": "x/y:1"}})
            batch.append({"PutRequest": {"Item": {
                "pk": {"S": "default#artifact#breeds"}, "sk": {"S": f"seed-{i:06d}"}, "kind": {"S": "breeds"},
                "version": {"N": "1"}, "doc": {"S": doc}, "updated": {"S": "2026-01-01T00:00:00.000Z"}}}})
        ddb.batch_write_item(RequestItems={name: batch})
    ddb.update_item(TableName=name, Key={"pk": {"S": "default#counts"}, "sk": {"S": "breeds"}},
                    UpdateExpression="ADD #c :n", ExpressionAttributeNames={"#c": "count"},
                    ExpressionAttributeValues={":n": {"N": str(count)}})


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

    # Creates first so the gets find them; the table then holds the figure the label says.
    created = percentiles(timed(create, N))
    return {"create": created, "get": percentiles(timed(get, N)), "list page": percentiles(timed(page, N))}


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
            # Lists and gets are measured at exactly 100 and 10,000 stored (creates come last).
            _seed(100, 0)
            results[100] = _measure(client, headers, "small")
            _seed(10_000 - 2 * N - 100, 100)
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
