"""Keeps the embedded moto server's DynamoDB data across restarts of the local stack.

moto keeps everything in memory; on stop the table is written to `.vamp/state/`, on start it
is read back (the items as the store's table.dump_items / load_items handle them).
"""
from __future__ import annotations

import json
from pathlib import Path

from chalicelib.store import table


def save(path: Path) -> int:
    items = table.dump_items()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(items))
    tmp.replace(path)
    return len(items)


def restore(path: Path) -> int:
    if not path.exists():
        return 0
    items = json.loads(path.read_text())
    table.load_items(items)
    return len(items)
