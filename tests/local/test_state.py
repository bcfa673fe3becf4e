"""The journal of acknowledged writes (local/state.py) on moto's server: what a restore rebuilds
is the table as it was, through concurrent writers, a snapshot taken while they write, a torn
last line and the format saved before the journal."""
from __future__ import annotations

import json
import os
import threading

import pytest

from chalicelib.errors import Conflict
from chalicelib.store import table
from chalicelib.store.artifact_store import Write
from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore
from local import state


def _items() -> list[str]:
    return sorted(json.dumps(i, sort_keys=True) for i in table.dump_items())


def _crash_and_restore(directory) -> tuple[int, int]:
    """What a killed stack leaves: the files; moto's memory is gone. Then a start's restore."""
    state.moto_backend().get_table(table.table_name()).items.clear()
    return state.Journal(directory).restore(table.table_name())


@pytest.fixture()
def journal(aws, tmp_path):
    j = state.Journal(tmp_path / "state")
    j.restore(table.table_name())
    j.attach()
    yield j
    j.close()


def _doc(name: str, value: str) -> dict:
    return {"kind": "breeds", "name": name, "deployable": {"type": "container/docker", "definition": value}}


def test_every_acknowledged_write_is_restored(journal, tmp_path):
    store = DynamoDBArtifactStore()
    for i in range(20):
        store.apply("default", [Write("breeds", f"b{i}", _doc(f"b{i}", "x:1"), expected_version=None)])
    store.apply("default", [Write("breeds", "b0", _doc("b0", "x:2"), expected_version=1)])
    store.apply("default", [Write("breeds", "b1", None, expected_version=1)])
    with pytest.raises(Conflict):  # refused: nothing journaled
        store.apply("default", [Write("breeds", "b2", _doc("b2", "x:9"), expected_version=7)])

    def contend(worker: int) -> None:  # many writers on one item: conditional writes, some lose
        for n in range(15):
            current = store.get("default", "breeds", "b3")
            try:
                store.apply("default", [Write("breeds", "b3", _doc("b3", f"w{worker}-{n}"), current.version)])
            except Conflict:
                pass

    threads = [threading.Thread(target=contend, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    before = _items()

    items, lines = _crash_and_restore(tmp_path / "state")
    assert _items() == before and items == len(before) and lines > 0
    assert store.get("default", "breeds", "b0").document["deployable"]["definition"] == "x:2"
    assert store.get("default", "breeds", "b1") is None


def test_a_snapshot_taken_while_writers_write_loses_nothing(journal, tmp_path):
    store = DynamoDBArtifactStore()
    stop = threading.Event()

    def write() -> None:
        i = 0
        while not stop.is_set():
            store.apply("default", [Write("breeds", f"w{i % 40}", _doc(f"w{i % 40}", str(i)),
                                          expected_version=None if i < 40 else store.get("default", "breeds", f"w{i % 40}").version)])
            i += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        while len(table.dump_items()) < 20:
            pass
        assert journal.compact() > 0
        assert journal.compact() > 0  # a second, while writes go on
    finally:
        stop.set()
        writer.join()
    before = _items()
    assert len(journal.segments()) == 1  # the snapshot replaced the covered segments

    _crash_and_restore(tmp_path / "state")
    assert _items() == before


def test_a_torn_last_line_is_skipped(journal, tmp_path):
    store = DynamoDBArtifactStore()
    store.apply("default", [Write("breeds", "a", _doc("a", "x:1"), expected_version=None)])
    before = _items()
    (_, segment), = journal.segments()
    with open(segment, "ab") as out:
        out.write(b'{"t": "vamp", "k": {"pk"')  # the crash came mid-line
    _crash_and_restore(tmp_path / "state")
    assert _items() == before


def test_the_snapshot_saved_on_stop_before_the_journal_is_read(aws, tmp_path):
    store = DynamoDBArtifactStore()
    store.apply("default", [Write("breeds", "old", _doc("old", "x:1"), expected_version=None)])
    before = _items()
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / state.SNAPSHOT).write_text(json.dumps(table.dump_items()))
    _crash_and_restore(tmp_path / "state")
    assert _items() == before


def test_items_of_a_table_the_stack_does_not_create_are_kept(journal, tmp_path):
    """A table that exists when written but not at the next start (another table's code not
    merged yet, say): its items are not loaded, but the next snapshot keeps them."""
    import uuid

    from chalicelib.store.tokens import DynamoDBTokenStore

    other = f"vamp-other-{uuid.uuid4().hex[:8]}"
    table.ensure_table(other)
    main = table.table_name()
    os.environ["VAMP_TABLE_NAME"] = other
    table.reset_clients()
    try:
        DynamoDBTokenStore().create("kept", "kept-token-0123456789abcdef", role="admin", namespaces=["*"])
        DynamoDBTokenStore().create("dropped", "dropped-token-0123456789abcdef", role="admin",
                                    namespaces=["*"])
        DynamoDBTokenStore().revoke("dropped")
        written = _items()
    finally:
        os.environ["VAMP_TABLE_NAME"] = main
        table.reset_clients()
    state.moto_backend().delete_table(other)
    restored = state.Journal(tmp_path / "state")
    restored.restore(main)
    restored.attach()
    restored.compact()
    restored.close()

    table.ensure_table(other)
    os.environ["VAMP_TABLE_NAME"] = other
    table.reset_clients()
    try:
        state.Journal(tmp_path / "state").restore(main)
        assert _items() == written and len(written) == 1
    finally:
        os.environ["VAMP_TABLE_NAME"] = main
        table.reset_clients()
        state.moto_backend().delete_table(other)
