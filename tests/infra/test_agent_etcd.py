"""The agents' etcd as infra/agent/etcd/etcd.yaml runs it, for real (etcd 3.4 here; the image is
3.5, same flags): three members started with the StatefulSet's own flags (addresses moved to
loopback ports, the TLS files from infra/agent/etcd-certs.sh), peers and clients over TLS; then
infra/agent/etcd-auth.sh enables v3 auth, and the users it makes can do what they should and no
more: vamp-agent reads /vamp/, vamp-control-plane writes it, nobody else gets in."""
from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from chalicelib.contract.etcd_access import EtcdAccess
from tests.agent.helpers import free_port, wait_for
from tests.infra.templates import ROOT
from tests.infra.test_agent_manifests import AGENT, by_kind, render

pytestmark = pytest.mark.skipif(not (shutil.which("etcd") and shutil.which("openssl") and shutil.which("kubectl")),
                                reason="needs etcd, openssl and kubectl")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def member_args(flags: list[str], n: int, ports: list[dict], data: Path, tls: Path) -> list[str]:
    """The StatefulSet's flags for member n, with its names and 0.0.0.0 moved to loopback ports."""
    out = []
    for flag in flags:
        flag = flag.replace("$(POD_NAME)", f"vamp-etcd-{n}")
        for m, p in enumerate(ports):
            flag = flag.replace(f"vamp-etcd-{m}.vamp-etcd-peer.vamp-system.svc:2380", f"127.0.0.1:{p['peer']}")
            flag = flag.replace(f"vamp-etcd-{m}.vamp-etcd-peer.vamp-system.svc:2379", f"127.0.0.1:{p['client']}")
        flag = flag.replace("0.0.0.0:2379", f"127.0.0.1:{ports[n]['client']}")
        flag = flag.replace("0.0.0.0:2380", f"127.0.0.1:{ports[n]['peer']}")
        flag = flag.replace("0.0.0.0:2381", f"127.0.0.1:{ports[n]['metrics']}")
        flag = flag.replace("/var/lib/etcd/data", str(data / f"m{n}"))
        flag = flag.replace("/etc/etcd/tls", str(tls))
        assert "0.0.0.0" not in flag and ".svc" not in flag, flag  # nothing beyond loopback
        out.append(flag)
    return out


@pytest.fixture()
def etcd_cluster(tmp_path):
    sts = by_kind(render(AGENT))[("StatefulSet", "vamp-etcd")]["spec"]
    (container,) = sts["template"]["spec"]["containers"]
    tls = tmp_path / "tls"
    subprocess.run([str(AGENT / "etcd-certs.sh"), str(tls)], check=True, capture_output=True)
    ports = [{"client": free_port(), "peer": free_port(), "metrics": free_port()} for _ in range(sts["replicas"])]
    procs = []
    try:
        for n in range(sts["replicas"]):
            args = member_args(container["args"], n, ports, tmp_path, tls)
            procs.append(subprocess.Popen([shutil.which("etcd"), *args, "--log-level", "error"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

        def healthy(n: int) -> bool:
            try:
                r = requests.get(f"http://127.0.0.1:{ports[n]['metrics']}/health", timeout=1)
                return r.json().get("health") == "true"
            except (requests.RequestException, ValueError):
                return False

        for n in range(len(ports)):
            wait_for(lambda n=n: healthy(n), 30, what=f"member {n} healthy (a quorum over peer TLS)")
        yield [f"https://127.0.0.1:{p['client']}" for p in ports], tls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)


def test_three_members_over_tls_and_the_auth_script_gives_each_user_its_part(etcd_cluster, tmp_path):
    endpoints, tls = etcd_cluster
    ca = str(tls / "ca.crt")
    # plain HTTP is no way in, and a client checking the CA gets in
    with pytest.raises(requests.RequestException):
        requests.get(endpoints[0].replace("https", "http") + "/version", timeout=2)
    assert requests.post(f"{endpoints[1]}/v3/kv/range", json={"key": b64("/vamp/")}, verify=ca, timeout=5).ok

    secrets = tmp_path / "secrets"
    secrets.mkdir()
    etcdctl = f"{sys.executable} {ROOT / 'tests' / 'infra' / 'etcdctl_shim.py'} --endpoints={endpoints[0]} --cacert={ca}"
    done = subprocess.run([str(AGENT / "etcd-auth.sh"), str(secrets)], env={**os.environ, "ETCDCTL": etcdctl},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    passwords = {who: (secrets / f"etcd-{who}-password").read_text().strip() for who in ("root", "control-plane", "agent")}
    assert all(len(p) >= 32 for p in passwords.values()) and len(set(passwords.values())) == 3
    assert all(oct((secrets / f"etcd-{w}-password").stat().st_mode & 0o777) == "0o600" for w in passwords)

    def session(user: str | None, password: str | None, endpoint: str) -> requests.Session:
        s = requests.Session()
        access = EtcdAccess(endpoint, ca_file=ca, username=user, password=password)
        access.configure(s)
        s.auth = access.auth(s)
        return s

    def put(s: requests.Session, endpoint: str, key: str) -> requests.Response:
        return s.post(f"{endpoint}/v3/kv/put", json={"key": b64(key), "value": b64("v")}, timeout=5)

    # every member enforces it (auth is the cluster's, replicated)
    for endpoint in endpoints:
        anonymous = put(session(None, None, endpoint), endpoint, "/vamp/default/x")
        assert anonymous.status_code != 200 or "error" in anonymous.json()
    writer = session("vamp-control-plane", passwords["control-plane"], endpoints[1])
    assert "error" not in put(writer, endpoints[1], "/vamp/default/gateways/x").json()
    outside = put(writer, endpoints[1], "/other/x")
    assert outside.status_code == 403 and "permission denied" in outside.text
    reader = session("vamp-agent", passwords["agent"], endpoints[2])
    got = reader.post(f"{endpoints[2]}/v3/kv/range", json={"key": b64("/vamp/default/gateways/x")}, timeout=5).json()
    assert got["kvs"][0]["value"] == b64("v")
    refused = put(reader, endpoints[2], "/vamp/default/gateways/x")
    assert refused.status_code == 403 and "permission denied" in refused.text
    # the agent's settings as the overlay gives them reach it: the CA and the read-only user
    assert EtcdAccess("https://vamp-etcd.vamp-system.svc:2379", ca_file=ca, username="vamp-agent",
                      password=passwords["agent"]).address[0] == "https"


def test_the_shim_refuses_what_etcdctl_would_not_be_asked(tmp_path):
    shim = [sys.executable, str(ROOT / "tests" / "infra" / "etcdctl_shim.py"), "--endpoints=https://127.0.0.1:1",
            "--cacert=x"]
    assert subprocess.run([*shim, "user", "add", "x", "--new-user-password=pw"], capture_output=True).returncode == 2
    assert subprocess.run([*shim, "role", "grant-permission", "r", "readwrite", "/vamp/"],
                          capture_output=True).returncode == 2
