"""The idle pass reads summaries, not deployments (docs/decisions/0034): over settled deployments
it reads no deployment document; a deployment that is not quiet is synchronised as before; one
stored without a summary is read and gets one; every write path keeps the summary equal to what
its document says, and a restore never keeps one that disagrees."""
from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.deployments import operations, sync
from chalicelib.deployments.operations import KIND, summary_of
from chalicelib.drivers.base import DriverError, Instance, ServiceStatus
from chalicelib.errors import Conflict, NotFound, Unavailable
from chalicelib.releases import tasks
from chalicelib.store import namespaces as registry
from chalicelib.store import table
from chalicelib.store.artifact_store import Write
from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore
from tests.deployments.helpers import one


def quietly(namespace, events):
    return None


class Driver:
    """Runs what it is given; `mode`: `run` (at once), `slow` (deploying), `fail` (refuses)."""

    name = "summaries"

    def __init__(self):
        self.mode = "run"
        self.specs: dict[str, str] = {}  # key -> digest it runs
        self.deployed: list[str] = []

    def deploy(self, namespace, spec):
        if self.mode == "fail":
            raise DriverError("no capacity")
        self.specs[spec.key] = spec.digest()
        self.deployed.append(spec.key)

    def undeploy(self, namespace, deployment, cluster, service):
        self.specs.pop(f"{deployment}/{cluster}/{service}", None)

    def status(self, namespace, keys):
        state = "deploying" if self.mode == "slow" else "running"
        return {k: ServiceStatus(k, state, (Instance("i0", "127.0.0.1", {"webport": 8080}, True),), 1, None,
                                 self.specs[k]) if k in self.specs else ServiceStatus(k, "absent") for k in keys}

    def running(self, namespace):
        return dict(self.specs)


class Reads:
    """What the pass reads of the namespace's deployment documents, counted at the client."""

    def __init__(self, namespace: str):
        self.partition = table.artifact_pk(namespace, KIND)
        self.documents: list[str] = []  # "<operation>:<name or *>"
        self.calls: list[str] = []

    def __call__(self, params, model, **_):
        self.calls.append(model.name)
        if model.name == "Query" and params["ExpressionAttributeValues"][":pk"]["S"] == self.partition:
            self.documents.append("Query:*")
        elif model.name == "GetItem" and params["Key"]["pk"]["S"] == self.partition:
            self.documents.append(f"GetItem:{params['Key']['sk']['S']}")
        elif model.name == "BatchGetItem":
            for request in params["RequestItems"].values():
                self.documents += [f"BatchGetItem:{k['sk']['S']}" for k in request["Keys"]
                                   if k["pk"]["S"] == self.partition]

    def __enter__(self):
        self._undo = table.watch("provide-client-params.dynamodb", self)
        return self

    def __exit__(self, *exc):
        self._undo()


@pytest.fixture()
def ns():
    return f"s{uuid.uuid4().hex[:10]}"


@pytest.fixture()
def driver(monkeypatch):
    found = Driver()
    monkeypatch.setattr(sync, "driver_for", lambda namespace: found)
    return found


def settled(store, ns, driver, n: int) -> None:
    for i in range(n):
        operations.change(store, ns, None, one(f"d{i}"), "merge", quietly)
    result = sync.sync_namespace(ns, store=store, driver=driver, publish=quietly)
    assert result.changed == n and not result.errors, result


def agree(store, ns) -> None:
    """Every deployment's summary is what its stored document says, at its version; no other."""
    docs = {a.name: a for a in store.all_of_kind(ns, KIND)}
    found = store.summaries(ns, KIND)
    assert found.items == {n: (a.version, summary_of(a.document)) for n, a in docs.items()}
    assert found.total == len(docs) and found.complete


def drop_summaries(ns, names) -> None:
    """What a deployment stored before summaries existed looks like."""
    for name in names:
        table.client().delete_item(TableName=table.table_name(),
                                   Key={"pk": {"S": table.summary_pk(ns, KIND)}, "sk": {"S": name}})


def test_the_idle_pass_over_settled_deployments_reads_no_document(aws, ns, driver):
    store = DynamoDBArtifactStore()
    settled(store, ns, driver, 12)
    driver.deployed.clear()
    with Reads(ns) as reads:
        result = sync.sync_namespace(ns, store=store, driver=driver, publish=quietly)
    assert reads.documents == []
    assert (result.deployments, result.skipped, result.changed, result.errors) == (12, 12, 0, [])
    assert sorted(set(reads.calls)) == ["GetItem", "Query"]  # the summaries, and the kind's count
    assert driver.deployed == []


