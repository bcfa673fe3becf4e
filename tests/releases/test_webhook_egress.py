"""Finding 6 of issue 10, from the attacker's side: release webhooks as a port scanner and a way
into the control plane's network. A webhook to loopback (etcd), the metadata service or a
private range is refused when the policy or release is stored; at call time the host is resolved
once, checked, and the connection made to that very address (a DNS answer that changes in
between - rebinding - is refused, never followed); the release shows `ok`, `failed` or
`refused by policy: ...`, never what the network said."""
from __future__ import annotations

import datetime
import json
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chalicelib.gateways import egress
from chalicelib.releases import webhooks
from chalicelib.releases.plan import Webhook
from chalicelib.settings import settings

from .conftest import finished, make_gateway, release, run_until

SCANNER_WORDS = ("Connection refused", "refused connection", "Errno", "timed out", "418", "I'm a teapot",
                 "HTTP ", "reset", "unreachable")


@pytest.fixture()
def dns(monkeypatch):
    """The test's own DNS: name -> a list of answers, one per look-up (the last one repeats)."""
    answers: dict[str, list[list[str]]] = {}
    asked: list[str] = []

    def resolve(name: str) -> list[str]:
        asked.append(name)
        if name not in answers:
            raise OSError("NXDOMAIN")
        queue = answers[name]
        return queue.pop(0) if len(queue) > 1 else queue[0]

    monkeypatch.setattr(egress, "resolver", resolve)
    return answers, asked


@pytest.fixture()
def strict(monkeypatch):
    """The default policy: public addresses only (the suite admits loopback, as the local stack)."""
    monkeypatch.setenv("VAMP_EGRESS_ALLOW", "")
    settings.cache_clear()
    yield
    settings.cache_clear()


class Hooks:
    """A webhook receiver on 127.0.0.1: /ok 200, /teapot 418; requests (path, headers) recorded."""

    def __init__(self, tls: ssl.SSLContext | None = None):
        self.received: list[tuple[str, dict]] = []
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hooks.received.append((self.path, dict(self.headers)))
                self.send_response(200 if self.path.startswith("/ok") else 418)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def hooks():
    server = Hooks()
    yield server
    server.stop()


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def hook(url: str, name: str = "gate") -> Webhook:
    return Webhook(name, "before_rollout", url, 2)


def policy_with(url: str, name: str = "gated") -> dict:
    return {"name": name, "steps": ["50%"], "webhooks": [{"name": "gate", "type": "before_rollout", "url": url}]}


# -- when stored ------------------------------------------------------------------------------

@pytest.mark.parametrize("url, refused_as", [
    ("http://127.0.0.1:2379/v3/kv/put", "loopback"),          # etcd
    ("http://127.1:2379/", "loopback"),
    ("http://169.254.169.254/latest/meta-data/iam/", "metadata service"),
    ("http://2852039166/latest/meta-data/", "metadata service"),
    ("http://0251.0376.0251.0376/", "metadata service"),
    ("http://[::ffff:169.254.169.254]/", "metadata service"),
    ("http://[fd00:ec2::254]/", "metadata service"),
    ("http://169.254.170.2/v2/credentials", "metadata service"),
    ("http://10.0.0.8:8500/v1/agent/self", "private"),
    ("https://rebind.example/", "resolves to loopback"),
    ("https://nowhere.example/", "the name does not resolve"),
])
def test_a_policy_with_a_refused_webhook_is_a_400_and_not_stored(api, sfn, strict, dns, url, refused_as):
    dns[0]["rebind.example"] = [["127.0.0.1"]]
    r = api.post("/api/v1/release-policies", policy_with(url))
    assert r.status_code == 400, r.body
    assert r.json["errors"] == [{"path": "webhooks[0].url", "reason": f"refused by policy: {refused_as}"}]
    assert api.get("/api/v1/release-policies/gated").status_code == 404
    assert api.get("/api/v1/events?tag=archive").json == []

    r = api.post("/api/v1/releases", release(webhooks=policy_with(url)["webhooks"]))
    assert r.status_code == 400, r.body
    assert r.json["errors"] == [{"path": "policy.webhooks[0].url", "reason": f"refused by policy: {refused_as}"}]
    assert api.get("/api/v1/releases/r1").status_code == 404


def test_a_stored_policy_is_checked_again_when_a_release_names_it(api, sfn, monkeypatch):
    assert api.post("/api/v1/release-policies", policy_with("http://127.0.0.1:2379/")).status_code == 201
    monkeypatch.setenv("VAMP_EGRESS_ALLOW", "")  # the operator narrowed the allowlist since
    settings.cache_clear()
    try:
        make_gateway(api)
        r = api.post("/api/v1/releases", {**release(), "policy": "gated"})
        assert r.status_code == 400, r.body
        assert r.json["errors"] == [{"path": "policy", "reason":
                                     "release policy 'gated': webhooks[0].url: refused by policy: loopback"}]
        assert api.get("/api/v1/releases/r1").status_code == 404
    finally:
        settings.cache_clear()


