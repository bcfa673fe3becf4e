"""Where a namespace's HAProxy configuration lives in etcd, per HAProxy version:

    /vamp/<ns>/gateways/haproxy/<version>/configuration   the text the agents apply
    /vamp/<ns>/gateways/haproxy/<version>/generation      its generation
    /vamp/<ns>/gateways/haproxy/<version>/signature       HMAC of namespace, version, generation, text

The control plane writes the three in one transaction (docs/decisions/0009-gateway-generations.md,
0023-signed-gateway-configurations.md); an agent watches the prefix of its namespace and version,
verifies the signature, and acknowledges the generation it applied (acknowledgement.py,
docs/decisions/0018). What the values hold: envelope.py.
"""
from __future__ import annotations


def prefix(namespace: str, version: str) -> str:
    return f"/vamp/{namespace}/gateways/haproxy/{version}/"


def config_key(namespace: str, version: str) -> str:
    return prefix(namespace, version) + "configuration"


def generation_key(namespace: str, version: str) -> str:
    return prefix(namespace, version) + "generation"


def signature_key(namespace: str, version: str) -> str:
    return prefix(namespace, version) + "signature"