def test_the_scheduled_pass_of_every_namespace_reads_no_document(aws, ns, driver):
    store = DynamoDBArtifactStore()
    settled(store, ns, driver, 3)
    registry.register(KIND, ns)
    with Reads(ns) as reads:
        out = sync.run_all(publish=quietly)
    assert out[ns].summary() == {"deployments": 3, "changed": 0, "errors": []}
    assert reads.documents == []


def test_a_deployment_that_is_not_quiet_is_read_and_synchronised_as_before(aws, ns, driver):
    store = DynamoDBArtifactStore()
    settled(store, ns, driver, 5)
    operations.change(store, ns, None, one("d3", "2.0.0"), "merge", quietly)  # a new version of d3
    driver.specs.pop("d1/d1/d1:1.0.0")  # and d1's process is gone
    driver.deployed.clear()
    with Reads(ns) as reads:
        result = sync.sync_namespace(ns, store=store, driver=driver, publish=quietly)
    # d1 and d3 read by the pass (d3 again by its write, which pins the version it replaces)
    assert {d.split(":")[1] for d in reads.documents} == {"d1", "d3"}
    assert (result.deployments, result.changed, result.skipped) == (5, 1, 4)  # d1: redeployed, unchanged
    assert sorted(driver.deployed) == ["d1/d1/d1:1.0.0", "d3/d3/d3:2.0.0"]
    d3 = store.get(ns, KIND, "d3").document["clusters"]["d3"]["services"]
    assert {s["breed"]["name"]: s["status"]["phase"]["name"] for s in d3} == {"d3:1.0.0": "done", "d3:2.0.0": "done"}
    agree(store, ns)
    with Reads(ns) as reads:  # settled again: nothing read
        sync.sync_namespace(ns, store=store, driver=driver, publish=quietly)
    assert reads.documents == []


def test_a_failed_service_is_read_and_retried_until_it_runs(aws, ns, driver):
    store = DynamoDBArtifactStore()
    driver.mode = "fail"
    operations.change(store, ns, None, one("shop"), "merge", quietly)
    sync.sync_namespace(ns, store=store, driver=driver, publish=quietly)
    [s] = store.get(ns, KIND, "shop").document["clusters"]["shop"]["services"]
    assert s["status"]["phase"]["name"] == "failed" and s["retry_at"]
    assert store.summaries(ns, KIND).items["shop"][1]["settled"] is False
    driver.mode = "run"
    with Reads(ns) as reads:  # a retry pending: the document is read (not yet due: nothing done)
        sync.sync_namespace(ns, store=store, driver=driver, publish=quietly)
    assert reads.documents == ["BatchGetItem:shop"]
    stored = store.get(ns, KIND, "shop")
    [s] = stored.document["clusters"]["shop"]["services"]
    s["retry_at"] = "2020-01-01T00:00:00.000Z"  # due now
    store.apply(ns, [Write(KIND, "shop", stored.document, stored.version, summary=summary_of(stored.document))])
    assert sync.sync_namespace(ns, store=store, driver=driver, publish=quietly).changed == 1
    [s] = store.get(ns, KIND, "shop").document["clusters"]["shop"]["services"]
    assert s["status"]["phase"]["name"] == "done" and not s.get("retry_at")
    agree(store, ns)


def test_deployments_stored_without_a_summary_are_read_once_and_get_one(aws, ns, driver):
    store = DynamoDBArtifactStore()
    settled(store, ns, driver, 4)
    drop_summaries(ns, ["d0", "d2"])
    operations.change(store, ns, None, one("d1", "2.0.0"), "merge", quietly)
    drop_summaries(ns, ["d1"])  # an old item that is not quiet either
    assert not store.summaries(ns, KIND).complete
    with Reads(ns) as reads:
        result = sync.sync_namespace(ns, store=store, driver=driver, publish=quietly)
    assert reads.documents == ["Query:*", "BatchGetItem:d1"]  # every document as before; d1's write
    assert (result.deployments, result.changed, result.skipped) == (4, 1, 3)
    assert "d1/d1/d1:2.0.0" in driver.specs
    agree(store, ns)
    with Reads(ns) as reads:
        assert sync.sync_namespace(ns, store=store, driver=driver, publish=quietly).changed == 0
    assert reads.documents == []


