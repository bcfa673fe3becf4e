"""Published configurations in etcd, through its v3 JSON gateway (etcd3gw; docs/decisions/0003).

Three keys per namespace and HAProxy version (contract/kv_keys.py). A publish reads them, stops
if the stored generation is already >= its own (`kv.plan`), and otherwise writes in ONE etcd
transaction guarded by the mod_revisions it read: generation and signature always, the
configuration only when its text changed (so agents are not woken for nothing). If anything
changed in between, it reads again: two publishers racing can never leave an older
configuration over a newer one (docs/decisions/0009-gateway-generations.md).

A read of many namespaces is one transaction of range requests (at most MAX_TXN_OPS each, etcd's
--max-txn-ops default), so the scheduled pass makes one request, not one per namespace.

How etcd is reached (TLS, v3 authentication) comes from the settings (VAMP_ETCD_*), or from
VAMP_ETCD_CREDENTIALS, the JSON document of the publisher function's secret on AWS
(docs/decisions/0036): its PEMs are written to files under the temporary directory (mode 0600)
once per content, for the TLS library to read.

An endpoint `eks-service://<namespace>/<service>:<port>` is an etcd running as a Service of the
EKS cluster (the bundled one): its members are found through the cluster's API and tried in turn,
each verified for the Service's name (kv/etcd_members.py); any other endpoint is one URL, as given.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from functools import lru_cache
from pathlib import Path

from chalicelib.contract.envelope import format_generation, parse_generation
from chalicelib.contract.etcd_access import EtcdAccess
from chalicelib.contract.kv_keys import config_key, generation_key, signature_key
from chalicelib.kv import Held, Publication, Signed, checked_names, plan
from chalicelib.settings import Settings
from chalicelib.settings import settings as current_settings

ATTEMPTS = 10
MAX_TXN_OPS = 128  # etcd's --max-txn-ops default
CREDENTIALS = ("username", "password", "ca", "cert", "key")  # VAMP_ETCD_CREDENTIALS' keys, all optional


def _b64(value: str | bytes) -> str:
    return base64.b64encode(value.encode() if isinstance(value, str) else value).decode()


# -- how etcd is reached -------------------------------------------------------------------------

def credentials(text: str | None) -> dict[str, str]:
    """VAMP_ETCD_CREDENTIALS, `{"username": .., "password": .., "ca": PEM, "cert": PEM, "key": PEM}`
    (every key optional, no other): the map, or ValueError naming the key (never its value)."""
    if not text:
        return {}
    try:
        found = json.loads(text)
    except ValueError:
        raise ValueError("VAMP_ETCD_CREDENTIALS is not JSON") from None
    if not isinstance(found, dict):
        raise ValueError(f"VAMP_ETCD_CREDENTIALS: an object with the keys {', '.join(CREDENTIALS)}")
    unknown = sorted(set(found) - set(CREDENTIALS))
    if unknown:
        raise ValueError(f"VAMP_ETCD_CREDENTIALS: unknown keys {unknown} (known: {', '.join(CREDENTIALS)})")
    for name, value in found.items():
        if not isinstance(value, str):
            raise ValueError(f"VAMP_ETCD_CREDENTIALS.{name}: a string")
        if name in ("ca", "cert", "key") and value and not value.lstrip().startswith("-----BEGIN "):
            raise ValueError(f"VAMP_ETCD_CREDENTIALS.{name}: a PEM (-----BEGIN ...)")
    return {k: v for k, v in found.items() if v}


def pem_file(what: str, content: str | None) -> str | None:
    """A file holding `content` (named after its hash: written once, a rotated PEM is a new
    file), readable by this user only; None for no content."""
    if not content:
        return None
    directory = Path(tempfile.gettempdir()) / "vamp-etcd"
    directory.mkdir(mode=0o700, exist_ok=True)
    path = directory / f"{what}-{hashlib.sha256(content.encode()).hexdigest()[:24]}.pem"
    if not path.exists():
        partial = directory / f".{path.name}.{os.getpid()}"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(content if content.endswith("\n") else content + "\n")
        os.replace(partial, path)  # whole or not at all, for a concurrent reader
    return str(path)


def etcd_access(endpoint: str, s: Settings | None = None) -> EtcdAccess:
    """How to reach etcd at `endpoint`: TLS and authentication from the settings, each from its
    own setting first (a file, else the value), else from VAMP_ETCD_CREDENTIALS."""
    s = s or current_settings()
    given = credentials(s.etcd_credentials)
    password = s.etcd_password
    if s.etcd_password_file:
        password = Path(s.etcd_password_file).read_text().strip()
    return EtcdAccess(endpoint, ca_file=s.etcd_ca_file or pem_file("ca", given.get("ca")),
                      cert_file=s.etcd_cert_file or pem_file("cert", given.get("cert")),
                      key_file=s.etcd_key_file or pem_file("key", given.get("key")),
                      username=s.etcd_username or given.get("username"),
                      password=password if password is not None else given.get("password"))


def client(endpoint: str, s: Settings | None = None, server_name: str | None = None):
    """An etcd3gw client for the endpoint ("host:port", or with its scheme), with the settings'
    TLS and authentication; etcd's certificate verified for `server_name` when given (a member
    reached at its address), else for the endpoint's host."""
    return _client(etcd_access(endpoint, s), server_name)


