"""Keeps the embedded moto server's DynamoDB data across restarts of the local stack.

moto keeps everything in memory; on stop the table is written to `.vamp/state/`, on start it
is read back. (A Scan is fine here: this is tooling, not a request path.)
"""
from __future__ import annotations

import json
from pathlib import Path

from chalicelib.store import table


def save(path: Path) -> int:
    ddb, name = table.client(), table.table_name()
    items, start = [], None
    while True:
        kwargs = {"TableName": name}
        if start:
            kwargs["ExclusiveStartKey"] = start
        page = ddb.scan(**kwargs)
        items += page["Items"]
        start = page.get("LastEvaluatedKey")
        if not start:
            break
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(items))
    tmp.replace(path)
    return len(items)


def restore(path: Path) -> int:
    if not path.exists():
        return 0
    items = json.loads(path.read_text())
    ddb, name = table.client(), table.table_name()
    for i in range(0, len(items), 25):
        request = {name: [{"PutRequest": {"Item": item}} for item in items[i:i + 25]]}
        while request:
            request = ddb.batch_write_item(RequestItems=request).get("UnprocessedItems") or None
    return len(items)
