"""The members of an etcd that runs as a Service of an EKS cluster, found through the cluster's API:
how the publisher function reaches the bundled etcd (docs/decisions/0036, "Reaching the bundled etcd").

The bundled etcd (infra/agent/etcd/etcd.yaml) is `vamp-etcd.vamp-system.svc:2379`: a cluster DNS
name and a ClusterIP, which a Lambda function in the cluster's VPC can neither resolve nor route
to. With the VPC CNI its pods have VPC addresses, which it can reach. So the endpoint

    VAMP_ETCD_ENDPOINT=eks-service://<namespace>/<service>:<port>      (eks-service://vamp-system/vamp-etcd:2379)

means: list the Service's EndpointSlices (label kubernetes.io/service-name) on the cluster's API
(its private endpoint, which resolves to addresses inside the VPC), take the addresses of the
endpoints that are ready and not terminating, and connect to `https://<address>:<port>`
verifying etcd's certificate for `<service>.<namespace>.svc` (a name the member certificate
carries, infra/agent/etcd-certs.sh), never for the address. `<port>` is the members' port (the
EndpointSlice's, the Service's targetPort: 2379 for the bundled etcd). Members are tried in
turn; the addresses are kept for CACHE_SECONDS, and found again (once per operation) when none
of the kept ones answered: a member rescheduled has a new address.

No request that needs a NAT gateway: the token is a presigned STS URL made locally
(chalicelib/aws.eks_token), the API's endpoint and CA are the stack's (VAMP_EKS_ENDPOINT,
VAMP_EKS_CERTIFICATE_AUTHORITY, from describe_cluster at deploy time). One list call by plain
requests, not the kubernetes client: that client adds ~110 ms of import to the cold start and
126 MB to the package for one GET. What the call needs: `list` of endpointslices in the
Service's namespace, nothing else (infra/agent/etcd/publisher-rbac.yaml, bound to the group the
publisher role's access entry names).
"""
from __future__ import annotations

import ipaddress
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import requests

from chalicelib.aws import EKS_TOKEN_TTL, eks_token

SCHEME = "eks-service://"
CACHE_SECONDS = 30.0
SERVICE_LABEL = "kubernetes.io/service-name"
TIMEOUT = (2.0, 5.0)  # connect, read: the function's 30 s hold every member and a discovery
_ENDPOINT = re.compile(r"^eks-service://([a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?)/([a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)"
                       r":([0-9]{1,5})$")
T = TypeVar("T")


class MembersUnknown(RuntimeError):
    """The members could not be found: the cluster's API refused or was away, or no member is
    ready; str() says which and what fixes it."""


class NoMemberAnswered(RuntimeError):
    """Every member found was tried and none answered; str() names each with its reason."""


@dataclass(frozen=True)
class ServiceAddress:
    namespace: str
    service: str
    port: int

    @property
    def server_name(self) -> str:
        """The name etcd's certificate is verified for."""
        return f"{self.service}.{self.namespace}.svc"

    def __str__(self) -> str:
        return f"{SCHEME}{self.namespace}/{self.service}:{self.port}"


def is_service_endpoint(endpoint: str | None) -> bool:
    return bool(endpoint) and endpoint.startswith(SCHEME)


def parse(endpoint: str) -> ServiceAddress:
    """`eks-service://<namespace>/<service>:<port>`, or ValueError saying the form."""
    m = _ENDPOINT.fullmatch(endpoint)
    if not m or not 1 <= int(m.group(3)) <= 65535:
        raise ValueError(f"etcd endpoint {endpoint!r}: eks-service://<namespace>/<service>:<port> "
                         "(e.g. eks-service://vamp-system/vamp-etcd:2379)")
    return ServiceAddress(m.group(1), m.group(2), int(m.group(3)))


def member_url(address: str, port: int) -> str:
    return f"https://[{address}]:{port}" if ":" in address else f"https://{address}:{port}"


def ready_addresses(slices: list[dict], port: int) -> list[str]:
    """The addresses of the endpoints that serve `port` and are ready (a missing `ready` counts
    as ready, as the API documents) and not terminating, in the slices' order, each once."""
    out: list[str] = []
    for found in slices:
        if found.get("addressType") not in ("IPv4", "IPv6"):
            continue  # FQDN slices name no address to connect to
        if not any((p or {}).get("port") == port for p in found.get("ports") or []):
            continue
        for endpoint in found.get("endpoints") or []:
            conditions = endpoint.get("conditions") or {}
            if conditions.get("ready") is False or conditions.get("terminating") is True:
                continue
            for address in (endpoint.get("addresses") or [])[:1]:  # fungible: the first is enough
                try:
                    ipaddress.ip_address(address)
                except ValueError:
                    continue
                if address not in out:
                    out.append(address)
    return out


