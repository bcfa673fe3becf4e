"""The local stack's journal (local/state.py, docs/decisions/0020): what it costs a write, how long
a snapshot and a restore of N items take, how long a stop takes, and what a crash can lose.

A write through the store (one artifact, its counter: a transaction) without and with the journal;
then the table grown to N items, the snapshot that compacts the journal, the restore of it on a
fresh table, and the stop (fsync and close)."""
from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path

from bench.common import local_aws, percentiles, timed

SIZES = (10_000, 50_000)
WRITES = 300


def _write(store, label: str):
    from chalicelib.store.artifact_store import Write

    def one(i):
        doc = {"kind": "breeds", "name": f"{label}-{i}", "deployable": {"type": "container/docker", "definition": "x/y:1"}}
        store.apply("default", [Write("breeds", f"{label}-{i}", doc, expected_version=None)])

    return one


def _seed(first: int, last: int) -> None:
    """Metric-event-sized items, as the store writes artifacts (batched in transactions)."""
    from chalicelib.store.artifact_store import Write
    from chalicelib.store.dynamodb_artifacts import MAX_WRITES, DynamoDBArtifactStore

    store = DynamoDBArtifactStore()
    payload = {"kind": "breeds", "deployable": {"type": "container/docker", "definition": "x/y:1"},
               "metrics": {"requests": 120, "errors": 1, "p50_ms": 3.1, "p99_ms": 17.4}}
    writes = [Write("breeds", f"seed-{i:06d}", {**payload, "name": f"seed-{i:06d}"}, expected_version=None)
              for i in range(first, last)]
    for start in range(0, len(writes), MAX_WRITES):
        store.apply("seed", writes[start:start + MAX_WRITES])


def main() -> None:
    from chalicelib.store import table
    from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore
    from local import state

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request lines
    print("\n== local stack: journal of acknowledged writes (local/state.py) ==")
    work = Path(tempfile.mkdtemp(prefix="vamp-bench-journal-"))
    try:
        with local_aws("vamp-bench-journal"):
            store = DynamoDBArtifactStore()
            plain = percentiles(timed(_write(store, "plain"), WRITES))
            journal = state.Journal(work / "state")
            journal.restore(table.table_name())
            journal.attach()
            journaled = percentiles(timed(_write(store, "journaled"), WRITES))
            print(f"artifact write (transaction, 2 items) p50/p99: without journal {plain[0]:.1f}/{plain[1]:.1f} ms, "
                  f"with {journaled[0]:.1f}/{journaled[1]:.1f} ms")
            seeded = 0
            for size in SIZES:
                _seed(seeded, size)
                seeded = size
                started = time.perf_counter()
                count = journal.compact()
                snapshot = time.perf_counter() - started
                megabytes = (work / "state" / state.SNAPSHOT).stat().st_size / 1e6
                started = time.perf_counter()
                journal.close()
                stop = time.perf_counter() - started
                # A fresh table, restored from the snapshot (what a restart does).
                state.moto_backend().get_table(table.table_name()).items.clear()
                journal = state.Journal(work / "state")
                started = time.perf_counter()
                restored, _ = journal.restore(table.table_name())
                restore = time.perf_counter() - started
                journal.attach()
                print(f"{count:>6} items: snapshot {snapshot:.2f} s ({megabytes:.0f} MB, in the background), "
                      f"restore {restore:.2f} s ({restored} items), stop {stop * 1000:.1f} ms")
            journal.close()
        print(f"lost at most: nothing acknowledged when the stack is killed (each line is written before moto "
              f"answers); {state.FSYNC_EVERY:.0f} s of writes if the machine fails (fsync every second)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
