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
    """Breeds as the store writes them (counter included), a transaction of the most documents
    one takes at a time: quicker than 10,000 API calls."""
    from chalicelib.store.artifact_store import Write
    from chalicelib.store.dynamodb_artifacts import MAX_WRITES, DynamoDBArtifactStore

    store = DynamoDBArtifactStore()
    deployable = {"type": "container/docker", "definition": "x/y:1"}
    writes = [Write("breeds", f"seed-{i:06d}", {"kind": "breeds", "name": f"seed-{i:06d}", "deployable": deployable},
                    expected_version=None) for i in range(offset, offset + count)]
    for start in range(0, len(writes), MAX_WRITES):
        store.apply("default", writes[start:start + MAX_WRITES])


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


def _list_page_reads(client, headers) -> tuple[list[str], int]:
    """The DynamoDB calls one list page makes, and the items its Query read (ScannedCount:
    what DynamoDB bills as read capacity)."""
    from chalicelib.store import table

    calls: list[str] = []
    scanned: list[int] = []

    def before(event_name, **_):
        calls.append(event_name.split(".")[-1])

    def after(http_response, parsed, **_):
        scanned.append(parsed.get("ScannedCount", 0))

    unwatch = [table.watch("before-call.dynamodb.*", before), table.watch("after-call.dynamodb.Query", after)]
    try:
        client.http.get("/api/v1/breeds?per_page=30", headers=headers)
    finally:
        for undo in unwatch:
            undo()
    return calls, sum(scanned)


def main() -> bool:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with local_aws("vamp-bench-api") as (_, token):
        from chalice.test import Client

        import app

        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        results = {}
        with Client(app.app, stage_name="local") as client:
            # Lists and gets are measured at exactly 100 and 10,000 stored (creates come last).
            _seed(100, 0)
            reads = {100: _list_page_reads(client, headers)}
            results[100] = _measure(client, headers, "small")
            _seed(10_000 - 2 * N - 100, 100)
            reads[10_000] = _list_page_reads(client, headers)
            results[10_000] = _measure(client, headers, "large")
    print(f"\n(b) artifact API through Chalice on moto, {N} requests each, milliseconds")
    print(f"    {'operation':12} {'p50 @100':>9} {'p99 @100':>9} {'p50 @10k':>9} {'p99 @10k':>9}")
    for op in ("create", "get", "list page"):
        s, l = results[100][op], results[10_000][op]
        print(f"    {op:12} {s[0]:9.2f} {s[1]:9.2f} {l[0]:9.2f} {l[1]:9.2f}")
    ratio = results[10_000]["list page"][0] / results[100]["list page"][0]
    read_ratio = reads[10_000][1] / max(1, reads[100][1])
    print(f"    list page p50 ratio 10,000 / 100 stored, wall clock on moto: {ratio:.2f}"
          " (moto's Query walks every item of the table, then sorts: its time grows with the table)")
    print(f"    items a list page reads (DynamoDB ScannedCount, the billed cost): {reads[100][1]} @100, "
          f"{reads[10_000][1]} @10k, ratio {read_ratio:.2f}   goal <= {GOAL}: {verdict(read_ratio <= GOAL)}")
    print(f"    DynamoDB calls for one list page: {', '.join(reads[10_000][0])} (no Scan: {'Scan' not in reads[10_000][0]})")
    return read_ratio <= GOAL


if __name__ == "__main__":
    main()