class ClusterApi:
    """The one call made of the EKS cluster's API server: the EndpointSlices of a Service."""

    def __init__(self, endpoint: str, ca_file: str, cluster: str, sts: Any, timeout: tuple[float, float] = TIMEOUT):
        if not endpoint.startswith("https://"):
            raise ValueError(f"the cluster's API endpoint {endpoint!r}: https://...")
        self.endpoint, self.cluster, self.sts, self.timeout = endpoint.rstrip("/"), cluster, sts, timeout
        self.session = requests.Session()
        self.session.trust_env = False  # no proxy or REQUESTS_CA_BUNDLE from the environment
        self.session.verify = ca_file
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()

    def token(self) -> str:
        with self._lock:
            if self._token is None or time.monotonic() - self._token[1] > EKS_TOKEN_TTL:
                self._token = (eks_token(self.cluster, self.sts), time.monotonic())
            return self._token[0]

    def endpoint_slices(self, namespace: str, service: str) -> list[dict]:
        url = f"{self.endpoint}/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices"
        # The words that say what to fix first: the caller's event keeps ~300 characters of it all.
        where = f"EKS cluster {self.cluster}'s API"
        try:
            answer = self.session.get(url, params={"labelSelector": f"{SERVICE_LABEL}={service}"},
                                      headers={"Authorization": f"Bearer {self.token()}", "Accept": "application/json"},
                                      timeout=self.timeout)
        except requests.RequestException as e:
            raise MembersUnknown(f"{where} did not answer at {self.endpoint} (is its private endpoint on, and "
                                 f"443 open to this function?): {type(e).__name__}: {str(e)[:200]}") from None
        if answer.status_code != 200:
            try:
                message = str(answer.json().get("message", ""))[:300]
            except ValueError:
                message = answer.text[:200]
            hint = {401: " (no access entry for this function's role?)",
                    403: " (needs access entry group vamp:gateway-publisher, Role vamp-gateway-publisher)"}
            raise MembersUnknown(f"{where} refused to list endpointslices in {namespace}: HTTP {answer.status_code}"
                                 f"{hint.get(answer.status_code, '')}: {message}")
        try:
            items = answer.json().get("items")
        except (ValueError, AttributeError):
            items = None
        if not isinstance(items, list):
            raise MembersUnknown(f"{where} answered no EndpointSliceList")
        return [i for i in items if isinstance(i, dict)]


class Members:
    """The ready members of `address`'s Service, kept for `cache_seconds`."""

    def __init__(self, api: ClusterApi, address: ServiceAddress, cache_seconds: float = CACHE_SECONDS) -> None:
        self.api, self.address, self.cache_seconds = api, address, cache_seconds
        self._found: tuple[list[str], float] | None = None
        self._lock = threading.Lock()
        self.discoveries = 0

    def addresses(self) -> list[str]:
        with self._lock:
            if self._found is None or time.monotonic() - self._found[1] > self.cache_seconds:
                slices = self.api.endpoint_slices(self.address.namespace, self.address.service)
                found = ready_addresses(slices, self.address.port)
                self.discoveries += 1
                if not found:
                    raise MembersUnknown(f"{self.address}: no ready endpoint of Service {self.address.namespace}/"
                                         f"{self.address.service} on port {self.address.port} "
                                         f"({len(slices)} EndpointSlices): is etcd running?")
                self._found = (found, time.monotonic())
            return list(self._found[0])

    def forget(self) -> None:
        with self._lock:
            self._found = None


def _unreachable() -> tuple[type[BaseException], ...]:
    from etcd3gw import exceptions  # with etcd3gw, which the publisher function loads anyway

    return (exceptions.ConnectionFailedError, exceptions.ConnectionTimeoutError, requests.ConnectionError,
            requests.Timeout)


class MemberConfigurations:
    """kv.PublishedConfigurations on the members `members` finds: each operation on one member, on
    the next when it cannot be reached, on the members found again when none of the kept ones
    could. `store_for(url)` is the store of one member (kv/etcd.py's, verified for the Service's
    name). A publish repeated on another member is safe: it is a compare-and-swap (kv.plan)."""

    def __init__(self, members: Members, store_for: Callable[[str], Any]) -> None:
        self.members, self.store_for = members, store_for

    def _on_a_member(self, operation: Callable[[Any], T]) -> T:
        unreachable = _unreachable()
        reasons: dict[str, str] = {}
        for _ in range(2):  # the kept addresses, then the ones found again
            for address in self.members.addresses():
                if address in reasons:
                    continue
                try:
                    return operation(self.store_for(member_url(address, self.members.address.port)))
                except unreachable as e:
                    reasons[address] = f"{type(e).__name__}: {str(e)[:200]}"
            self.members.forget()
        raise NoMemberAnswered(f"{self.members.address}: no member answered (etcd's certificate verified for "
                               f"{self.members.address.server_name}): "
                               + "; ".join(f"{a}: {r}" for a, r in reasons.items()))

    def read(self, namespaces: list[str], version: str):
        return self._on_a_member(lambda store: store.read(namespaces, version))

    def publish(self, signed):
        return self._on_a_member(lambda store: store.publish(signed))
