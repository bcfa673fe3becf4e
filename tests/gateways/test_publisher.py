"""Publishing to a real etcd: newest generation wins, unchanged text is not rewritten; the same
through the publisher function (kv/aws_lambda.py, docs/decisions/0036) as directly."""
from __future__ import annotations

import random
import threading

import pytest

from chalicelib.contract import kv_keys
from chalicelib.contract.envelope import checksum
from chalicelib.gateways import publisher
from chalicelib.kv import etcd as kv_etcd
from chalicelib.kv.aws_lambda import LambdaConfigurations


@pytest.fixture(params=["etcd", "relay"])
def kv(request, live_etcd):
    """A maker of the store's client: etcd's own, or the publisher function's."""
    if request.param == "etcd":
        return lambda: kv_etcd.EtcdConfigurations(live_etcd.client())
    function = request.getfixturevalue("relay")
    return lambda: LambdaConfigurations(function)


def _publish(store, ns, generation, text):
    return publisher.publish(store, ns, "2.6", generation, text, checksum(text))


def _mod_revision(etcd, key):
    return etcd.get(key, metadata=True)[0][1]["mod_revision"]


def test_a_stale_generation_never_overwrites_a_newer_one(kv, live_etcd, namespace):
    store, etcd = kv(), live_etcd.client()
    assert _publish(store, namespace, 2, "two\n").status == "published"
    assert _publish(store, namespace, 1, "one\n").status == "superseded"
    assert _publish(store, namespace, 2, "two again\n").status == "superseded"
    assert publisher.current(store, namespace, "2.6") == ("two\n", 2)
    assert etcd.get(kv_keys.generation_key(namespace, "2.6"))[0] == b"00000000000000000002"
    assert _publish(store, namespace, 10, "ten\n").status == "published"  # 10 > 2 also as text
    assert publisher.current(store, namespace, "2.6") == ("ten\n", 10)


def test_unchanged_text_is_not_rewritten_but_its_generation_moves_on(kv, live_etcd, namespace):
    store, etcd = kv(), live_etcd.client()
    key = kv_keys.config_key(namespace, "2.6")
    assert _publish(store, namespace, 1, "same\n").status == "published"
    before = _mod_revision(etcd, key)
    assert _publish(store, namespace, 2, "same\n").status == "unchanged"
    assert _mod_revision(etcd, key) == before  # agents are not woken
    # ... and a late publisher of generation 1 with other text cannot sneak in under it
    assert _publish(store, namespace, 1, "older\n").status == "superseded"
    assert publisher.current(store, namespace, "2.6") == ("same\n", 2)


def test_racing_publishers_leave_the_newest(kv, namespace):
    generations = list(range(1, 41))
    random.Random(3).shuffle(generations)
    barrier = threading.Barrier(8)
    errors = []

    def worker(chunk):
        store = kv()  # one client (session) per thread, as one per Lambda
        barrier.wait()
        for g in chunk:
            try:
                _publish(store, namespace, g, f"generation {g}\n")
            except Exception as e:  # noqa: BLE001
                errors.append(e)

    threads = [threading.Thread(target=worker, args=(generations[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert publisher.current(kv(), namespace, "2.6") == ("generation 40\n", 40)
