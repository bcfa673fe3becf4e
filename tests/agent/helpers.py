"""Real local parts for the agent tests: etcd, tiny HTTP backends, a stand-in Vamp API, configs."""
from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import requests

from chalicelib.contract import envelope, kv_keys
from chalicelib.contract.log_format import GLOBAL_LOG_LINE, LOG_FORMAT_LINE, backend_name, frontend_name
from local.backends import Backend  # noqa: F401  (re-exported: the tests' backends)
from local.stack import free_port  # noqa: F401  (re-exported)

# The key the tests sign with (tests/conftest.py sets it for both sides; benches import this too).
SIGNING_KEY = os.environ.get("VAMP_AGENT_SIGNING_KEY") or "vamp-tests-gateway-signing-key-0123456789abcdef"


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def sample(metrics: Any, name: str) -> float:
    """The value an agent's metrics export for one series now, e.g. "vamp_agent_reloads_total"."""
    value = metrics.registry.get_sample_value(name)
    if value is None:
        raise KeyError(name)
    return value


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02, what: str = "") -> Any:
    """Poll until predicate() is truthy; its value, or AssertionError after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


class EtcdServer:
    """A real etcd on loopback ports; stop() and start() keep its data and its ports. With `tls`
    (a Certificates), clients must come over TLS with a certificate the CA signed; `args` are
    more flags (e.g. --auth-token-ttl)."""

    def __init__(self, data_dir: Path, *, tls: "Certificates | None" = None, args: tuple[str, ...] = ()) -> None:
        self.data_dir, self.tls, self.args = data_dir, tls, args
        self.port, self.peer_port = free_port(), free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> "EtcdServer":
        peer = f"http://127.0.0.1:{self.peer_port}"
        tls = []
        if self.tls:
            tls = ["--cert-file", str(self.tls.server_cert), "--key-file", str(self.tls.server_key),
                   "--trusted-ca-file", str(self.tls.ca_cert), "--client-cert-auth"]
        self.proc = subprocess.Popen(
            [shutil.which("etcd") or "etcd", "--name", "test", "--data-dir", str(self.data_dir),
             "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", f"test={peer}", "--log-level", "error", *tls, *self.args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.healthy, timeout=20, what="etcd up")
        return self

    def requests_options(self) -> dict[str, Any]:
        if not self.tls:
            return {}
        return {"verify": str(self.tls.ca_cert), "cert": (str(self.tls.client_cert), str(self.tls.client_key))}

    def healthy(self) -> bool:
        try:
            return requests.get(f"{self.url}/health", timeout=1, **self.requests_options()).json().get("health") == "true"
        except (requests.RequestException, ValueError):
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def client(self):  # type: ignore[no-untyped-def]
        from etcd3gw.client import Etcd3Client

        if self.tls:
            return Etcd3Client("127.0.0.1", self.port, protocol="https", ca_cert=str(self.tls.ca_cert),
                               cert_cert=str(self.tls.client_cert), cert_key=str(self.tls.client_key),
                               api_path="/v3/", timeout=5)
        return Etcd3Client("127.0.0.1", self.port, api_path="/v3/", timeout=5)

    def put(self, key: str, value: str) -> None:
        self.client().put(key, value)

    def publish(self, namespace: str, generation: int, text: str, *, key: str | None = None,
                signed_as: tuple[str, int] | None = None, signature: str | None = None) -> None:
        """Write configuration, generation and signature of a namespace in one transaction, as the
        publisher does but with no compare: an attacker's pen too. The signature is made with `key`
        (default: the tests' key) for `signed_as` (namespace, generation; default: the ones written),
        or is `signature` as given ("" writes none)."""
        signed_ns, signed_gen = signed_as or (namespace, generation)
        if signature is None:
            signature = envelope.sign(key or SIGNING_KEY, signed_ns, "2.6", signed_gen, text.encode())
        puts = [(kv_keys.config_key(namespace, "2.6"), text.encode()),
                (kv_keys.generation_key(namespace, "2.6"), envelope.format_generation(generation).encode())]
        if signature:
            puts.append((kv_keys.signature_key(namespace, "2.6"), signature.encode()))
        ops = [{"request_put": {"key": _b64(k.encode()), "value": _b64(v)}} for k, v in puts]
        assert self.client().transaction({"compare": [], "success": ops, "failure": []}).get("succeeded")




class Certificates:
    """A CA, etcd's server certificate (127.0.0.1) and a client certificate, made with
    `cryptography` in `directory` (PEM files)."""

    def __init__(self, directory: Path) -> None:
        import datetime

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        directory.mkdir(parents=True, exist_ok=True)
        now = datetime.datetime.now(datetime.timezone.utc)

        def name(cn: str) -> x509.Name:
            return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

        def write(stem: str, key, cert) -> tuple[Path, Path]:
            key_path, cert_path = directory / f"{stem}.key", directory / f"{stem}.crt"
            key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
            key_path.chmod(0o600)
            cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
            return key_path, cert_path

        def issue(cn: str, issuer_key, issuer_name, usage, san=None, ca=False):
            key = ec.generate_private_key(ec.SECP256R1())
            builder = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(issuer_name or name(cn))
                       .public_key(key.public_key()).serial_number(x509.random_serial_number())
                       .not_valid_before(now - datetime.timedelta(minutes=5))
                       .not_valid_after(now + datetime.timedelta(days=1))
                       .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
            if usage:
                builder = builder.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
            if san:
                builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
            return key, builder.sign(issuer_key or key, hashes.SHA256())

        import ipaddress

        ca_key, ca = issue("vamp-tests-ca", None, None, None, ca=True)
        _, self.ca_cert = write("ca", ca_key, ca)
        both = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        self.server_key, self.server_cert = write("server", *issue(
            "etcd", ca_key, ca.subject, both,
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]))
        self.client_key, self.client_cert = write("client", *issue(
            "vamp", ca_key, ca.subject, [ExtendedKeyUsageOID.CLIENT_AUTH]))
        other_key, other_ca = issue("someone-else", None, None, None, ca=True)
        self.stranger_key, self.stranger_cert = write("stranger", *issue(
            "stranger", other_key, other_ca.subject, [ExtendedKeyUsageOID.CLIENT_AUTH]))


class FakeApi:
    """Stands in for the Vamp API: records every POST body (answers 201) and every PUT (200)."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.puts: list[dict[str, Any]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                api.puts.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                api.posts.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
                self.send_response(201)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"[]")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