def test_a_writer_that_knows_no_summary_leaves_none_behind(aws, ns, driver):
    """A write of the kind without a summary (bench seeds, a tool) removes the stored one: the
    pass then reads the document rather than trust a summary of an older version."""
    store = DynamoDBArtifactStore()
    settled(store, ns, driver, 2)
    stored = store.get(ns, KIND, "d0")
    doc = stored.document
    doc["clusters"]["d0"]["services"][0]["digest"] = "something-else"
    store.apply(ns, [Write(KIND, "d0", doc, stored.version)])
    assert "d0" not in store.summaries(ns, KIND).items
    with Reads(ns) as reads:
        result = sync.sync_namespace(ns, store=store, driver=driver, publish=quietly)
    assert reads.documents == ["Query:*", "BatchGetItem:d0"] and result.changed == 1  # its write's read
    agree(store, ns)


def test_a_summary_for_a_version_already_replaced_is_refused(aws, ns, driver):
    """The migration writes a summary only while the document is at the version it read: a
    writer in between stored its own, which stays."""
    store = DynamoDBArtifactStore()
    settled(store, ns, driver, 1)
    old = store.get(ns, KIND, "d0")
    operations.scale(store, ns, "d0", "d0", "d0:1.0.0", {"cpu": 0.5, "memory": "256MB", "instances": 2}, quietly)
    assert store.put_summary(ns, KIND, "d0", old.version, summary_of(old.document)) is False
    agree(store, ns)
    assert store.summaries(ns, KIND).items["d0"][1]["settled"] is False  # the scale is pending
    now = store.get(ns, KIND, "d0")
    assert store.put_summary(ns, KIND, "d0", now.version, summary_of(now.document)) is True


def test_a_pass_that_loses_the_race_to_a_writer_leaves_the_writers_summary(aws, ns, driver, monkeypatch):
    store = DynamoDBArtifactStore()
    settled(store, ns, driver, 1)
    operations.change(store, ns, None, one("d0", "2.0.0"), "merge", quietly)
    real = driver.status

    def status_then_a_writer(namespace, keys):  # someone writes while the pass talks to the driver
        operations.scale(store, ns, "d0", "d0", "d0:1.0.0", {"cpu": 0.5, "memory": "256MB", "instances": 3}, quietly)
        monkeypatch.setattr(driver, "status", real)
        return real(namespace, keys)

    monkeypatch.setattr(driver, "status", status_then_a_writer)
    result = sync.sync_namespace(ns, store=store, driver=driver, publish=quietly)
    assert result.errors == ["d0: changed concurrently; next pass"]
    agree(store, ns)
    assert sync.sync_namespace(ns, store=store, driver=driver, publish=quietly).changed == 1
    agree(store, ns)


def test_a_restore_leaves_out_summaries_that_disagree_with_their_document(aws, ns, driver):
    store = DynamoDBArtifactStore()
    settled(store, ns, driver, 3)
    dump = table.dump_items()
    summary_pk = table.summary_pk(ns, KIND)
    for item in dump:  # a torn journal: d1's summary of another version, d2's document gone
        if item["pk"]["S"] == summary_pk and item["sk"]["S"] == "d1":
            item["version"] = {"N": "99"}
    dump = [i for i in dump if not (i["pk"]["S"] == table.artifact_pk(ns, KIND) and i["sk"]["S"] == "d2")]
    assert table.stale_summaries(dump) == {(summary_pk, "d1"), (summary_pk, "d2")}
    for item in table.dump_items():
        table.client().delete_item(TableName=table.table_name(), Key={"pk": item["pk"], "sk": item["sk"]})
    table.load_items(dump)
    assert sorted(store.summaries(ns, KIND).items) == ["d0"]


# -- every write path, any order: the summary is what its document says -----------------------

SERVICE = {"name": "d0", "breed": "d0:1.0.0"}
steps = st.sampled_from(["deploy-1", "deploy-2", "scale", "sla", "undeploy-2", "slice", "force-delete", "retire-1",
                         "sync-run", "sync-slow", "sync-fail", "sync-one"])


