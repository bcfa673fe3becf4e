"""The control plane's side of signed configurations (docs/decisions/0023): where its key comes
from (a file, the value, Secrets Manager or SSM on moto), nothing published without one, every
publication signed for its namespace and generation, and a rotated key signs everything again."""
from __future__ import annotations

import pytest

from chalicelib import aws as aws_clients
from chalicelib.contract import envelope, kv_keys
from chalicelib.gateways import publisher
from chalicelib.kv import etcd as kv_etcd
from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore

KEY_1, KEY_2 = "first-key-" + "1" * 40, "second-key-" + "2" * 40


@pytest.fixture()
def key_settings(monkeypatch):
    from chalicelib.settings import settings

    def use(**values: str) -> None:
        for name in ("FILE", "", "SECRET"):
            monkeypatch.delenv("VAMP_GATEWAY_SIGNING_KEY" + (f"_{name}" if name else ""), raising=False)
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        settings.cache_clear()
        publisher._secrets.clear()

    yield use
    settings.cache_clear()
    publisher._secrets.clear()


def test_the_key_comes_from_a_file_the_value_or_an_aws_secret(key_settings, aws, tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text(f"# current first\n{KEY_1}\n{KEY_2}\n")
    key_settings(VAMP_GATEWAY_SIGNING_KEY_FILE=str(key_file), VAMP_GATEWAY_SIGNING_KEY=KEY_2)
    assert publisher.signing_key() == KEY_1  # the file wins, its first line signs
    key_settings(VAMP_GATEWAY_SIGNING_KEY=KEY_2)
    assert publisher.signing_key() == KEY_2

    aws_clients.reset_clients()
    secret = aws_clients.client("secretsmanager").create_secret(Name="vamp/gateway-signing-key", SecretString=KEY_1)["ARN"]
    key_settings(VAMP_GATEWAY_SIGNING_KEY_SECRET=secret)
    assert publisher.signing_key() == KEY_1
    aws_clients.client("ssm").put_parameter(Name="/vamp/gateway-signing-key", Value=KEY_2, Type="SecureString")
    key_settings(VAMP_GATEWAY_SIGNING_KEY_SECRET="ssm:/vamp/gateway-signing-key")
    assert publisher.signing_key() == KEY_2


def test_without_a_usable_key_nothing_is_published(key_settings, publishing, api, namespace, live_etcd, tmp_path):
    body = {"name": "unsigned", "routes": {"[127.0.0.1:8080]": {"weight": "100%"}}}
    for settings in ({}, {"VAMP_GATEWAY_SIGNING_KEY": "short"},
                     {"VAMP_GATEWAY_SIGNING_KEY_FILE": str(tmp_path / "missing")},
                     {"VAMP_GATEWAY_SIGNING_KEY_SECRET": "ssm:/no/such/parameter"}):
        key_settings(**settings)
        with pytest.raises(publisher.SigningKeyMissing) as missing:
            publisher.signing_key()
        assert "signing key" in str(missing.value)
    key_settings()
    assert api.post(f"/{namespace}/api/v1/gateways", body).status_code == 202  # stored ...
    etcd = kv_etcd.EtcdConfigurations(live_etcd.client())
    assert publisher.current(etcd, namespace, "2.6") is None  # ... never published unsigned
    events = api.get(f"/{namespace}/api/v1/events?tag=gateways:unsigned&tag=publish-failed").json
    assert events and "VAMP_GATEWAY_SIGNING_KEY" in events[0]["value"]["error"]


def test_a_publication_is_signed_for_its_namespace_and_generation_and_a_rotation_signs_again(
        key_settings, publishing, api, namespace, live_etcd):
    key_settings(VAMP_GATEWAY_SIGNING_KEY=KEY_1)
    body = {"name": "signed", "routes": {"[127.0.0.1:8080]": {"weight": "100%"}}}
    assert api.post(f"/{namespace}/api/v1/gateways", body).status_code == 202
    etcd = kv_etcd.EtcdConfigurations(live_etcd.client())

    def stored() -> tuple[bytes, int, bytes]:
        text, generation = publisher.current(etcd, namespace, "2.6")
        return text.encode(), generation, etcd.client.get(kv_keys.signature_key(namespace, "2.6"))[0]

    text, generation, signature = stored()
    assert envelope.verify((KEY_1,), namespace, "2.6", generation, text, signature) == envelope.key_id(KEY_1)
    store = DynamoDBArtifactStore()
    assert publisher.republish_if_behind(store, namespace, publisher.no_targets) == "current"

    key_settings(VAMP_GATEWAY_SIGNING_KEY=KEY_2)  # rotated: the scheduled pass signs again, in place
    assert publisher.republish_if_behind(store, namespace, publisher.no_targets) == "unchanged"
    again, same_generation, resigned = stored()
    assert (again, same_generation) == (text, generation)
    assert envelope.verify((KEY_2,), namespace, "2.6", generation, text, resigned) == envelope.key_id(KEY_2)
    assert publisher.republish_if_behind(store, namespace, publisher.no_targets) == "current"
