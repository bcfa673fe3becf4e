"""The spool on its own, and shipping to (a fake) OpenSearch through outages."""
from __future__ import annotations

import json

import pytest

from agent.logs.parser import parse
from agent.logs.shipper import BulkClient, Shipper
from agent.logs.spool import Spool
from agent.metrics import AgentMetrics
from tests.agent.helpers import line, sample, wait_for


def entries(n: int, start: int = 0) -> list[bytes]:
    return [b"idx\t{\"n\":%d,\"pad\":\"%s\"}\n" % (i, b"x" * 80) for i in range(start, start + n)]


def test_spool_appends_reads_oldest_first_and_deletes_when_shipped(tmp_path):
    spool = Spool(tmp_path, max_bytes=100_000)
    spool.append(entries(10))
    spool.append(entries(10, 10))
    seg, got = spool.oldest()
    assert got == entries(20)  # one segment so far: sealed and read whole
    spool.append(entries(5, 20))  # goes to a new segment
    spool.consumed(seg, 12)
    assert spool.oldest()[1] == entries(8, 12)  # resumes after what was shipped
    spool.consumed(seg, 8)
    seg2, got = spool.oldest()
    assert got == entries(5, 20) and seg2 is not seg
    spool.consumed(seg2, 5)
    assert not spool and spool.bytes == 0 and list(tmp_path.iterdir()) == []


def test_spool_full_drops_oldest_and_counts_them(tmp_path):
    dropped: list[int] = []
    spool = Spool(tmp_path, max_bytes=20_000, on_drop=dropped.append)  # segments of 4096 bytes
    for i in range(100):
        spool.append(entries(10, i * 10))  # 1000 entries of ~100 bytes: 5x the bound
    assert spool.bytes <= 20_000
    assert sum(dropped) + spool.lines == 1000
    assert sum(dropped) > 700
    kept = []
    while (item := spool.oldest()) is not None:
        seg, got = item
        kept += got
        spool.consumed(seg, len(got))
    assert kept == entries(1000)[-len(kept):]  # the newest survive, in order


def test_spool_survives_a_restart(tmp_path):
    Spool(tmp_path, max_bytes=100_000).append(entries(7))
    again = Spool(tmp_path, max_bytes=100_000)
    assert again.lines == 7 and again.oldest()[1] == entries(7)
    again.append(entries(1, 7))
    assert again.lines == 8


def docs(n: int) -> list[tuple[str, bytes]]:
    out = []
    for i in range(n):
        r = parse(line(tt=i % 100, request=f"GET /{i} HTTP/1.1"))
        out.append((r.day, r.doc))
    return out


def make_shipper(url: str, tmp_path, **kw) -> tuple[Shipper, AgentMetrics]:  # type: ignore[no-untyped-def]
    metrics = AgentMetrics()
    spool = Spool(tmp_path / "spool", kw.pop("max_bytes", 10_000_000), on_drop=metrics.lines_dropped.inc)
    shipper = Shipper(BulkClient(url, timeout=2), spool, metrics, "ns", batch_lines=kw.pop("batch_lines", 100),
                      interval=0.1, backoff_max=0.3, **kw)
    shipper.start()
    return shipper, metrics


@pytest.mark.slow
def test_logs_ship_to_daily_indices(fake_opensearch, tmp_path):
    shipper, metrics = make_shipper(fake_opensearch.url, tmp_path)
    for day, doc in docs(250):
        shipper.add(day, doc)
    wait_for(lambda: sample(metrics, "vamp_agent_log_lines_shipped_total") == 250, 10, what="250 shipped")
    found = fake_opensearch.documents("vamp-logs-ns-2023.11.14")
    assert len(found) == 250 and found[0]["gateway"] == "sava/9050" and found[0]["route"] == "v1"
    assert sample(metrics, "vamp_agent_log_lines_spooled_total") == 0
    shipper.stop()


@pytest.mark.slow
def test_opensearch_unreachable_lines_spool_then_ship_when_it_returns(fake_opensearch, tmp_path):
    fake_opensearch.stop()
    shipper, metrics = make_shipper(fake_opensearch.url, tmp_path)
    for day, doc in docs(1000):
        shipper.add(day, doc)
    wait_for(lambda: sample(metrics, "vamp_agent_log_lines_spooled_total") == 1000, 10, what="1000 spooled")
    assert sample(metrics, "vamp_agent_log_lines_shipped_total") == 0 and shipper.online is False
    assert sample(metrics, "vamp_agent_spool_bytes") > 0
    fake_opensearch.start()
    wait_for(lambda: sample(metrics, "vamp_agent_log_lines_shipped_total") == 1000, 15, what="spool drained")
    requests_ = {json.loads(d)["request"] for d in [doc for _, doc in docs(1000)]}
    assert {d["request"] for d in fake_opensearch.documents("vamp-logs-ns-*")} == requests_
    assert sample(metrics, "vamp_agent_log_lines_dropped_total") == 0 and not shipper.spool
    assert sample(metrics, "vamp_agent_spool_bytes") == 0
    shipper.stop()


@pytest.mark.slow
def test_spool_full_drops_are_counted_and_the_rest_ships(fake_opensearch, tmp_path):
    fake_opensearch.stop()
    shipper, metrics = make_shipper(fake_opensearch.url, tmp_path, max_bytes=64 * 1024)
    for day, doc in docs(2000):  # ~1 MB of documents into a 64 KiB spool
        shipper.add(day, doc)
    wait_for(lambda: sample(metrics, "vamp_agent_log_lines_spooled_total") == 2000, 10,
             what="all offered to the spool")
    dropped = sample(metrics, "vamp_agent_log_lines_dropped_total")
    assert dropped > 1000 and shipper.spool.bytes <= 64 * 1024
    fake_opensearch.start()
    wait_for(lambda: sample(metrics, "vamp_agent_log_lines_shipped_total")
             + sample(metrics, "vamp_agent_log_lines_dropped_total") == 2000, 15, what="drained")
    assert len(fake_opensearch.documents("vamp-logs-ns-*")) == 2000 - dropped
    shipper.stop()


@pytest.mark.slow
def test_rejected_bulk_items_and_errors_are_retried(fake_opensearch, tmp_path):
    fake_opensearch.fail_bulk(2, status=503)
    fake_opensearch.reject_bulk_items(1, status=429)
    shipper, metrics = make_shipper(fake_opensearch.url, tmp_path)
    for day, doc in docs(300):
        shipper.add(day, doc)
    wait_for(lambda: sample(metrics, "vamp_agent_log_lines_shipped_total") == 300, 15,
             what="all shipped after retries")
    assert len(fake_opensearch.documents("vamp-logs-ns-*")) == 300
    assert sample(metrics, "vamp_agent_ship_failures_total") >= 3
    assert sample(metrics, "vamp_agent_log_lines_dropped_total") == 0
    shipper.stop()


def test_stop_puts_unsent_lines_in_the_spool(tmp_path):
    shipper, metrics = make_shipper("http://127.0.0.1:9", tmp_path, batch_lines=10_000)
    shipper.interval = 3600
    for day, doc in docs(40):
        shipper.add(day, doc)
    shipper.stop()
    assert Spool(tmp_path / "spool", 10_000_000).lines == 40
