"""The local stack in the AWS shape (docs/decisions/0036): a gateway PUT over HTTP is published
through the publisher function on moto's Lambda (delivered to app.py's gateway_publish in the
stack's process), reaches etcd and the agent's HAProxy; the control plane's own etcd client is
never used."""
from __future__ import annotations

import pytest
import requests

from chalicelib.contract.envelope import checksum
from chalicelib.kv import etcd as kv_etcd
from local import stepfunctions
from local.stack import PUBLISHER_FUNCTION
from tests.agent.helpers import Backend, free_port, wait_for
from tests.gateways.helpers import request

pytestmark = pytest.mark.slow


def test_the_local_stack_publishes_through_the_publisher_function(tmp_path, monkeypatch):
    from chalicelib.gateways import publisher
    from local.demo_release import isolated_stack

    direct: list[str] = []
    monkeypatch.setattr(kv_etcd.EtcdConfigurations, "publish", _recording(kv_etcd.EtcdConfigurations.publish, direct))
    backend = Backend("A")
    try:
        with isolated_stack(tmp_path) as stack:
            import os

            assert os.environ["VAMP_GATEWAY_PUBLISHER_FUNCTION"] == PUBLISHER_FUNCTION
            before = stepfunctions.invocations["gateway_publish"]
            port = free_port()
            body = {"name": "shop", "port": f"{port}/http", "routes": {f"[127.0.0.1:{backend.port}]": {"weight": "100%"}}}
            r = requests.put(f"{stack.api_url}/api/v1/gateways/shop", json=body,
                             headers={"Authorization": f"Bearer {stack.token}"}, timeout=30)
            assert r.status_code == 202, r.text
            assert stepfunctions.invocations["gateway_publish"] > before
            text, generation = publisher.current(kv_etcd.at(stack.etcd_endpoint), "default", "2.6")
            assert "gw.shop" in text and generation >= 1
            wait_for(lambda: requests.get(f"{stack.agent.url}/healthz", timeout=5).json().get("config_checksum")
                     == checksum(text), 30, what="the agent serving it")
            assert request(port)[1] == "A"
            # every write went through the function's handler (the only caller of etcd's publish)
            assert direct and all(who == "gateway_publish" for who in direct)
    finally:
        backend.stop()


def _recording(publish, calls: list[str]):
    import traceback

    def recorded(self, signed):
        stack = "".join(traceback.format_stack())
        calls.append("gateway_publish" if "aws_lambda.py" in stack and "in serve" in stack else "direct")
        return publish(self, signed)

    return recorded
