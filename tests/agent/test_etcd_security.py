"""etcd with authentication and with TLS, the real binary, from both sides (the publisher and the
agent's watcher, through chalicelib/contract/etcd_access.py). From the attacker's side: a client
without credentials (or with a certificate of another CA) is refused and writes nothing; the
agents' read-only user cannot write; the configured clients work, and an expired token is
renewed."""
from __future__ import annotations

import base64
import uuid

import pytest
import requests
from etcd3gw.exceptions import Etcd3Exception

from chalicelib.contract import kv_keys
from chalicelib.contract.envelope import checksum
from chalicelib.contract.etcd_access import EtcdAccess
from chalicelib.gateways import publisher
from chalicelib.kv import etcd as kv_etcd
from tests.agent.helpers import Certificates, EtcdServer, free_port, get, haproxy_config, sample, wait_for

pytestmark = pytest.mark.slow
ROOT_PASSWORD, PUBLISHER_PASSWORD, AGENT_PASSWORD = (f"{who}-{uuid.uuid4().hex}" for who in ("root", "pub", "agent"))


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def enable_auth(etcd: EtcdServer) -> None:
    """root (to turn auth on), a `publisher` that may write /vamp/, an `agent` that may only read it."""
    def call(path: str, body: dict) -> None:
        r = requests.post(f"{etcd.url}/v3/auth/{path}", json=body, timeout=5, **etcd.requests_options())
        assert r.status_code == 200 and "error" not in r.json(), (path, r.text)

    call("user/add", {"name": "root", "password": ROOT_PASSWORD})
    call("role/add", {"name": "root"})
    call("user/grant", {"user": "root", "role": "root"})
    prefix = {"key": _b64("/vamp/"), "range_end": _b64("/vamp0")}
    for user, password, perm in (("publisher", PUBLISHER_PASSWORD, "READWRITE"), ("agent", AGENT_PASSWORD, "READ")):
        call("role/add", {"name": user})
        call("role/grant", {"name": user, "perm": {"permType": perm, **prefix}})
        call("user/add", {"name": user, "password": password})
        call("user/grant", {"user": user, "role": user})
    call("enable", {})


def control_plane(monkeypatch, etcd: EtcdServer, **settings: str):
    """The publisher's etcd client as the control plane builds it from VAMP_ETCD_* settings."""
    from chalicelib.settings import settings as current

    monkeypatch.setenv("VAMP_ETCD_ENDPOINT", (f"https://{etcd.endpoint}" if etcd.tls else etcd.endpoint))
    for name, value in settings.items():
        monkeypatch.setenv(f"VAMP_ETCD_{name.upper()}", value)
    current.cache_clear()
    kv_etcd._client.cache_clear()
    return kv_etcd.at(current().etcd_endpoint)


@pytest.fixture()
def clean_settings():
    from chalicelib.settings import settings as current

    yield
    current.cache_clear()
    kv_etcd._client.cache_clear()


def _publish(etcd_client, namespace: str, generation: int, text: str):
    return publisher.publish(etcd_client, namespace, "2.6", generation, text, checksum(text))


def test_etcd_with_auth_refuses_anonymous_clients_and_serves_the_configured_users(
        tmp_path, monkeypatch, start_agent, backends, namespace, clean_settings):
    a, _ = backends
    etcd = EtcdServer(tmp_path / "etcd", args=("--auth-token-ttl", "2")).start()
    try:
        enable_auth(etcd)
        port = free_port()
        text = haproxy_config(port, [("a", a.port, 100)])

        # Anonymous: refused, nothing written (read back as root).
        with pytest.raises(Etcd3Exception) as anonymous_put:
            _publish(kv_etcd.EtcdConfigurations(etcd.client()), namespace, 1, text)
        assert "user name is empty" in anonymous_put.value.detail_text
        root = EtcdAccess(etcd.endpoint, username="root", password=ROOT_PASSWORD)
        session = requests.Session()
        session.auth = root.auth(session)
        held = session.post(f"{etcd.url}/v3/kv/range", json={"key": _b64(kv_keys.config_key(namespace, "2.6"))},
                            timeout=5).json()
        assert "kvs" not in held
        # A wrong password: refused at authentication.
        wrong = control_plane(monkeypatch, etcd, username="publisher", password="guess")
        with pytest.raises(PermissionError, match="etcd refused user 'publisher'"):
            _publish(wrong, namespace, 1, text)

        # An agent without credentials never gets a configuration (and says etcd is away).
        anonymous = start_agent(namespace=namespace, etcd_endpoint=etcd.endpoint)
        # The agent's user, whose password comes from a file.
        password_file = tmp_path / "agent-password"
        password_file.write_text(AGENT_PASSWORD + "\n")
        agent = start_agent(namespace=namespace, etcd_endpoint=etcd.endpoint, etcd_username="agent",
                            etcd_password_file=password_file)
        wait_for(lambda: agent.agent.watcher.state.connected, 15, what="the agent's watch")

        pw_file = tmp_path / "publisher-password"
        pw_file.write_text(PUBLISHER_PASSWORD)
        etcd_client = control_plane(monkeypatch, etcd, username="publisher", password_file=str(pw_file))
        assert _publish(etcd_client, namespace, 1, text).status == "published"
        agent.wait_reloads(1)
        assert get(port) == "A"
        assert not anonymous.agent.watcher.state.connected and not anonymous.agent.applier.state.applied
        assert sample(anonymous.agent.metrics, "vamp_agent_reloads_total") == 0

        # The agents' user may read, never write.
        reader = EtcdAccess(etcd.endpoint, username="agent", password=AGENT_PASSWORD)
        session = requests.Session()
        session.auth = reader.auth(session)
        r = session.post(f"{etcd.url}/v3/kv/put", json={"key": _b64(kv_keys.config_key(namespace, "2.6")),
                                                        "value": _b64("global\n")}, timeout=5)
        assert r.status_code == 403 and "permission denied" in r.text

        # Tokens expire (--auth-token-ttl 2, renewed by each use: asked less often than that): the
        # client authenticates again and goes on.
        auth = etcd_client.client.session.auth
        first = auth.token()
        wait_for(lambda: requests.post(f"{etcd.url}/v3/kv/range", json={"key": _b64("/vamp/")}, timeout=5,
                                       headers={"Authorization": first}).status_code == 401, 30, interval=3,
                 what="the token to expire")
        assert _publish(etcd_client, namespace, 2, text).status == "unchanged"
        assert auth.token() != first and auth.authentications >= 2
    finally:
        etcd.stop()


