"""A gateway written while etcd is away is published by the scheduled pass, not only by the
next write; the pass does nothing (no render) when etcd is current."""
from __future__ import annotations

from chalicelib.gateways import publisher
from chalicelib.kv import etcd as kv_etcd
from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore


def test_scheduled_pass_republishes_what_etcd_missed(publishing, api, namespace, monkeypatch):
    from chalicelib.settings import settings

    monkeypatch.setenv("VAMP_ETCD_ENDPOINT", "127.0.0.1:1")  # etcd away during the write
    settings.cache_clear()
    body = {"name": "missed", "routes": {"[127.0.0.1:8080]": {"weight": "100%"}}}
    assert api.post(f"/{namespace}/api/v1/gateways", body).status_code == 202  # stored, not published

    monkeypatch.setenv("VAMP_ETCD_ENDPOINT", publishing["VAMP_ETCD_ENDPOINT"])  # etcd is back
    settings.cache_clear()
    etcd = kv_etcd.at(publishing["VAMP_ETCD_ENDPOINT"])
    assert publisher.current(etcd, namespace, "2.6") is None
    store = DynamoDBArtifactStore()
    assert publisher.republish_all(store, publisher.no_targets) == {namespace: "published"}
    text, generation = publisher.current(etcd, namespace, "2.6")
    assert "gw.missed" in text and generation >= 1

    rendered = []
    monkeypatch.setattr(publisher, "publish_namespace", lambda *a, **k: rendered.append(a))
    assert publisher.republish_all(store, publisher.no_targets) == {namespace: "current"} and rendered == []
