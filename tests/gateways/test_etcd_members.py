"""The publisher function reaches the bundled etcd by its members' pod addresses, found through the
EKS cluster's API (chalicelib/kv/etcd_members.py, docs/decisions/0036 "Reaching the bundled etcd").

Real parts: a 3-member etcd started with infra/agent/etcd/etcd.yaml's own flags, each member on a
"pod address" of its own for clients (127.0.0.2, .3, .4; one port, as pods share 2379), client TLS
from infra/agent/etcd-certs.sh and v3 auth from infra/agent/etcd-auth.sh (the publisher as
vamp-control-plane); the fake Kubernetes API server over HTTPS, taking exactly the EKS tokens of
one identity (their presigned SigV4 signature recomputed), holding EndpointSlices validated as
the API server validates them; the relay through moto's Lambda into app.py's gateway_publish.

What is asserted: the ready members are found (a not-ready one and another Service's skipped), a
publish goes to a member over TLS verified for vamp-etcd.vamp-system.svc (not its address; a
certificate without the name is refused), the next member takes over when one is down, a member
that moved is found again; the API refusing (403, 401) or away is a publish-failed with the reason
and the write stays stored; the token is presigned locally (no STS request)."""
from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import uuid

import pytest
import requests

from chalicelib.contract import kv_keys
from chalicelib.contract.envelope import checksum
from chalicelib.gateways import publisher
from chalicelib.kv import etcd as kv_etcd
from chalicelib.kv import etcd_members
from chalicelib.kv.aws_lambda import LambdaConfigurations, RelayError
from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore
from tests.agent.helpers import Certificates, wait_for
from tests.fakes.kubernetes_server import EksIdentity, FakeKubernetes

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not (shutil.which("etcd") and shutil.which("openssl")
                                                         and shutil.which("kubectl")),
                                                     reason="needs etcd, openssl and kubectl")]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AGENT = os.path.join(ROOT, "infra", "agent")
ADDRESSES = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]  # the members' "pod addresses"
CLUSTER, REGION = "vamp-test", "us-east-1"
ACCESS_KEY, SECRET_KEY = "testing", "testing"  # the session's credentials (tests/conftest.py), with a session token
BODY = {"name": "shop", "routes": {"[127.0.0.1:8080]": {"weight": "100%"}}}