def test_etcd_over_tls_refuses_clients_without_a_certificate_of_its_ca(
        tmp_path, monkeypatch, start_agent, backends, namespace, clean_settings):
    a, _ = backends
    certs = Certificates(tmp_path / "pki")
    etcd = EtcdServer(tmp_path / "etcd", tls=certs).start()
    try:
        port = free_port()
        text = haproxy_config(port, [("a", a.port, 100)])
        key = {"key": _b64(kv_keys.config_key(namespace, "2.6")), "value": _b64("global\n")}
        refused = [
            dict(url=f"http://{etcd.endpoint}"),  # plain HTTP to a TLS port
            dict(verify=str(certs.ca_cert)),  # TLS, no client certificate
            dict(verify=str(certs.ca_cert), cert=(str(certs.stranger_cert), str(certs.stranger_key))),  # other CA
            dict(verify=True, cert=(str(certs.client_cert), str(certs.client_key))),  # etcd's cert unverified
        ]
        for options in refused:
            url = options.pop("url", etcd.url)
            with pytest.raises(requests.RequestException):
                requests.post(f"{url}/v3/kv/put", json=key, timeout=5, **options)
        # Nothing was written: read with a good certificate.
        assert "kvs" not in requests.post(f"{etcd.url}/v3/kv/range", json={"key": key["key"]}, timeout=5,
                                          **etcd.requests_options()).json()
        # An agent without the client certificate never connects.
        no_cert = start_agent(namespace=namespace, etcd_endpoint=f"https://{etcd.endpoint}",
                              etcd_ca_file=certs.ca_cert)

        agent = start_agent(namespace=namespace, etcd_endpoint=etcd.endpoint, etcd_ca_file=certs.ca_cert,
                            etcd_cert_file=certs.client_cert, etcd_key_file=certs.client_key)
        wait_for(lambda: agent.agent.watcher.state.connected, 15, what="the agent's watch over TLS")
        etcd_client = control_plane(monkeypatch, etcd, ca_file=str(certs.ca_cert), cert_file=str(certs.client_cert),
                                    key_file=str(certs.client_key))
        assert etcd_client.client.protocol == "https"
        assert _publish(etcd_client, namespace, 1, text).status == "published"
        agent.wait_reloads(1)
        assert get(port) == "A"
        assert not no_cert.agent.watcher.state.connected and not no_cert.agent.applier.state.applied
    finally:
        etcd.stop()


def test_access_settings_refuse_half_a_certificate_and_a_user_without_password():
    with pytest.raises(ValueError, match="both"):
        EtcdAccess("127.0.0.1:2379", cert_file="c.pem")
    with pytest.raises(ValueError, match="no password"):
        EtcdAccess("127.0.0.1:2379", username="agent")
    with pytest.raises(ValueError, match="host:port"):
        EtcdAccess("etcd.example")
    assert EtcdAccess("https://etcd:2379").address == ("https", "etcd", 2379)
    assert EtcdAccess("etcd:2379", ca_file="ca.pem").base_url == "https://etcd:2379"
    assert "s3cret" not in repr(EtcdAccess("etcd:2379", username="u", password="s3cret"))