# -- when called ------------------------------------------------------------------------------

def test_dns_rebinding_is_refused_at_call_time(strict, dns, hooks):
    answers, asked = dns
    answers["hooks.rebind.example"] = [["93.184.216.34"], ["127.0.0.1"]]  # public when stored, loopback when called
    url = f"http://hooks.rebind.example:{hooks.port}/ok"
    egress.check_url(url)  # what storing the policy does: admitted
    result = webhooks.call(hook(url), {})
    assert result.as_dict() == {"name": "gate", "ok": False, "status": None,
                                "reason": "refused by policy: resolves to loopback"}
    assert hooks.received == []  # nothing reached the loopback service
    assert asked == ["hooks.rebind.example"] * 2  # once when stored, once when called: never twice in a call


def test_the_connection_goes_to_the_address_checked_with_the_name_as_host(dns, hooks):
    answers, asked = dns
    answers["hooks.example.test"] = [["127.0.0.1"], ["169.254.169.254"]]  # a second look-up would answer otherwise
    result = webhooks.call(hook(f"http://ci:s3cr%40t@hooks.example.test:{hooks.port}/ok/gate?run=1"), {"name": "r"})
    assert result.ok and result.reason == "ok" and result.status == 200
    assert asked == ["hooks.example.test"]
    [(path, headers)] = hooks.received
    assert path == "/ok/gate?run=1" and headers["Host"] == f"hooks.example.test:{hooks.port}"
    assert headers["Authorization"] == "Basic Y2k6czNjckB0"  # ci:s3cr@t


def test_what_the_network_said_never_reaches_the_release(hooks, caplog):
    dead = webhooks.call(hook(f"http://127.0.0.1:{closed_port()}/ok"), {})
    teapot = webhooks.call(hook(f"http://127.0.0.1:{hooks.port}/teapot"), {})
    for result in (dead, teapot):
        assert result.as_dict() == {"name": "gate", "ok": False, "status": None, "reason": "failed"}
    assert any("HTTP 418" in r.getMessage() for r in caplog.records)  # the detail is the control plane's log
    assert not webhooks.call(hook("gopher://127.0.0.1:70/"), {}).ok


def test_https_goes_to_the_checked_address_with_sni_and_the_certificate_of_the_name(dns, monkeypatch, tmp_path):
    pytest.importorskip("cryptography")
    cert, key = _certificate("hooks.example.test", tmp_path)
    seen: list[str] = []
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    server_tls.sni_callback = lambda sock, name, ctx: seen.append(name)
    client_tls = ssl.create_default_context(cafile=cert)
    monkeypatch.setattr(webhooks, "tls_context", lambda: client_tls)
    server = Hooks(server_tls)
    try:
        dns[0]["hooks.example.test"] = [["127.0.0.1"]]
        dns[0]["other.example.test"] = [["127.0.0.1"]]
        assert webhooks.call(hook(f"https://hooks.example.test:{server.port}/ok"), {}).ok
        assert seen == ["hooks.example.test"]
        # Same address, another name: the certificate does not match, the call fails.
        assert webhooks.call(hook(f"https://other.example.test:{server.port}/ok"), {}).reason == "failed"
        assert len(server.received) == 1
    finally:
        server.stop()


def test_a_release_shows_refused_by_policy_and_never_a_probe_result(api, sfn, traffic, strict, dns, hooks):
    answers, _ = dns
    answers["hooks.rebind.example"] = [["93.184.216.34"], ["127.0.0.1"]]
    make_gateway(api)
    gates = [{"name": "ready", "type": "before_rollout", "url": f"http://hooks.rebind.example:{hooks.port}/ok"}]
    assert api.post("/api/v1/releases", release(webhooks=gates, failures=1)).status_code == 202
    status = run_until(api, "r1", traffic, finished)
    assert status["phase"] == "rolled_back", status
    [check] = [c for c in status["checks"] if c["verdict"] == "fail"][:1]
    assert check["reason"] == "webhook ready: refused by policy: resolves to loopback"
    assert check["webhooks"] == [{"name": "ready", "ok": False, "status": None,
                                  "reason": "refused by policy: resolves to loopback"}]
    assert hooks.received == []
    assert not any(word in json.dumps(status) for word in SCANNER_WORDS)


def test_a_release_hooked_to_a_closed_port_says_failed_only(api, sfn, traffic):
    make_gateway(api)
    gates = [{"name": "scan", "type": "before_rollout", "url": f"http://127.0.0.1:{closed_port()}/"}]
    assert api.post("/api/v1/releases", release(webhooks=gates, failures=1)).status_code == 202
    status = run_until(api, "r1", traffic, finished)
    assert status["phase"] == "rolled_back", status
    assert [c["reason"] for c in status["checks"] if c["verdict"] == "fail"] == ["webhook scan: failed"]
    assert not any(word in json.dumps(status) for word in SCANNER_WORDS)


def _certificate(name: str, where) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = where / "cert.pem", where / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)