GATEWAY, ROUTE = "shop/9050", "shop/web"


def haproxy_config(port: int, servers: list[tuple[str, int, int]], *, balance: str = "roundrobin") -> str:
    """A hand-written config in the renderer's conventions (and its directives: the agent's
    allowlist): one gateway, one route backend whose servers carry the weights; the agent's JSON
    log format."""
    lines = [
        "global",
        f"    {GLOBAL_LOG_LINE}",
        "    maxconn 4096",
        "defaults",
        "    mode http",
        "    log global",
        f"    {LOG_FORMAT_LINE}",
        "    timeout connect 2s",
        "    timeout client 10s",
        "    timeout server 10s",
        f"frontend {frontend_name(GATEWAY)}",
        f"    bind 127.0.0.1:{port}",
        f"    use_backend {backend_name(GATEWAY, ROUTE)} if TRUE",
        f"backend {backend_name(GATEWAY, ROUTE)}",
        f"    balance {balance}",
    ]
    lines += [f"    server {name} 127.0.0.1:{p} weight {w}" for name, p, w in servers]
    return "\n".join(lines) + "\n"


def get(port: int, timeout: float = 5.0) -> str:
    """One request on a fresh connection; the body (the backend's name). Raises on any failure."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/", headers={"Connection": "close"})
        response = conn.getresponse()
        body = response.read().decode()
        if response.status != 200:
            raise RuntimeError(f"status {response.status}: {body[:100]}")
        return body
    finally:
        conn.close()


class Load:
    """Concurrent request loops in threads, counting successes and failures, until stopped."""

    def __init__(self, port: int, threads: int = 4) -> None:
        self.port = port
        self.ok = 0
        self.failures: list[str] = []
        self.bodies: dict[str, int] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(threads)]

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                body = get(self.port)
                with self._lock:
                    self.ok += 1
                    self.bodies[body] = self.bodies.get(body, 0) + 1
            except Exception as exc:  # every failure is a finding
                with self._lock:
                    self.failures.append(repr(exc))

    def __enter__(self) -> "Load":
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)


def line(tt: int = 10, status: int = 200, frontend: str = "gw.sava__9050", backend: str = "rt.sava__9050.v1",
         request: str = "GET / HTTP/1.1", ts: str = "1700000000.123") -> bytes:
    return ('{"client_ip":"10.0.0.1","client_port":5000,"timestamp":%s,"frontend":"%s","backend":"%s","server":"s1",'
            '"Tq":0,"Tw":0,"Tc":1,"Tr":%d,"Tt":%d,"status":%d,"bytes_read":100,"termination_state":"--","actconn":1,'
            '"feconn":1,"beconn":1,"srv_conn":1,"retries":"0","srv_queue":0,"backend_queue":0,"request":"%s"}\n'
            % (ts, frontend, backend, tt, tt, status, request)).encode()
