"""Publishing a namespace's HAProxy configuration to etcd, newest generation wins.

Three keys per namespace and HAProxy version, the configuration, its generation and its
signature (their layout and values are the contract with the agents: chalicelib/contract/
kv_keys.py, envelope.py). The signature is HMAC-SHA256 over namespace, version, generation and
text, under the key `signing_key` reads (docs/decisions/0023): agents apply nothing else.

Where they are kept is the KV store's (chalicelib/kv/: etcd directly, or through the publisher
function inside the cluster's VPC on AWS, docs/decisions/0036): a compare-and-swap that writes
only over an older generation, so two Lambdas racing can never leave an older configuration over
a newer one (docs/decisions/0009-gateway-generations.md). The same generation with the same text
but another signature (the key was rotated, or the text was written before signing) is signed
again in place. Rendering and signing are here: the signing key never leaves these functions.

The store is the source of truth, not etcd's counter: a publisher stopped by a generation the
store has never reached (the table was restored or rebuilt) moves the store's generation past
etcd's and publishes again, so no write is dropped as "superseded" by a stale number
(docs/decisions/0019-no-lost-generation.md).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from chalicelib.contract import envelope
from chalicelib.errors import Conflict
from chalicelib.gateways import snapshot
from chalicelib.kv import Held, Publication, PublishedConfigurations, Signed, configurations, publishing
from chalicelib.settings import Settings
from chalicelib.settings import settings as current_settings
from chalicelib.store import namespaces

if TYPE_CHECKING:
    from chalicelib.gateways.haproxy import InstanceSource

log = logging.getLogger(__name__)

FENCES = 3  # times one publication moves the store's generation past etcd's and renders again
SECRET_TTL = 300.0  # seconds a signing key read from Secrets Manager / SSM is kept (rotation)


class SigningKeyMissing(RuntimeError):
    """No signing key configured, or it cannot be read: nothing is published."""


class RouteTargets(Protocol):
    """Who serves the routes the gateway layer does not know the servers of (a deployment's
    services). The layer above passes its own (deployments.route_targets.source): gateways never
    import deployments."""

    def __call__(self, store, namespace: str, gateway_docs: list[dict], loopback: str) -> InstanceSource: ...


def no_targets(store, namespace: str, gateway_docs: list[dict], loopback: str) -> InstanceSource:
    return lambda gateway, route: []


# -- the signing key -----------------------------------------------------------------------------

_secrets: dict[str, tuple[str, float]] = {}
_secrets_lock = threading.Lock()


def signing_key(s: Settings | None = None) -> str:
    """The key configurations are signed with: the file's first key, else the value, else the
    AWS secret (read at most every SECRET_TTL seconds). SigningKeyMissing says what to set."""
    s = s or current_settings()
    try:
        if s.gateway_signing_key_file:
            return envelope.parse_keys(Path(s.gateway_signing_key_file).read_text())[0]
        if s.gateway_signing_key:
            return envelope.parse_keys(s.gateway_signing_key)[0]
        if s.gateway_signing_key_secret:
            return envelope.parse_keys(_secret(s.gateway_signing_key_secret))[0]
    except (OSError, ValueError) as e:
        raise SigningKeyMissing(f"gateway signing key: {e}") from None
    raise SigningKeyMissing("no gateway signing key: set VAMP_GATEWAY_SIGNING_KEY_FILE, VAMP_GATEWAY_SIGNING_KEY or "
                            "VAMP_GATEWAY_SIGNING_KEY_SECRET (agents apply signed configurations only; "
                            "docs/decisions/0023)")


def _secret(name: str) -> str:
    with _secrets_lock:
        cached = _secrets.get(name)
        if cached and time.monotonic() - cached[1] < SECRET_TTL:
            return cached[0]
    from chalicelib import aws  # boto3: only when a secret is configured

    try:
        if name.startswith("ssm:") or name.startswith("arn:aws:ssm:"):
            value, _ = aws.read_secret("ssm", name.removeprefix("ssm:"))
        else:
            value, _ = aws.read_secret("secretsmanager", name)
        if value is None:
            raise ValueError("a binary secret")
    except Exception as e:  # noqa: BLE001 - any failure: not published, and said why
        raise ValueError(f"secret {name} not readable: {type(e).__name__}: {str(e)[:200]}") from None
    with _secrets_lock:
        _secrets[name] = (value, time.monotonic())
    return value


def publish(kv: PublishedConfigurations, namespace: str, version: str, generation: int, text: str,
            checksum: str, key: str | None = None) -> Publication:
    """Sign `text` as generation `generation` with `key` (default: the settings' signing key) and
    compare-and-swap it in (chalicelib/kv: newest generation wins)."""
    data = text.encode()
    signature = envelope.sign(key or signing_key(), namespace, version, generation, data)
    return kv.publish(Signed(namespace, version, generation, data, signature))


def current(kv: PublishedConfigurations, namespace: str, version: str) -> tuple[str, int] | None:
    """(configuration text, generation) as the KV store holds them, or None (also for a version
    no key can have)."""
    try:
        held = kv.read([namespace], version).get(namespace, Held())
    except ValueError:  # a version (from a URL) that names no key: nothing is published there
        return None
    if held.configuration is None:
        return None
    return held.configuration.decode(), held.generation or 0


def render_namespace(store, namespace: str, targets: RouteTargets, settings: Settings | None = None):
    """(snapshot, rendered) for the namespace as the store holds it now."""
    # The renderer compiles conditions with the DSL (pydantic, jinja2): only when rendering, not
    # on the cold-start path of every module that publishes.
    from chalicelib.gateways import haproxy, spec

    s = settings or current_settings()
    snap = snapshot.read(store, namespace)
    specs = spec.from_documents(snap.gateways, snap.lookup)
    options = haproxy.Options(bind=s.gateway_bind, virtual_hosts_port=s.virtual_hosts_port,
                              external=_egress_checked)
    options = replace(options, instances=targets(store, namespace, snap.gateways, options.loopback))
    rendered = haproxy.render(namespace, specs, options)
    return snap, rendered


def _egress_checked(host: str, port: int) -> str:
    """External routes are checked again at every render (docs/decisions/0025): the policy may
    have narrowed since the gateway was stored. An address is written in its canonical form."""
    from chalicelib.gateways import egress
    from chalicelib.gateways.acl import RenderError

    try:
        return egress.route_address(host)
    except egress.Refused as refused:
        raise RenderError(str(refused)) from None


def publish_namespace(store, namespace: str, targets: RouteTargets, settings: Settings | None = None):
    """Render the namespace from a consistent read and publish it; (snapshot, Publication).
    Superseded by a generation the store has not reached, it fences (see `_fence`) and renders
    again."""
    s = settings or current_settings()
    kv = configurations(s)
    for _ in range(FENCES + 1):
        snap, rendered = render_namespace(store, namespace, targets, s)
        result = publish(kv, namespace, s.haproxy_version, snap.generation, rendered.text, rendered.checksum,
                         key=signing_key(s))
        log.info("namespace %s generation %d: %s (%s)", namespace, snap.generation, result.status, rendered.checksum)
        if result.status != "superseded" or not _fence(store, namespace, result.held):
            break
    return snap, result


def _fence(store, namespace: str, held: int | None) -> bool:
    """After etcd answered `held` (>= our generation): True when the store is behind it, and is
    now moved past it (by us or by someone else) so a render is due.

    Generations are committed to the store before anyone publishes them and the store never goes
    back, so a consistent read made after etcd's is >= anything etcd holds. Less means the store
    went back (restored from an older snapshot, or rebuilt): then etcd's number is stale and the
    store's state is the one to serve. The generation item is moved to held + 1 by a write
    conditional on the generation read (the one the gateway write path makes), so it is ordered
    with every other writer: one that commits after it publishes a newer generation still."""
    if held is None:
        return False
    stored = snapshot.generation(store, namespace)
    if stored >= held:  # an ordinary race: the publisher of `stored` publishes what is newest
        return False
    log.warning("namespace %s: etcd holds generation %d, the store %d (restored or rebuilt?): "
                "moving the store's generation to %d and publishing from the store", namespace, held, stored, held + 1)
    try:
        store.apply(namespace, [snapshot.generation_write(namespace, stored, held + 1)])
    except Conflict:
        pass  # another writer moved it first: render again and let the generations decide
    return True


def republish_if_behind(store, namespace: str, targets: RouteTargets, settings: Settings | None = None,
                        held: Held | None = None) -> str:
    """Publish the namespace again when the KV store's generation is not the store's: older (a
    write made while etcd was away is published by the next scheduled pass, not only by the next
    write), or newer (the store went back: publish_namespace fences); or when its signature is
    not the current key's (sign again: rotation). Cheap when up to date: one read of the
    generation item, what the KV store holds (`held`, when the caller read it already), no
    rendering."""
    s = settings or current_settings()
    wanted = snapshot.generation(store, namespace)
    version = s.haproxy_version
    if held is None:
        held = configurations(s).read([namespace], version).get(namespace, Held())
    # None (nothing, or garbage): publish a real one. A signature that is not the current key's
    # (rotated, or written before signing) is made again: agents would refuse it.
    if held.generation == wanted and held.signature.decode(errors="replace") == envelope.sign(
            signing_key(s), namespace, version, held.generation, held.configuration or b""):
        return "current"
    return publish_namespace(store, namespace, targets, s)[1].status


def republish_all(store, targets: RouteTargets) -> dict[str, str]:
    """The scheduled pass: every namespace that has had gateways, checked against ONE read of
    what the KV store holds for all of them (through the publisher function: one invocation a
    pass); an error is reported per namespace, never raised (the next pass tries again)."""
    s = current_settings()
    if not publishing(s):
        return {}
    names = namespaces.registered("gateways")
    if not names:
        return {}
    try:
        held = configurations(s).read(names, s.haproxy_version)
    except Exception as e:  # noqa: BLE001 - etcd (or the publisher function) away: the next pass
        log.warning("gateways not republished: %s", e)
        return {ns: f"error: {e}" for ns in names}
    out = {}
    for namespace in names:
        try:
            out[namespace] = republish_if_behind(store, namespace, targets, s, held=held.get(namespace, Held()))
        except Exception as e:  # noqa: BLE001 - etcd away: the next pass
            log.warning("namespace %s: not republished: %s", namespace, e)
            out[namespace] = f"error: {e}"
    return out