def _port_free_on_all() -> int:
    """A port nothing listens on at any of the members' addresses (pods share one port)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            for address in ADDRESSES:
                with socket.socket() as s:
                    s.bind((address, port))
        except OSError:
            continue
        return port
    raise AssertionError("no port free on every member address")


class Members:
    """The StatefulSet's members, started with its flags (pod names become the pod addresses)."""

    def __init__(self, tmp, tls) -> None:
        import yaml

        rendered = subprocess.run(["kubectl", "kustomize", AGENT], capture_output=True, text=True, check=True).stdout
        (sts,) = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "StatefulSet"]
        (container,) = sts["spec"]["template"]["spec"]["containers"]
        self.flags, self.tmp, self.tls = container["args"], tmp, tls
        self.client, self.metrics = _port_free_on_all(), _port_free_on_all()
        self.local = [_port_free_on_all() for _ in ADDRESSES]  # each member's loopback (etcdctl in its pod)
        # Peers on 127.0.0.1 (the certificate's address for what its DNS names would be): the
        # peer network is not the publisher's path, the client addresses are.
        self.peers = [_port_free_on_all() for _ in ADDRESSES]
        self.procs: list[subprocess.Popen | None] = [None] * len(ADDRESSES)

    def args(self, n: int) -> list[str]:
        out = []
        for flag in self.flags:
            flag = flag.replace("$(POD_NAME)", f"vamp-etcd-{n}")
            for m, address in enumerate(ADDRESSES):
                flag = flag.replace(f"vamp-etcd-{m}.vamp-etcd-peer.vamp-system.svc:2380", f"127.0.0.1:{self.peers[m]}")
                flag = flag.replace(f"vamp-etcd-{m}.vamp-etcd-peer.vamp-system.svc:2379", f"{address}:{self.client}")
            flag = flag.replace("https://0.0.0.0:2379", f"https://{ADDRESSES[n]}:{self.client},"
                                                        f"https://127.0.0.1:{self.local[n]}")
            flag = flag.replace("0.0.0.0:2380", f"127.0.0.1:{self.peers[n]}")
            flag = flag.replace("0.0.0.0:2381", f"{ADDRESSES[n]}:{self.metrics}")
            flag = flag.replace("/var/lib/etcd/data", str(self.tmp / f"m{n}"))
            flag = flag.replace("/etc/etcd/tls", str(self.tls))
            assert "0.0.0.0" not in flag and ".svc" not in flag, flag
            out.append(flag)
        return out

    def start(self, n: int) -> None:
        self.procs[n] = subprocess.Popen([shutil.which("etcd"), *self.args(n), "--log-level", "error"],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def healthy(self, n: int) -> bool:
        try:
            return requests.get(f"http://{ADDRESSES[n]}:{self.metrics}/health", timeout=1).json().get("health") == "true"
        except (requests.RequestException, ValueError):
            return False

    def stop(self, n: int) -> None:
        proc = self.procs[n]
        if proc and proc.poll() is None:
            proc.terminate()
            proc.wait(10)

    def ensure_all(self) -> None:
        for n, proc in enumerate(self.procs):
            if proc is None or proc.poll() is not None:
                self.start(n)
        for n in range(len(ADDRESSES)):
            wait_for(lambda n=n: self.healthy(n), 30, what=f"member {n} healthy")


@pytest.fixture(scope="module")
def bundled_etcd(tmp_path_factory):
    """The bundled etcd, its TLS and its users as the README's commands make them."""
    tmp = tmp_path_factory.mktemp("bundled-etcd")
    tls = tmp / "tls"
    subprocess.run([os.path.join(AGENT, "etcd-certs.sh"), str(tls)], check=True, capture_output=True)
    members = Members(tmp, tls)
    try:
        members.ensure_all()
        secrets = tmp / "secrets"
        secrets.mkdir()
        etcdctl = (f"{sys.executable} {os.path.join(ROOT, 'tests', 'infra', 'etcdctl_shim.py')} "
                   f"--endpoints=https://127.0.0.1:{members.local[0]} --cacert={tls / 'ca.crt'}")
        done = subprocess.run([os.path.join(AGENT, "etcd-auth.sh"), str(secrets)], env={**os.environ, "ETCDCTL": etcdctl},
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        members.password = (secrets / "etcd-control-plane-password").read_text().strip()
        yield members
    finally:
        for n in range(len(ADDRESSES)):
            members.stop(n)


def _etcd_reader(members: Members):
    """A direct client on member 0's loopback (verified by 127.0.0.1, which the certificate holds)."""
    from etcd3gw.client import Etcd3Client

    from chalicelib.contract.etcd_access import EtcdAccess

    access = EtcdAccess(f"https://127.0.0.1:{members.local[0]}", ca_file=str(members.tls / "ca.crt"),
                        username="vamp-control-plane", password=members.password)
    etcd = Etcd3Client(**access.client_options(), api_path="/v3/", timeout=5)
    access.configure(etcd.session)
    return etcd


def endpoint_slice(name: str, service: str, endpoints: list[tuple[str, bool | None]], port: int) -> dict:
    """An EndpointSlice as the controller writes it: (address, ready or None for unset)."""
    def entry(address: str, ready: bool | None) -> dict:
        found: dict = {"addresses": [address], "targetRef": {"kind": "Pod", "namespace": "vamp-system",
                                                              "name": f"pod-{address.replace('.', '-')}"}}
        if ready is not None:
            found["conditions"] = {"ready": ready, "serving": ready, "terminating": False}
        return found

    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": "vamp-system",
                         "labels": {"kubernetes.io/service-name": service,
                                    "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
            "addressType": "IPv4", "ports": [{"name": "client", "port": port, "protocol": "TCP"}],
            "endpoints": [entry(a, r) for a, r in endpoints]}


class Api:
    """The fake EKS API server and what the tests do to it."""

    def __init__(self, fake: FakeKubernetes, port: int) -> None:
        self.fake, self.port = fake, port
        assert fake.handle("POST", "/api/v1/namespaces", {"metadata": {"name": "vamp-system"}})[0] == 201

    def slices(self, service: str, *groups: list[tuple[str, bool | None]]) -> None:
        """The Service's EndpointSlices are now these (one per group)."""
        base = "/apis/discovery.k8s.io/v1/namespaces/vamp-system/endpointslices"
        for name in [n for n, o in self.fake.objects("endpointslices", "vamp-system").items()
                     if o["metadata"]["labels"]["kubernetes.io/service-name"] == service]:
            assert self.fake.handle("DELETE", f"{base}/{name}", None)[0] == 200
        for i, group in enumerate(groups):
            code, answer = self.fake.handle("POST", base, endpoint_slice(f"{service}-{i}", service, group, self.port))
            assert code == 201, answer

    def lists(self) -> int:
        return sum(1 for m, p in self.fake.requests
                   if (m, p) == ("GET", "/apis/discovery.k8s.io/v1/namespaces/vamp-system/endpointslices"))


@pytest.fixture()
def cluster_api(bundled_etcd, tmp_path, relay, monkeypatch):
    """The publisher function configured as the stack configures it for the bundled etcd."""
    from chalicelib.settings import settings

    bundled_etcd.ensure_all()
    certs = Certificates(tmp_path / "api-pki")  # the API server's: 127.0.0.1, its own CA
    fake = FakeKubernetes(tick=None, tls=(str(certs.server_cert), str(certs.server_key)),
                          eks=EksIdentity(CLUSTER, ACCESS_KEY, SECRET_KEY, REGION)).start()
    api = Api(fake, bundled_etcd.client)
    credentials = {"username": "vamp-control-plane", "password": bundled_etcd.password,
                   "ca": (bundled_etcd.tls / "ca.crt").read_text()}
    env = {"VAMP_ETCD_ENDPOINT": f"eks-service://vamp-system/vamp-etcd:{bundled_etcd.client}",
           "VAMP_ETCD_CREDENTIALS": json.dumps(credentials), "VAMP_EKS_CLUSTER": CLUSTER, "VAMP_EKS_ENDPOINT": fake.url,
           "VAMP_EKS_CERTIFICATE_AUTHORITY": base64.b64encode(certs.ca_cert.read_bytes()).decode(),
           "VAMP_REGION": REGION}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings.cache_clear()
    kv_etcd._members.cache_clear()
    kv_etcd._client.cache_clear()
    try:
        yield api
    finally:
        fake.stop()
        settings.cache_clear()
        kv_etcd._members.cache_clear()
        kv_etcd._client.cache_clear()


def _members_of(endpoint: str | None = None) -> etcd_members.Members:
    """The Members the publisher function uses (kept between invocations)."""
    from chalicelib.settings import settings

    store = kv_etcd.at(endpoint or settings().etcd_endpoint, settings())
    return store.members


def _sts_requests(members: etcd_members.Members) -> list[str]:
    sent: list[str] = []
    members.api.sts.meta.events.register("before-send", lambda request, **_: sent.append(request.url))
    return sent


def _publish(store, namespace: str, generation: int, text: str):
    return publisher.publish(store, namespace, "2.6", generation, text, checksum(text))


def test_the_ready_members_are_found_and_a_publish_reaches_one_verified_for_the_service_name(
        cluster_api, bundled_etcd, relay, namespace):
    a, b, c = ADDRESSES
    cluster_api.slices("vamp-etcd", [(a, True), (b, False)], [(c, None)])  # b not ready; c's conditions unset
    cluster_api.slices("other", [(b, True)])  # another Service's slice: not etcd's
    members = _members_of()
    sts = _sts_requests(members)
    assert members.addresses() == [a, c]
    assert cluster_api.lists() == 1

    store = LambdaConfigurations(relay)
    assert _publish(store, namespace, 1, "global\n").status == "published"
    assert publisher.current(store, namespace, "2.6") == ("global\n", 1)
    etcd = _etcd_reader(bundled_etcd)
    assert etcd.get(kv_keys.config_key(namespace, "2.6")) == [b"global\n"]
    assert cluster_api.lists() == 1  # kept: the next operations found no new members
    assert sts == []  # the token is presigned, never sent to STS (the fake API verified its signature)

    # The members' certificate has no 127.0.0.x but 127.0.0.1: verified by the address it fails,
    # which is why the publisher verifies the Service's name.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"https://{a}:{bundled_etcd.client}/version", verify=str(bundled_etcd.tls / "ca.crt"), timeout=5)


def test_a_certificate_without_the_services_name_is_refused(cluster_api, bundled_etcd, relay, namespace, monkeypatch):
    from chalicelib.settings import settings

    # a Service "impostor" whose endpoints are etcd's members: their certificate does not name
    # impostor.vamp-system.svc, so nothing is sent to them
    cluster_api.slices("impostor", [(ADDRESSES[0], True), (ADDRESSES[1], True)])
    monkeypatch.setenv("VAMP_ETCD_ENDPOINT", f"eks-service://vamp-system/impostor:{bundled_etcd.client}")
    settings.cache_clear()
    with pytest.raises(RelayError) as failed:
        _publish(LambdaConfigurations(relay), namespace, 1, "global\n")
    assert "NoMemberAnswered" in str(failed.value) and "impostor.vamp-system.svc" in str(failed.value)
    assert "certificate" in str(failed.value).lower() and ADDRESSES[1] in str(failed.value)
    assert _etcd_reader(bundled_etcd).get(kv_keys.config_key(namespace, "2.6")) == []


def test_when_a_member_is_down_the_next_one_serves(cluster_api, bundled_etcd, relay, namespace):
    a, b, c = ADDRESSES
    cluster_api.slices("vamp-etcd", [(a, True), (b, True), (c, True)])
    store = LambdaConfigurations(relay)
    assert _publish(store, namespace, 1, "one\n").status == "published"
    bundled_etcd.stop(0)  # two of three keep the quorum
    assert _publish(store, namespace, 2, "two\n").status == "published"
    assert publisher.current(store, namespace, "2.6") == ("two\n", 2)
    assert cluster_api.lists() == 1  # the kept members sufficed


def test_a_member_that_moved_is_found_again(cluster_api, bundled_etcd, relay, namespace):
    a, b, c = ADDRESSES
    cluster_api.slices("vamp-etcd", [(a, True)])
    store = LambdaConfigurations(relay)
    assert _publish(store, namespace, 1, "one\n").status == "published"
    assert cluster_api.lists() == 1
    # the pod at a is gone; the StatefulSet's members are now at b and c
    bundled_etcd.stop(0)
    cluster_api.slices("vamp-etcd", [(b, True), (c, True)])
    assert _publish(store, namespace, 2, "two\n").status == "published"
    assert cluster_api.lists() == 2
    assert _members_of().addresses() == [b, c]


@pytest.mark.parametrize("fault", ["forbidden", "another identity", "away"])
def test_the_cluster_api_refusing_or_away_fails_the_publish_clearly_and_the_write_stays_stored(
        cluster_api, bundled_etcd, relay, api, namespace, monkeypatch, fault):
    from chalicelib.settings import settings

    cluster_api.slices("vamp-etcd", [(ADDRESSES[0], True)])
    says = {"forbidden": "HTTP 403", "another identity": "HTTP 401", "away": "did not answer"}[fault]
    if fault == "forbidden":  # RBAC without the Role: what the API server answers
        cluster_api.fake.fail(403, path="/apis/discovery.k8s.io/v1/namespaces/vamp-system/endpointslices", times=99,
                              message='endpointslices.discovery.k8s.io is forbidden: User "arn:aws:sts::123456789012:'
                                      'assumed-role/x/y" cannot list resource "endpointslices" in API group '
                                      '"discovery.k8s.io" in the namespace "vamp-system"')
    elif fault == "another identity":  # the cluster accepts another role's tokens, not this one's
        cluster_api.fake.eks = EksIdentity(CLUSTER, "AKIAANOTHERROLE00000", "another-secret", REGION)
    else:
        cluster_api.fake.stop()
    settings.cache_clear()
    assert api.put(f"/{namespace}/api/v1/gateways/shop", BODY).status_code == 202  # stored
    events = api.get(f"/{namespace}/api/v1/events?tag=gateways:shop&tag=publish-failed").json
    assert events, "no publish-failed event"
    error = events[0]["value"]["error"]
    assert f"publisher function {relay}" in error and "MembersUnknown" in error and says in error, error
    if fault == "forbidden":
        assert "vamp:gateway-publisher" in error
    assert api.get(f"/{namespace}/api/v1/gateways/shop").status_code == 200
    assert _etcd_reader(bundled_etcd).get(kv_keys.config_key(namespace, "2.6")) == []
    store = DynamoDBArtifactStore()
    assert publisher.republish_all(store, publisher.no_targets)[namespace].startswith("error: ")


def test_no_ready_member_is_said(cluster_api, relay, namespace):
    cluster_api.slices("vamp-etcd", [(ADDRESSES[0], False)])
    with pytest.raises(RelayError, match="no ready endpoint of Service vamp-system/vamp-etcd"):
        _publish(LambdaConfigurations(relay), namespace, 1, "global\n")


# -- pure parts ----------------------------------------------------------------------------------

def test_ready_addresses_skips_what_is_not_a_ready_address_of_the_port():
    slices = [
        {"addressType": "IPv4", "ports": [{"port": 2379}], "endpoints": [
            {"addresses": ["10.0.1.5"], "conditions": {"ready": True}},
            {"addresses": ["10.0.1.6"], "conditions": {"ready": True, "terminating": True}},
            {"addresses": ["10.0.1.7"], "conditions": {"ready": False}},
            {"addresses": ["10.0.1.8", "10.0.1.9"]},  # unset: ready; the first address only
            {"addresses": ["10.0.1.5"], "conditions": {"ready": True}}]},  # once
        {"addressType": "IPv4", "ports": [{"port": 2380}], "endpoints": [{"addresses": ["10.0.2.1"]}]},
        {"addressType": "FQDN", "ports": [{"port": 2379}], "endpoints": [{"addresses": ["etcd.example.com"]}]},
        {"addressType": "IPv6", "ports": [{"port": 2379}], "endpoints": [{"addresses": ["fd00::5"]}]},
    ]
    assert etcd_members.ready_addresses(slices, 2379) == ["10.0.1.5", "10.0.1.8", "fd00::5"]
    assert etcd_members.member_url("fd00::5", 2379) == "https://[fd00::5]:2379"


@pytest.mark.parametrize("endpoint", ["eks-service://vamp-system/vamp-etcd", "eks-service://Vamp/vamp-etcd:2379",
                                      "eks-service://vamp-system/vamp-etcd:0", "eks-service://a/b/c:2379",
                                      "eks-service://vamp-system/vamp-etcd:2379/"])
def test_the_endpoint_form_is_checked(endpoint):
    with pytest.raises(ValueError, match="eks-service://<namespace>/<service>:<port>"):
        etcd_members.parse(endpoint)


def test_a_plain_endpoint_is_one_url_as_before():
    from chalicelib.settings import Settings

    assert isinstance(kv_etcd.at("https://etcd.internal:2379", Settings()), kv_etcd.EtcdConfigurations)
    parsed = etcd_members.parse("eks-service://vamp-system/vamp-etcd:2379")
    assert parsed.server_name == "vamp-etcd.vamp-system.svc" and str(parsed) == "eks-service://vamp-system/vamp-etcd:2379"


def test_missing_cluster_settings_are_named():
    from chalicelib.settings import Settings

    kv_etcd._members.cache_clear()
    with pytest.raises(ValueError, match="VAMP_EKS_ENDPOINT, VAMP_EKS_CERTIFICATE_AUTHORITY unset"):
        kv_etcd.at("eks-service://vamp-system/vamp-etcd:2379", Settings(eks_cluster="c"))


def test_the_fake_refuses_an_endpoint_slice_the_api_server_would(fake_kubernetes):
    fake_kubernetes.handle("POST", "/api/v1/namespaces", {"metadata": {"name": "vamp-system"}})
    base = "/apis/discovery.k8s.io/v1/namespaces/vamp-system/endpointslices"
    bad = endpoint_slice(f"s{uuid.uuid4().hex[:6]}", "vamp-etcd", [("10.0.1.05", True)], 2379)
    code, answer = fake_kubernetes.handle("POST", base, bad)
    assert code == 422 and "must be a valid IP address" in answer["message"]
    bad = endpoint_slice("v6", "vamp-etcd", [("10.0.1.5", True)], 2379)
    bad["addressType"], bad["endpoints"][0]["addresses"] = "IPv6", ["FD00::5"]
    code, answer = fake_kubernetes.handle("POST", base, bad)
    assert code == 422 and "valid IPv6 address in canonical form" in answer["message"]
    bad = endpoint_slice("x", "vamp-etcd", [("10.0.1.5", True)], 2379)
    bad["endpoints"][0]["hostname"] = 7  # a wrong type: the schema's refusal
    assert fake_kubernetes.handle("POST", base, bad)[0] == 400
    good = endpoint_slice("x", "vamp-etcd", [("10.0.1.5", True)], 2379)
    assert fake_kubernetes.handle("POST", base, good)[0] == 201
    good["addressType"] = "IPv6"
    assert fake_kubernetes.handle("PUT", f"{base}/x", good)[0] == 422  # addressType is immutable
    # and the token check: anything but the fake's token is 401 (EKS tokens when it has an identity)
    assert fake_kubernetes.serve("GET", base, b"", None, "Bearer k8s-aws-v1.x")[0] == 401