@lru_cache(maxsize=16)
def _client(access: EtcdAccess, server_name: str | None = None):
    from etcd3gw.client import Etcd3Client  # imported here: not at cold start

    etcd = Etcd3Client(**access.client_options(), api_path="/v3/", timeout=5)
    access.configure(etcd.session)
    if server_name:
        etcd.session.mount("https://", _verified_as(server_name))
    return etcd


def _verified_as(server_name: str):
    """A requests adapter whose TLS connections send `server_name` (SNI) and verify the
    certificate for it, whatever address they connect to."""
    from requests.adapters import HTTPAdapter

    class VerifiedAs(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            kwargs.update(assert_hostname=server_name, server_hostname=server_name)
            super().init_poolmanager(*args, **kwargs)

    return VerifiedAs()


def at(endpoint: str, s: Settings | None = None):
    """The store at `endpoint`: one etcd URL, or the members of an etcd Service of the EKS
    cluster (eks-service://..., kv/etcd_members.py)."""
    from chalicelib.kv import etcd_members

    if etcd_members.is_service_endpoint(endpoint):
        s = s or current_settings()
        address = etcd_members.parse(endpoint)
        members = _members(address, s.eks_endpoint, s.eks_certificate_authority, s.eks_cluster, s.region)
        return etcd_members.MemberConfigurations(
            members, lambda url: EtcdConfigurations(client(url, s, server_name=address.server_name)))
    return EtcdConfigurations(client(endpoint, s))


@lru_cache(maxsize=4)
def _members(address, api_endpoint: str | None, certificate_authority: str | None, cluster: str | None, region: str):
    """The Members of `address` (kept between invocations: its addresses and the API's token)."""
    import boto3

    from chalicelib.kv import etcd_members

    missing = [name for name, value in (("VAMP_EKS_ENDPOINT", api_endpoint), ("VAMP_EKS_CLUSTER", cluster),
                                        ("VAMP_EKS_CERTIFICATE_AUTHORITY", certificate_authority)) if not value]
    if missing:
        raise ValueError(f"etcd endpoint {address} is found through the EKS cluster's API: "
                         f"{', '.join(missing)} unset (the stack's EksEndpoint, ClusterName, EksCertificateAuthority)")
    try:
        ca = base64.b64decode(certificate_authority, validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        raise ValueError("VAMP_EKS_CERTIFICATE_AUTHORITY: base64 of a PEM (describe_cluster's "
                         "certificateAuthority.data)") from None
    if not ca.lstrip().startswith("-----BEGIN "):
        raise ValueError("VAMP_EKS_CERTIFICATE_AUTHORITY: base64 of a PEM (describe_cluster's certificateAuthority.data)")
    # The regional STS endpoint, as `aws eks get-token` signs for; presigning makes no request.
    sts = boto3.client("sts", region_name=region, endpoint_url=f"https://sts.{region}.amazonaws.com")
    api = etcd_members.ClusterApi(api_endpoint, pem_file("eks-ca", ca), cluster, sts)
    return etcd_members.Members(api, address)


# -- the store -------------------------------------------------------------------------------------

def _keys(namespace: str, version: str) -> tuple[str, str, str]:
    checked_names(namespace, version)
    return config_key(namespace, version), generation_key(namespace, version), signature_key(namespace, version)


def _range(keys: tuple[str, ...]) -> dict:
    """One range request covering the keys (they share a prefix)."""
    return {"key": _b64(min(keys)), "range_end": _b64(max(keys) + "\0")}


def _found(kvs: list[dict], keys: tuple[str, ...]) -> dict[str, tuple[bytes, int]]:
    """key -> (value, mod_revision) of the range's kvs that are our keys."""
    found = {}
    for kv in kvs:
        key = base64.b64decode(kv["key"]).decode(errors="replace")
        if key in keys:
            found[key] = (base64.b64decode(kv.get("value", "")), int(kv.get("mod_revision", 0)))
    return found


def _held(found: dict[str, tuple[bytes, int]], keys: tuple[str, str, str]) -> Held:
    ckey, gkey, skey = keys
    configuration = found[ckey][0] if ckey in found else None
    return Held(configuration, parse_generation(found.get(gkey, (b"", 0))[0]), found.get(skey, (b"", 0))[0])


class EtcdConfigurations:
    """kv.PublishedConfigurations on an etcd3gw client."""

    def __init__(self, client) -> None:
        self.client = client

    def read(self, namespaces: list[str], version: str) -> dict[str, Held]:
        wanted = list(dict.fromkeys(namespaces))
        keys = {ns: _keys(ns, version) for ns in wanted}
        out: dict[str, Held] = {}
        for start in range(0, len(wanted), MAX_TXN_OPS):
            chunk = wanted[start:start + MAX_TXN_OPS]
            answer = self.client.transaction({"compare": [], "failure": [],
                                              "success": [{"request_range": _range(keys[ns])} for ns in chunk]})
            responses = answer.get("responses", [])
            if len(responses) != len(chunk):
                raise RuntimeError(f"etcd answered {len(responses)} ranges to {len(chunk)}")
            for ns, response in zip(chunk, responses):
                out[ns] = _held(_found(response.get("response_range", {}).get("kvs", []), keys[ns]), keys[ns])
        return out

    def _read_one(self, keys: tuple[str, str, str]) -> dict[str, tuple[bytes, int]]:
        out = self.client.post(self.client.get_url("/kv/range"), json=_range(keys))
        return _found(out.get("kvs", []), keys)

    def publish(self, signed: Signed) -> Publication:
        keys = ckey, gkey, skey = _keys(signed.namespace, signed.version)
        for _ in range(ATTEMPTS):
            found = self._read_one(keys)
            held = _held(found, keys)
            step = plan(held, signed)
            if step == "superseded":
                return Publication("superseded", signed.generation, signed.checksum, held=held.generation)
            ops = [{"request_put": {"key": _b64(gkey), "value": _b64(format_generation(signed.generation))}},
                   {"request_put": {"key": _b64(skey), "value": _b64(signed.signature)}}]
            if step == "text":
                ops.append({"request_put": {"key": _b64(ckey), "value": _b64(signed.text)}})
            txn = {
                "compare": [
                    {"key": _b64(gkey), "target": "MOD", "result": "EQUAL", "mod_revision": found.get(gkey, (b"", 0))[1]},
                    {"key": _b64(ckey), "target": "MOD", "result": "EQUAL", "mod_revision": found.get(ckey, (b"", 0))[1]},
                ],
                "success": ops,
                "failure": [],
            }
            if self.client.transaction(txn).get("succeeded"):
                return Publication("published" if step == "text" else "unchanged", signed.generation, signed.checksum)
        raise RuntimeError(f"etcd: gave up publishing {signed.namespace} generation {signed.generation} "
                           f"after {ATTEMPTS} races")