def _step(store, ns, driver, step: str) -> None:
    name, cluster = "d0", "d0"
    if step.startswith("deploy-"):
        operations.change(store, ns, None, one(name, f"{step[-1]}.0.0"), "merge", quietly)
    elif step == "scale":
        operations.scale(store, ns, name, cluster, "d0:1.0.0", {"cpu": 0.2, "memory": "128MB",
                                                                "instances": len(driver.deployed) % 3 + 1}, quietly)
    elif step == "sla":
        operations.sla(store, ns, name, cluster, None, "DELETE", quietly)
    elif step == "undeploy-2":
        operations.change(store, ns, name, {"name": name, "clusters": {cluster: {"services": [
            {"breed": "d0:2.0.0"}]}}}, "slice", quietly)
    elif step == "slice":
        operations.change(store, ns, name, None, "slice", quietly)
    elif step == "force-delete":
        operations.change(store, ns, name, None, "slice", quietly, force=True)
    elif step == "retire-1":
        tasks.retire_stable_service(store, ns, f"{name}/{cluster}/d0:1.0.0/webport")
    else:
        driver.mode = {"sync-run": "run", "sync-slow": "slow", "sync-fail": "fail", "sync-one": "run"}[step]
        sync.sync_namespace(ns, store=store, driver=driver, publish=quietly, only=name if step == "sync-one" else None)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(steps, min_size=1, max_size=8))
def test_every_write_path_keeps_the_summary_equal_to_its_document(aws, monkeypatch, sequence):
    store, ns, driver = DynamoDBArtifactStore(), f"p{uuid.uuid4().hex[:10]}", Driver()
    monkeypatch.setattr(sync, "driver_for", lambda namespace: driver)
    monkeypatch.setattr(tasks, "event_store", lambda: type("Events", (), {"publish": staticmethod(quietly)})())
    for step in sequence:
        try:
            _step(store, ns, driver, step)
        except (NotFound, Conflict):  # nothing to slice, scale or delete: nothing written either
            pass
        agree(store, ns)
    sync.sync_namespace(ns, store=store, driver=driver, publish=quietly)
    agree(store, ns)


def test_a_journal_torn_after_the_document_restores_no_summary_of_the_older_version(aws, ns, driver, tmp_path):
    from local import state

    journal = state.Journal(tmp_path / "state")
    journal.restore(table.table_name())
    journal.attach()
    store = DynamoDBArtifactStore()
    try:
        settled(store, ns, driver, 1)
        operations.scale(store, ns, "d0", "d0", "d0:1.0.0", {"cpu": 0.5, "memory": "256MB", "instances": 2}, quietly)
    finally:
        journal.close()
    [(_, segment)] = journal.segments()
    lines = segment.read_bytes().splitlines(keepends=True)
    assert table.summary_pk(ns, KIND) in lines[-1].decode()  # the transaction's last line: its summary
    segment.write_bytes(b"".join(lines[:-1]) + lines[-1][:20])  # the crash tore it
    state.moto_backend().get_table(table.table_name()).items.clear()
    state.Journal(tmp_path / "state").restore(table.table_name())
    assert store.get(ns, KIND, "d0").version == 3  # created, synchronised, scaled
    assert "d0" not in store.summaries(ns, KIND).items  # not the summary of version 2
    with Reads(ns) as reads:
        sync.sync_namespace(ns, store=store, driver=driver, publish=quietly)
    assert reads.documents[0] == "Query:*"
    agree(store, ns)


def test_a_summary_that_cannot_be_written_costs_reads_not_the_pass(aws, ns, driver, monkeypatch):
    store = DynamoDBArtifactStore()
    settled(store, ns, driver, 2)
    drop_summaries(ns, ["d0", "d1"])
    operations.change(store, ns, None, one("d0", "2.0.0"), "merge", quietly)
    drop_summaries(ns, ["d0"])

    def throttled(*args):
        raise Unavailable("the table is throttling writes; retry later", [])

    monkeypatch.setattr(store, "put_summary", throttled)
    result = sync.sync_namespace(ns, store=store, driver=driver, publish=quietly)
    assert (result.deployments, result.changed, result.errors) == (2, 1, [])
    assert "d0/d0/d0:2.0.0" in driver.specs
    assert sorted(store.summaries(ns, KIND).items) == ["d0"]  # d0's own write stored its summary
