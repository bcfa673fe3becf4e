"""The log shipper when OpenSearch refuses: whole requests too large or malformed (split, then
dead-lettered), items failing for now or for good, batches bounded by bytes, the index template
installed first, namespaces that cannot name an index, SigV4 for an IAM-protected domain, and
the dead-letter file (docs/decisions/0028-opensearch-failures-and-dead-letters.md)."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from agent.backoff import Backoff
from agent.logs import shipper as shipper_module
from agent.logs.dead_letters import DeadLetters
from agent.logs.indices import LOGS_TEMPLATE
from agent.logs.parser import parse
from agent.logs.shipper import BulkClient, Shipper, sigv4_auth
from agent.logs.spool import Spool
from agent.metrics import AgentMetrics
from agent.settings import AgentSettings, SettingsError
from tests.agent.helpers import SIGNING_KEY, line, sample, wait_for
from tests.fakes import FakeOpenSearch

ROOT = Path(__file__).resolve().parents[2]


def docs(n: int, start: int = 0) -> list[tuple[str, bytes]]:
    out = []
    for i in range(start, start + n):
        r = parse(line(tt=i % 100, request=f"GET /{i} HTTP/1.1"))
        out.append((r.day, r.doc))
    return out


def dead(metrics: AgentMetrics, reason: str) -> float:
    return metrics.registry.get_sample_value("vamp_agent_log_lines_dead_lettered_total", {"reason": reason})


def dead_letters(tmp_path: Path) -> list[dict]:
    path = tmp_path / "spool" / "dead-letters.ndjson"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def start(url: str, tmp_path: Path, client: BulkClient | None = None, **kw) -> tuple[Shipper, AgentMetrics]:  # type: ignore[no-untyped-def]
    metrics = AgentMetrics()
    spool = Spool(tmp_path / "spool", 10_000_000, on_drop=metrics.lines_dropped.inc)
    shipper = Shipper(client or BulkClient(url, timeout=2), spool, metrics, "ns", interval=0.05, backoff_max=0.2,
                      **{"batch_lines": 100, **kw})
    shipper.start()
    return shipper, metrics


def bulk_bodies(fake: FakeOpenSearch) -> list[str]:
    return [r["body"] for r in fake.requests if r["path"].endswith("_bulk")]


def shipped(fake: FakeOpenSearch) -> set[str]:
    return {d["request"] for d in fake.documents("vamp-logs-ns-*")}


def requests_of(batch: list[tuple[str, bytes]]) -> set[str]:
    return {json.loads(doc)["request"] for _, doc in batch}


# --- 4. whole-request 4xx, bytes ---------------------------------------------------------------


def test_a_request_over_the_servers_body_limit_is_split_until_every_line_ships(tmp_path):
    with FakeOpenSearch(max_content_length=16 * 1024) as fake:
        shipper, metrics = start(fake.url, tmp_path, batch_lines=1000, batch_bytes=10 * 1024 * 1024)
        batch = docs(200)  # ~80 KB in one request: 413, then halves, quarters...
        for day, doc in batch:
            shipper.add(day, doc)
        wait_for(lambda: shipped(fake) == requests_of(batch), 15, what="every line shipped")
        assert sample(metrics, "vamp_agent_log_lines_dropped_total") == 0 and dead_letters(tmp_path) == []
        assert any(len(b.encode()) > 16 * 1024 for b in bulk_bodies(fake))  # the first one was refused
        shipper.stop()


def test_a_line_too_large_on_its_own_is_dead_lettered_and_the_others_ship(tmp_path):
    with FakeOpenSearch(max_content_length=8 * 1024) as fake:
        shipper, metrics = start(fake.url, tmp_path)
        batch = docs(20)
        huge = batch[5][1][:-1] + b',"pad":"' + b"x" * 9000 + b'"}'
        for day, doc in batch[:5] + [(batch[5][0], huge)] + batch[6:]:
            shipper.add(day, doc)
        wait_for(lambda: dead(metrics, "too_large") == 1, 15, what="the huge line dead-lettered")
        wait_for(lambda: shipped(fake) == requests_of(batch[:5] + batch[6:]), 15, what="the others shipped")
        (letter,) = dead_letters(tmp_path)
        assert letter["reason"] == "too_large" and letter["status"] == 413 and letter["index"] == "vamp-logs-ns-2023.11.14"
        assert json.loads(letter["document"])["pad"] == "x" * 9000
        shipper.stop()


def test_a_whole_request_400_is_split_and_each_line_shipped(fake_opensearch, tmp_path):
    fake_opensearch.fail("POST", "/_bulk", status=400, nth=1)
    shipper, metrics = start(fake_opensearch.url, tmp_path)
    batch = docs(50)
    for day, doc in batch:
        shipper.add(day, doc)
    wait_for(lambda: shipped(fake_opensearch) == requests_of(batch), 15, what="shipped in halves")
    assert dead_letters(tmp_path) == []
    shipper.stop()


def test_a_400_on_every_request_dead_letters_the_lines_instead_of_retrying_forever(fake_opensearch, tmp_path):
    fake_opensearch.fail("POST", "/_bulk", status=400)
    shipper, metrics = start(fake_opensearch.url, tmp_path)
    for day, doc in docs(20):
        shipper.add(day, doc)
    wait_for(lambda: dead(metrics, "bad_request") == 20, 15, what="every line dead-lettered")
    assert len(bulk_bodies(fake_opensearch)) <= 2 * 20 and not shipper.spool  # halving: at most 2n - 1 requests
    shipper.stop()


def test_a_spool_line_that_breaks_the_request_is_dead_lettered_alone(fake_opensearch, tmp_path):
    metrics = AgentMetrics()
    spool = Spool(tmp_path / "spool", 10_000_000)
    good = [b"vamp-logs-ns-2023.11.14\t%s\n" % doc for _, doc in docs(30)]
    spool.append(good[:10] + [b'vamp-logs-ns-"x\t{"a":1}\n', b"no tab at all\n"] + good[10:])
    shipper = Shipper(BulkClient(fake_opensearch.url, timeout=2), spool, metrics, "ns", interval=0.05, backoff_max=0.2)
    shipper.start()
    wait_for(lambda: len(fake_opensearch.documents("vamp-logs-ns-*")) == 30, 15, what="the 30 good lines")
    assert dead(metrics, "bad_request") == 1 and dead(metrics, "malformed") == 1
    assert {d["reason"] for d in dead_letters(tmp_path)} == {"bad_request", "malformed"}
    shipper.stop()


def test_requests_are_bounded_by_bytes_as_well_as_lines(fake_opensearch, tmp_path):
    shipper, metrics = start(fake_opensearch.url, tmp_path, batch_lines=10_000, batch_bytes=20_000)
    batch = docs(400)
    for day, doc in batch:
        shipper.add(day, doc)
    wait_for(lambda: shipped(fake_opensearch) == requests_of(batch), 15, what="all shipped")
    sizes = [len(b.encode()) for b in bulk_bodies(fake_opensearch)]
    assert len(sizes) > 5 and max(sizes) <= 20_000
    shipper.stop()


def test_the_agent_bounds_requests_by_bytes_by_default_below_opensearchs_limit():
    settings = AgentSettings()
    assert 0 < settings.ship_batch_bytes <= 100 * 1024 * 1024 // 4


# --- 5. items that fail -----------------------------------------------------------------------


def test_an_item_that_always_fails_with_500_is_dead_lettered_and_does_not_stall_the_rest(fake_opensearch, tmp_path):
    fake_opensearch.fail_documents(lambda d: d.get("request") == "GET /7 HTTP/1.1", status=500)
    shipper, metrics = start(fake_opensearch.url, tmp_path, item_attempts=3)
    first, later = docs(40), docs(40, 40)
    for day, doc in first:
        shipper.add(day, doc)
    wait_for(lambda: dead(metrics, "retries_exhausted") == 1, 15, what="the failing line given up")
    for day, doc in later:
        shipper.add(day, doc)
    everything = requests_of(first + later) - {"GET /7 HTTP/1.1"}
    wait_for(lambda: shipped(fake_opensearch) == everything, 15, what="79 of 80 shipped")
    assert sum('"GET /7 HTTP/1.1"' in b for b in bulk_bodies(fake_opensearch)) == 3  # its attempts, no more
    (letter,) = dead_letters(tmp_path)
    assert letter["status"] == 500 and json.loads(letter["document"])["request"] == "GET /7 HTTP/1.1"
    assert not shipper.spool
    shipper.stop()


def test_partial_429s_are_sent_again_after_a_jittered_pause_and_never_given_up(fake_opensearch, tmp_path, monkeypatch):
    timeline: list[tuple[str, float]] = []

    class Recorded(Backoff):
        def pause(self) -> float:
            value = super().pause()
            timeline.append(("pause", value))
            return value

    monkeypatch.setattr(shipper_module, "Backoff", Recorded)
    client = BulkClient(fake_opensearch.url, timeout=2)
    real_bulk = client.bulk
    client.bulk = lambda body: (timeline.append(("bulk", body.count(b"\n") / 2)), real_bulk(body))[1]  # type: ignore[method-assign]
    statuses = [429] * 5 + [None] * 95
    fake_opensearch.bulk_item_statuses(statuses, [429] * 5, [429] * 5, [429] * 5)  # more tries than item_attempts
    shipper, metrics = start(fake_opensearch.url, tmp_path, client=client, item_attempts=2)
    batch = docs(100)
    for day, doc in batch:
        shipper.add(day, doc)
    wait_for(lambda: shipped(fake_opensearch) == requests_of(batch), 15, what="all 100 shipped")
    bulks = [i for i, (kind, _) in enumerate(timeline) if kind == "bulk"]
    assert timeline[bulks[0] + 1][0] == "pause" and timeline[bulks[0] + 1][1] > 0  # not re-sent at once
    assert all(any(kind == "pause" for kind, _ in timeline[a + 1:b]) for a, b in zip(bulks, bulks[1:4]))
    assert shipper_module.OPENSEARCH.jitter
    assert dead_letters(tmp_path) == [] and sample(metrics, "vamp_agent_log_lines_dropped_total") == 0
    shipper.stop()


def test_an_item_refused_for_good_is_dead_lettered_at_once_with_a_log_line_saying_why(fake_opensearch, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="agent.shipper")
    shipper, metrics = start(fake_opensearch.url, tmp_path)
    (day, doc), *rest = docs(10)
    bad = doc.replace(b'"status":200', b'"status":70000')  # the template maps status as a short
    assert bad != doc
    for d, x in [(day, bad), *rest]:
        shipper.add(d, x)
    wait_for(lambda: dead(metrics, "refused") == 1, 15, what="dead-lettered")
    wait_for(lambda: len(shipped(fake_opensearch)) == 9, 15, what="the rest shipped")
    (letter,) = dead_letters(tmp_path)
    assert letter["status"] == 400 and "mapper_parsing_exception" in letter["error"] and "short" in letter["error"]
    assert any("refused 1 log line" in r.getMessage() and "out of range" in r.getMessage() for r in caplog.records)
    assert sample(metrics, "vamp_agent_log_lines_dropped_total") == 1
    shipper.stop()


# --- 6. template, namespace, SigV4, dead letters ----------------------------------------------


def test_the_logs_template_is_the_one_in_infra():
    assert json.loads((ROOT / "infra" / "opensearch" / "vamp-logs.json").read_text()) == LOGS_TEMPLATE


def test_the_template_is_installed_before_the_first_write_retried_until_it_is(fake_opensearch, tmp_path):
    fake_opensearch.fail("HEAD", "/_index_template/vamp-logs", status=503, times=1)
    fake_opensearch.fail("PUT", "/_index_template/vamp-logs", status=429, times=1)
    shipper, metrics = start(fake_opensearch.url, tmp_path)
    for day, doc in docs(10):
        shipper.add(day, doc)
    wait_for(lambda: len(fake_opensearch.documents("vamp-logs-ns-*")) == 10, 15, what="shipped")
    calls = [(r["method"], r["path"]) for r in fake_opensearch.requests]
    first_bulk = calls.index(("POST", "/_bulk"))
    assert calls[:first_bulk].count(("PUT", "/_index_template/vamp-logs")) == 2  # refused once, then put
    assert fake_opensearch.templates["vamp-logs"] == LOGS_TEMPLATE
    mapping = fake_opensearch.mapping("vamp-logs-ns-2023.11.14")["properties"]
    assert mapping["@timestamp"]["type"] == "date_nanos" and mapping["status"]["type"] == "short"
    shipper.stop()
    again, _ = start(fake_opensearch.url, tmp_path / "again")  # installed: looked at, not put again
    wait_for(lambda: again.template_ready, 10, what="template seen")
    assert [(r["method"], r["path"]) for r in fake_opensearch.requests].count(("PUT", "/_index_template/vamp-logs")) == 2
    again.stop()


@pytest.mark.parametrize("namespace", ["Team", "a b", "a/b", 'a"b', "a?b", "a|b", "a#b", "a,b", "a:b", "a*",
                                       "a\\b", "x" * 240])
def test_a_namespace_that_cannot_name_an_index_is_refused_at_start(namespace, tmp_path):
    settings = AgentSettings(namespace=namespace, opensearch_url="http://127.0.0.1:9", signing_key=SIGNING_KEY)
    with pytest.raises(SettingsError, match="cannot name OpenSearch indices"):
        settings.check()
    with pytest.raises(ValueError, match="namespace"):
        Shipper(BulkClient("http://127.0.0.1:9"), Spool(tmp_path, 10_000), AgentMetrics(), namespace)


def test_a_namespace_that_names_indices_is_taken_and_without_opensearch_none_is_checked():
    AgentSettings(namespace="team-a.b_1", opensearch_url="http://127.0.0.1:9", signing_key=SIGNING_KEY).check()
    AgentSettings(namespace="Team", signing_key=SIGNING_KEY).check()  # no logs shipped: no index named


KEYS = ("AKIAFAKEFAKEFAKE0001", "fake-secret-key-for-the-signature-check", "eu-west-1", "es")


def test_an_iam_protected_domain_takes_signed_requests_only(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEYS[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", KEYS[1])
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    with FakeOpenSearch(sigv4=KEYS) as fake:
        unsigned, metrics = start(fake.url, tmp_path / "a")
        for day, doc in docs(5):
            unsigned.add(day, doc)
        wait_for(lambda: unsigned.spool.lines == 5, 10, what="spooled: every request answered 403")
        assert fake.documents() == [] and not unsigned.template_ready
        unsigned.stop()
        signed, metrics = start(fake.url, tmp_path / "b", client=BulkClient(fake.url, auth=sigv4_auth("eu-west-1", "es")))
        for day, doc in docs(5):
            signed.add(day, doc)
        wait_for(lambda: len(fake.documents("vamp-logs-ns-*")) == 5, 10, what="signed requests taken")
        assert "AWS4-HMAC-SHA256" in fake.requests[-1]["headers"]["Authorization"]
        signed.stop()


def test_sigv4_is_a_setting_the_agent_wires(monkeypatch, tmp_path):
    from agent.app import Agent

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEYS[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", KEYS[1])
    plain = AgentSettings(opensearch_url="http://127.0.0.1:9", signing_key=SIGNING_KEY, work_dir=tmp_path / "a", listen="127.0.0.1:0")
    agent = Agent(plain)
    agent.http.server.server_close()  # never started
    assert agent.shipper.client.client.transport.kwargs.get("http_auth") is None
    signed = AgentSettings(opensearch_url="http://127.0.0.1:9", signing_key=SIGNING_KEY, work_dir=tmp_path / "b",
                           listen="127.0.0.1:0", opensearch_sigv4=True, opensearch_region="eu-west-1")
    agent = Agent(signed)
    agent.http.server.server_close()
    auth = agent.shipper.client.client.transport.kwargs["http_auth"]
    assert type(auth).__name__ == "Urllib3AWSV4SignerAuth" and auth.signer.region == "eu-west-1"


def test_dead_letters_are_bounded_and_counted(tmp_path):
    metrics = AgentMetrics()
    letters = DeadLetters(tmp_path, max_bytes=4000, metrics=metrics)
    for i in range(100):
        letters.add("refused", [(b"idx", b'{"n":%d,"pad":"%s"}\n' % (i, b"x" * 100), 400, "mapper_parsing_exception: x")])
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["dead-letters.1.ndjson", "dead-letters.ndjson"]
    assert all((tmp_path / f).stat().st_size <= 4000 for f in files)
    newest = [json.loads(x) for x in (tmp_path / "dead-letters.ndjson").read_text().splitlines()]
    assert json.loads(newest[-1]["document"])["n"] == 99
    assert dead(metrics, "refused") == 100


def test_the_agent_does_not_start_with_such_a_namespace_and_says_why(caplog, tmp_path):
    from agent.__main__ import main

    caplog.set_level(logging.ERROR, logger="agent")
    argv = ["--namespace", "Team A", "--opensearch-url", "http://127.0.0.1:9", "--work-dir", str(tmp_path),
            "--listen", "127.0.0.1:0"]
    assert main(argv) == 2
    assert any("not starting" in r.getMessage() and "must be lowercase" in r.getMessage() for r in caplog.records)


def test_a_write_block_keeps_the_lines_instead_of_dead_lettering_them(fake_opensearch, tmp_path):
    fake_opensearch.bulk_item_statuses(*([[403] * 10] * 5), [None, 403] * 5)  # blocked a while, then half blocked
    shipper, metrics = start(fake_opensearch.url, tmp_path, item_attempts=2)
    batch = docs(10)
    for day, doc in batch:
        shipper.add(day, doc)
    wait_for(lambda: shipped(fake_opensearch) == requests_of(batch), 15, what="shipped once the block is lifted")
    assert dead_letters(tmp_path) == []
    shipper.stop()
