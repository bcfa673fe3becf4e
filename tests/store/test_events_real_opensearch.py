"""The event store contract against a real OpenSearch cluster, when VAMP_OPENSEARCH_URL names one.

None can be installed on these machines, so this is skipped here; point it at any cluster
(`VAMP_OPENSEARCH_URL=http://localhost:9200 pytest tests/store/test_events_real_opensearch.py`).
Each test uses a namespace of its own and deletes its indices afterwards.
"""
from __future__ import annotations

import os
from datetime import datetime

import pytest

from chalicelib.errors import ValidationFailed
from chalicelib.store.event_store import EventQuery, new_event
from chalicelib.store.opensearch_events import OpenSearchEventStore, _client_for, index_pattern
from tests.store.test_events_contract import EventStoreContract, at

URL = os.environ.get("VAMP_OPENSEARCH_URL")

pytestmark = pytest.mark.skipif(not URL, reason="VAMP_OPENSEARCH_URL is not set: no real OpenSearch cluster to test against")


class TestRealOpenSearch(EventStoreContract):
    @pytest.fixture()
    def store(self, ns):
        # wait_for: a real cluster shows writes only after a refresh; the contract reads at once
        yield OpenSearchEventStore(url=URL, refresh="wait_for")
        client = _client_for(URL)
        lenient = {"ignore_unavailable": "true", "allow_no_indices": "true"}
        for name in (ns, f"{ns}x", f"{ns}-b", ns.upper()):
            # by name: clusters may refuse wildcard deletes (action.destructive_requires_name)
            for index in client.indices.get(index=index_pattern(name), params=lenient):
                client.indices.delete(index=index)

    # What docs/decisions/0028 says a real cluster does; the fake (tests/fakes/opensearch_server.py) is held to it.

    def test_bounds_beyond_what_date_nanos_holds_are_answered(self, store, ns):
        (event,) = self.publish(store, ns, (["a"], 1, 1))
        wide = EventQuery(tags=["a"], gte=datetime(1900, 1, 1), lte=datetime(9999, 1, 1))
        assert [e["id"] for e in store.query(ns, wide).items] == [event["id"]]
        assert store.query(ns, EventQuery(tags=["a"], lt=datetime(1900, 1, 1))).total == 0

    def test_the_total_fields_limit_is_a_400_naming_the_event_and_nothing_stays(self, store, ns):
        events = [new_event(["a"], 1, timestamp=at(1)), new_event(["a"], {f"k{i}": i for i in range(1200)}, timestamp=at(2))]
        with pytest.raises(ValidationFailed) as e:
            store.publish(ns, events)
        assert e.value.errors[0].path == "events[1].value" and "Limit of total fields" in e.value.errors[0].reason
        assert store.query(ns, EventQuery()).total == 0


def test_the_shipper_installs_its_template_and_ships_to_a_real_cluster(tmp_path):
    """The `vamp-logs` template stays on the cluster (it is the one the agents install anyway);
    the test's indices are deleted."""
    import uuid

    from agent.logs.parser import parse
    from agent.logs.shipper import BulkClient, Shipper
    from agent.logs.spool import Spool
    from agent.metrics import AgentMetrics
    from tests.agent.helpers import line, wait_for

    namespace = f"rt-{uuid.uuid4().hex[:8]}"
    lenient = {"ignore_unavailable": "true", "allow_no_indices": "true"}
    client = _client_for(URL)
    shipper = Shipper(BulkClient(URL), Spool(tmp_path, 10_000_000), AgentMetrics(), namespace, interval=0.1)
    shipper.start()
    try:
        for i in range(20):
            r = parse(line(request=f"GET /{i} HTTP/1.1"))
            shipper.add(r.day, r.doc)
        pattern = f"vamp-logs-{namespace}-*"

        def count() -> int:  # searches see documents after a refresh (the template's is 5s)
            client.indices.refresh(index=pattern, params=lenient)
            return client.count(index=pattern, params=lenient)["count"]

        wait_for(lambda: count() == 20, 30, what="20 documents")
        ((index, described),) = client.indices.get(index=pattern).items()
        mapping = described["mappings"]["properties"]
        assert mapping["@timestamp"]["type"] == "date_nanos" and mapping["status"]["type"] == "short"
    finally:
        shipper.stop()
        for index in client.indices.get(index=f"vamp-logs-{namespace}-*", params=lenient):
            client.indices.delete(index=index)
