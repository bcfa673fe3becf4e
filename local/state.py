"""Keeps the embedded moto server's DynamoDB tables on disk: a snapshot plus a journal of every
acknowledged write since (docs/decisions/0020-local-stack-survives-faults.md).

- The journal: every write moto accepts (PutItem, UpdateItem, DeleteItem, BatchWriteItem,
  TransactWriteItems) appends, before moto answers, one line per item it touched: the item as it
  now is, or its deletion. The line is handed to the OS before the response leaves, so a killed
  stack (SIGKILL included) loses no acknowledged write; the file is fsynced every second, so a
  machine crash loses at most that second.
- Snapshots: when the journal's segment has grown past `COMPACT_AFTER` lines, a thread starts a
  new segment, writes every table (read from moto's memory, not through Scan) to
  `dynamodb.json`, and then deletes the segments the snapshot covers. Writes go on meanwhile:
  they land in the new segment, whose lines are whole item states, so replaying them over a
  snapshot that already saw some of them gives the same table.
- Restore (at start): the snapshot, then every later segment in order (the last state of each
  key wins), straight into moto's memory; a torn last line (the crash mid-write) is skipped, and
  so is a deployment summary that no longer matches its document's version (docs/decisions/0034).
- Stop: fsync and close. Nothing else to write, so a Ctrl-C returns at once.

The older format (`dynamodb.json` holding the main table's items as a list, saved on stop) is
still read.
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from pathlib import Path

from chalicelib.store.table import is_event_key, stale_summaries

log = logging.getLogger("vamp.local")

SNAPSHOT = "dynamodb.json"
_SEGMENT = re.compile(r"^journal-(\d{8})\.jsonl$")
COMPACT_AFTER = 20_000  # lines in the current segment before a snapshot is taken
MAX_SEGMENTS = 8  # segments (one per start, at least) before a start takes a snapshot
FSYNC_EVERY = 1.0  # seconds: the most a machine crash can lose
_WRITES = ("put_item", "update_item", "delete_item", "batch_write_item", "transact_write_items")


def moto_backend():
    # moto's backends: only where moto runs in this process (the stack's `import` stays light).
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[DEFAULT_ACCOUNT_ID][os.environ.get("AWS_DEFAULT_REGION", "us-east-1")]


def _key_of(table, attrs: dict) -> dict:
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return key


def _touched(backend, action: str, body: dict) -> list[tuple[str, dict]]:
    """(table, key) of every item a successful write request changed."""
    if action == "batch_write_item":
        out = []
        for table_name, requests in (body.get("RequestItems") or {}).items():
            table = backend.get_table(table_name)
            for request in requests:
                if "PutRequest" in request:
                    out.append((table_name, _key_of(table, request["PutRequest"]["Item"])))
                elif "DeleteRequest" in request:
                    out.append((table_name, request["DeleteRequest"]["Key"]))
        return out
    if action == "transact_write_items":
        out = []
        for entry in body.get("TransactItems") or []:
            kind, op = next(iter(entry.items()))
            if kind == "ConditionCheck":
                continue
            table = backend.get_table(op["TableName"])
            out.append((op["TableName"], _key_of(table, op["Item"]) if "Item" in op else op["Key"]))
        return out
    table_name = body["TableName"]
    if action == "put_item":
        return [(table_name, _key_of(backend.get_table(table_name), body["Item"]))]
    return [(table_name, body["Key"])]


def _key_text(table_name: str, key: dict) -> str:
    return json.dumps([table_name, key], sort_keys=True)


def _applied(rows: list[dict], key: dict, item: dict | None) -> list[dict]:
    """Rows of a table moto does not have, with one journal line applied (its key names the key
    attributes)."""
    rest = [r for r in rows if any(r.get(name) != value for name, value in key.items())]
    return rest if item is None else rest + [item]


class Journal:
    """The snapshot and journal segments in one directory; `attach()` hooks moto's handlers."""

    def __init__(self, directory: Path, unjournaled: frozenset[str] = frozenset()) -> None:
        self.directory = directory
        # Tables whose writes are neither journaled nor snapshotted: the events table, telemetry
        # with a TTL and no state (docs/decisions/0021; its volume would make the journal the cost).
        self.unjournaled = unjournaled
        self._lock = threading.Lock()
        self._file = None
        self._segment = 0
        self._lines = 0
        self._pending = 0  # lines of earlier segments (restored), also covered by the next snapshot
        self._dirty = False
        self._stop = threading.Event()
        self._compacting = threading.Lock()
        self._compaction_due = False
        self._kept: dict[str, list[dict]] = {}  # items of tables moto does not have (see restore)
        self._threads: list[threading.Thread] = []
        self.compactions = 0

    # -- restore -------------------------------------------------------------------------------
    def segments(self) -> list[tuple[int, Path]]:
        found = [(int(m.group(1)), p) for p in self.directory.glob("journal-*.jsonl") if (m := _SEGMENT.match(p.name))]
        return sorted(found)

    def restore(self, main_table: str) -> tuple[int, int]:
        """Load the snapshot and replay the journal into moto: (items in the tables, journal lines)."""
        backend = moto_backend()
        snapshot, covered = self._read_snapshot(main_table)
        replayed = 0
        latest: dict[str, tuple[str, dict, dict | None]] = {}
        for seq, path in self.segments():
            if seq <= covered:
                path.unlink(missing_ok=True)  # a compaction ended before it could delete it
                continue
            for line in path.read_bytes().splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:  # the torn last line of a crash
                    log.warning("journal %s: skipped an unreadable line", path.name)
                    continue
                latest[_key_text(entry["t"], entry["k"])] = (entry["t"], entry["k"], entry["i"])
                replayed += 1
        items, kept = {}, {}
        for table_name, rows in snapshot.items():
            try:
                table = backend.get_table(table_name)
            except Exception:  # noqa: BLE001 - a table this stack does not create (yet): kept on disk
                kept[table_name] = rows
                continue
            for row in rows:
                items[_key_text(table_name, _key_of(table, row))] = (table_name, row)
        for text, (table_name, key, item) in latest.items():
            if table_name in backend.tables:
                if item is None:
                    items.pop(text, None)
                else:
                    items[text] = (table_name, item)
            else:
                kept[table_name] = _applied(kept.get(table_name, []), key, item)
        # A summary that disagrees with its document (the torn tail of a transaction's lines) is
        # left out: the scheduled pass reads that document and writes its summary again.
        stale = stale_summaries([row for name, row in items.values() if name == main_table])
        for table_name, item in items.values():
            if table_name == main_table and (item["pk"]["S"], item["sk"]["S"]) in stale:
                continue
            backend.put_item(table_name, item)
        for table_name, rows in kept.items():
            log.warning("no table %s in this stack: its %d items stay on disk, not loaded", table_name, len(rows))
        self._kept = kept  # carried into the next snapshot, so a stack without the table loses nothing
        self._segment = max([covered, *(s for s, _ in self.segments())]) + 1
        self._pending = replayed  # lines the next snapshot makes unnecessary
        return len(items) - len(stale), replayed

    def _read_snapshot(self, main_table: str) -> tuple[dict[str, list[dict]], int]:
        path = self.directory / SNAPSHOT
        if not path.exists():
            return {}, 0
        data = json.loads(path.read_text())
        if isinstance(data, list):  # the format saved on stop before the journal (events included then)
            return {main_table: [row for row in data if not is_event_key(row["pk"]["S"])]}, 0
        return data["tables"], int(data.get("covers", 0))

    # -- writing -------------------------------------------------------------------------------
    def attach(self) -> None:
        """Journal every write moto acknowledges from now on (after restore: restored items are
        in the snapshot and journal already)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._open(self._segment or 1)
        _hooks.journal = self
        _install_hooks()
        if len(self.segments()) > MAX_SEGMENTS:  # one per start: many short runs, few lines each
            self._compaction_due = True
            threading.Thread(target=self.compact, name="vamp-journal-snapshot", daemon=True).start()
        for target, name in ((self._fsync_loop, "vamp-journal-fsync"),):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def _open(self, seq: int) -> None:
        self._segment, self._lines = seq, 0
        self._file = open(self.directory / f"journal-{seq:08d}.jsonl", "ab")

    def record(self, backend, action: str, body: dict) -> None:
        try:
            touched = _touched(backend, action, body)
        except Exception:  # noqa: BLE001 - never fail a write moto accepted; say so
            log.exception("journal: cannot tell what %s changed; it is not journaled", action)
            return
        with self._lock:  # read and append together: the last line of a key is its state now
            if self._file is None:
                return
            lines = []
            for table_name, key in touched:
                if table_name in self.unjournaled:
                    continue
                item = backend.get_item(table_name, key)
                lines.append(json.dumps({"t": table_name, "k": key, "i": item.to_json()["Attributes"] if item else None}))
            if not lines:
                return
            self._file.write(("\n".join(lines) + "\n").encode())
            self._file.flush()  # in the OS before moto answers: a killed stack loses nothing
            self._lines += len(lines)
            self._dirty = True
            compact = self._lines + self._pending >= COMPACT_AFTER and not self._compaction_due
            self._compaction_due |= compact
        if compact:
            threading.Thread(target=self.compact, name="vamp-journal-snapshot", daemon=True).start()

    def _fsync_loop(self) -> None:
        while not self._stop.wait(FSYNC_EVERY):
            self.sync()

    def sync(self) -> None:
        with self._lock:
            if self._file is not None and self._dirty:
                os.fsync(self._file.fileno())
                self._dirty = False

    def compact(self) -> int:
        """A new segment, a snapshot of every table, then the old segments go: returns the items."""
        with self._compacting:
            started = time.monotonic()
            with self._lock:
                if self._file is None:
                    return 0
                covers = self._segment
                self._file.flush()
                os.fsync(self._file.fileno())
                self._file.close()
                self._open(covers + 1)
                self._pending = 0
            tables = {name: rows for name, rows in dump_tables().items() if name not in self.unjournaled}
            for table_name, rows in self._kept.items():
                tables.setdefault(table_name, rows)
            path = self.directory / SNAPSHOT
            tmp = path.with_suffix(".tmp")
            with open(tmp, "w") as out:
                json.dump({"covers": covers, "tables": tables}, out)
                out.flush()
                os.fsync(out.fileno())
            tmp.replace(path)
            for seq, segment in self.segments():
                if seq <= covers:
                    segment.unlink(missing_ok=True)
            count = sum(len(rows) for rows in tables.values())
            self.compactions += 1
            self._compaction_due = False
            log.info("snapshot of %d items in %.2f s", count, time.monotonic() - started)
            return count

    def close(self) -> None:
        _hooks.journal = None
        self._stop.set()
        with self._lock:
            if self._file is not None:
                self._file.flush()
                os.fsync(self._file.fileno())
                self._file.close()
                self._file = None


def dump_tables() -> dict[str, list[dict]]:
    """Every item of every table in moto's memory (DynamoDB JSON). Each dict is copied before it is
    read (one step under the GIL), so writers running meanwhile cannot break the iteration."""
    backend = moto_backend()
    out: dict[str, list[dict]] = {}
    for name, table in list(backend.tables.items()):
        rows = []
        for entry in list(table.items.values()):
            for item in list(entry.values()) if table.range_key_attr else [entry]:
                for _ in range(3):
                    try:
                        rows.append(item.to_json()["Attributes"])
                        break
                    except RuntimeError:  # changed while read; the journal has its newer state anyway
                        continue
        out[name] = rows
    return out


class _Hooks:
    journal: Journal | None = None
    installed = False


_hooks = _Hooks()
_install_lock = threading.Lock()


def _install_hooks() -> None:
    """Wrap moto's DynamoDB write handlers (once per process; the current journal, if any, records)."""
    with _install_lock:
        if _hooks.installed:
            return
        from moto.dynamodb.responses import DynamoHandler  # as in moto_backend: moto in this process only

        for action in _WRITES:
            original = getattr(DynamoHandler, action)

            def journaled(self, _original=original, _action=action):
                result = _original(self)  # raises on a refused write: nothing to journal
                journal = _hooks.journal
                if journal is not None:
                    journal.record(self.dynamodb_backend, _action, self.body)
                return result

            setattr(DynamoHandler, action, journaled)
        _hooks.installed = True
