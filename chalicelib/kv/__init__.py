"""Where published gateway configurations are kept for the agents: the KV store's interface.

The control plane needs two operations of it, whatever the system (docs/decisions/0036):

- `read(namespaces, version)`: what the store holds for each namespace (configuration,
  generation, signature: contract/kv_keys.py), one round trip for all of them;
- `publish(signed)`: a compare-and-swap of an already signed configuration (the signing key
  stays with the caller): written only over an older generation, or over the same generation
  and text with another signature (a rotated key signs again in place); a configuration whose
  text did not change is not rewritten, only its generation and signature
  (docs/decisions/0009, 0023). The answer is a Publication.

Rendering, signing and fencing (docs/decisions/0019) are gateways/publisher.py's, above this.

Implementations, one file per system: `etcd.py` (etcd's v3 JSON gateway, directly; an etcd that is
a Service of the EKS cluster through its members' pod addresses, `etcd_members.py`), and
`aws_lambda.py` (the same operations executed by the publisher function app.py's
`gateway_publish`, which runs inside the cluster's VPC where etcd is: the other functions stay
outside any VPC). `configurations(settings)` picks: VAMP_GATEWAY_PUBLISHER_FUNCTION set means the
relay, else etcd directly. A ZooKeeper or Consul store implements the same two operations with
its own compare-and-swap (znode versions, Consul's ModifyIndex); `plan` is the rule they share.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from chalicelib.contract.envelope import checksum
from chalicelib.contract.kv_keys import prefix

if TYPE_CHECKING:
    from chalicelib.settings import Settings

# What a key of the store may be built of: a Vamp namespace as the API accepts it, and an HAProxy
# version segment. Nothing else reaches a store (the relay is a trust boundary: aws_lambda.py).
NAMESPACE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
VERSION = re.compile(r"^[0-9A-Za-z]([0-9A-Za-z._-]{0,30}[0-9A-Za-z])?$")


@dataclass(frozen=True)
class Held:
    """What a store holds for one namespace and HAProxy version."""

    configuration: bytes | None = None  # None: no configuration key
    generation: int | None = None  # None: no generation key, or not a number
    signature: bytes = b""


@dataclass(frozen=True)
class Signed:
    """A configuration to publish, signed by the caller for its namespace, version and generation."""

    namespace: str
    version: str
    generation: int
    text: bytes
    signature: str

    @property
    def checksum(self) -> str:
        return checksum(self.text)


@dataclass(frozen=True)
class Publication:
    status: str  # "published" (text written), "unchanged" (same text, generation moved on), "superseded"
    generation: int
    checksum: str
    held: int | None = None  # superseded: the generation the store holds


class PublishedConfigurations(Protocol):
    def read(self, namespaces: list[str], version: str) -> dict[str, Held]: ...

    def publish(self, signed: Signed) -> Publication: ...


def plan(held: Held, signed: Signed) -> str:
    """What a publish does over what is held: "superseded" (an equal or newer generation is there,
    and this is not the same text signed again), "text" (write all three keys), or "signature"
    (the text is there already: write generation and signature only)."""
    resign = (held.generation == signed.generation and held.configuration == signed.text
              and held.signature != signed.signature.encode())
    if held.generation is not None and signed.generation <= held.generation and not resign:
        return "superseded"
    return "signature" if held.configuration == signed.text else "text"


def checked_names(namespace: object, version: object) -> str:
    """The key prefix of a namespace and version (`/vamp/<ns>/gateways/haproxy/<version>/`), or
    ValueError naming what is wrong: every key a store is asked about is built here."""
    if not isinstance(namespace, str) or not NAMESPACE.fullmatch(namespace):
        raise ValueError(f"namespace {namespace!r}: a Vamp namespace (lowercase letters, digits and '-', at most 63)")
    if not isinstance(version, str) or not VERSION.fullmatch(version):
        raise ValueError(f"version {version!r}: an HAProxy version (letters, digits, '.', '_', '-', at most 32)")
    found = prefix(namespace, version)
    if not found.startswith(f"/vamp/{namespace}/gateways/"):  # the layout changed under us: refuse
        raise ValueError(f"{found!r} is outside /vamp/{namespace}/gateways/")
    return found


def publishing(s: Settings) -> bool:
    """Whether gateways are published at all: an etcd endpoint, or the publisher function that
    reaches one."""
    return bool(s.etcd_endpoint or s.gateway_publisher_function)


def configurations(s: Settings) -> PublishedConfigurations:
    """The store the settings name: through the publisher function when one is set
    (VAMP_GATEWAY_PUBLISHER_FUNCTION, on AWS), else etcd at VAMP_ETCD_ENDPOINT directly."""
    if s.gateway_publisher_function:
        from chalicelib.kv.aws_lambda import LambdaConfigurations

        return LambdaConfigurations(s.gateway_publisher_function)
    from chalicelib.kv.etcd import at

    return at(s.etcd_endpoint, s)
