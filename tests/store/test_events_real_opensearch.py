"""The event store contract against a real OpenSearch cluster, when VAMP_OPENSEARCH_URL names one.

None can be installed on these machines, so this is skipped here; point it at any cluster
(`VAMP_OPENSEARCH_URL=http://localhost:9200 pytest tests/store/test_events_real_opensearch.py`).
Each test uses a namespace of its own and deletes its indices afterwards.
"""
from __future__ import annotations

import os

import pytest

from chalicelib.store.opensearch_events import OpenSearchEventStore, _client_for, index_pattern
from tests.store.test_events_contract import EventStoreContract

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
