"""Publishing a namespace's HAProxy configuration to etcd, newest generation wins.

Three keys per namespace and HAProxy version, the configuration, its generation and its
signature (their layout and values are the contract with the agents: chalicelib/contract/
kv_keys.py, envelope.py). The signature is HMAC-SHA256 over namespace, version, generation and
text, under the key `signing_key` reads (docs/decisions/0023): agents apply nothing else.

A publisher reads the keys, stops if the stored generation is already >= its own, and otherwise
writes in ONE etcd transaction guarded by the mod_revisions it read: generation and signature
always, the configuration only when its text changed (so agents are not woken for nothing). If
anything changed in between, it reads again. Hence two Lambdas racing can never leave an older
configuration over a newer one (docs/decisions/0009-gateway-generations.md). The same
generation with the same text but another signature (the key was rotated, or the text was
written before signing) is signed again in place.

The store is the source of truth, not etcd's counter: a publisher stopped by a generation the
store has never reached (the table was restored or rebuilt) moves the store's generation past
etcd's and publishes again, so no write is dropped as "superseded" by a stale number
(docs/decisions/0019-no-lost-generation.md).
"""
from __future__ import annotations

import base64
import logging
import threading
import time
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from chalicelib.contract import envelope
from chalicelib.contract.envelope import format_generation, parse_generation
from chalicelib.contract.etcd_access import EtcdAccess
from chalicelib.contract.kv_keys import config_key, generation_key, signature_key
from chalicelib.errors import Conflict
from chalicelib.gateways import snapshot
from chalicelib.settings import Settings
from chalicelib.settings import settings as current_settings
from chalicelib.store import namespaces

if TYPE_CHECKING:
    from chalicelib.gateways.haproxy import InstanceSource

log = logging.getLogger(__name__)

ATTEMPTS = 10
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


@dataclass(frozen=True)
class Publication:
    status: str  # "published" (text written), "unchanged" (same text, generation moved on), "superseded"
    generation: int
    checksum: str
    held: int | None = None  # superseded: the generation etcd holds


def _b64(value: str | bytes) -> str:
    return base64.b64encode(value.encode() if isinstance(value, str) else value).decode()


def etcd_access(endpoint: str, s: Settings | None = None) -> EtcdAccess:
    """How to reach etcd at `endpoint`: TLS and authentication from the settings."""
    s = s or current_settings()
    password = s.etcd_password
    if s.etcd_password_file:
        password = Path(s.etcd_password_file).read_text().strip()
    return EtcdAccess(endpoint, ca_file=s.etcd_ca_file, cert_file=s.etcd_cert_file, key_file=s.etcd_key_file,
                      username=s.etcd_username, password=password)


def client(endpoint: str):
    """An etcd3gw client for the endpoint ("host:port", or with its scheme), with the settings'
    TLS and authentication."""
    return _client(etcd_access(endpoint))


@lru_cache(maxsize=8)
def _client(access: EtcdAccess):
    from etcd3gw.client import Etcd3Client  # imported here: not at cold start

    etcd = Etcd3Client(**access.client_options(), api_path="/v3/", timeout=5)
    access.configure(etcd.session)
    return etcd


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


def _read(etcd, keys: list[str]) -> dict[str, tuple[bytes, int]]:
    """key -> (value, mod_revision) for the keys that exist (one range request)."""
    start, end = min(keys), max(keys)
    out = etcd.post(etcd.get_url("/kv/range"),
                    json={"key": _b64(start), "range_end": _b64(end + "\0")})
    found = {}
    for kv in out.get("kvs", []):
        key = base64.b64decode(kv["key"]).decode()
        if key in keys:
            found[key] = (base64.b64decode(kv.get("value", "")), int(kv.get("mod_revision", 0)))
    return found


def publish(etcd, namespace: str, version: str, generation: int, text: str, checksum: str,
            key: str | None = None) -> Publication:
    """Compare-and-swap `text` in as generation `generation`, signed with `key` (default: the
    settings' signing key); see the module doc."""
    ckey, gkey, skey = config_key(namespace, version), generation_key(namespace, version), signature_key(namespace, version)
    data = text.encode()
    signature = envelope.sign(key or signing_key(), namespace, version, generation, data)
    for _ in range(ATTEMPTS):
        found = _read(etcd, [ckey, gkey, skey])
        stored_text, text_rev = found.get(ckey, (None, 0))
        stored_gen, gen_rev = found.get(gkey, (b"", 0))
        stored = parse_generation(stored_gen)  # None (nothing, or garbage): ours is a real one
        resign = (stored == generation and stored_text == data
                  and found.get(skey, (b"", 0))[0] != signature.encode())
        if stored is not None and generation <= stored and not resign:
            return Publication("superseded", generation, checksum, held=stored)
        ops = [{"request_put": {"key": _b64(gkey), "value": _b64(format_generation(generation))}},
               {"request_put": {"key": _b64(skey), "value": _b64(signature)}}]
        changed = stored_text != data
        if changed:
            ops.append({"request_put": {"key": _b64(ckey), "value": _b64(data)}})
        txn = {
            "compare": [
                {"key": _b64(gkey), "target": "MOD", "result": "EQUAL", "mod_revision": gen_rev},
                {"key": _b64(ckey), "target": "MOD", "result": "EQUAL", "mod_revision": text_rev},
            ],
            "success": ops,
            "failure": [],
        }
        if etcd.transaction(txn).get("succeeded"):
            return Publication("published" if changed else "unchanged", generation, checksum)
    raise RuntimeError(f"etcd: gave up publishing {namespace} generation {generation} after {ATTEMPTS} races")


def current(etcd, namespace: str, version: str) -> tuple[str, int] | None:
    """(configuration text, generation) as etcd holds them, or None."""
    ckey, gkey = config_key(namespace, version), generation_key(namespace, version)
    found = _read(etcd, [ckey, gkey])
    if ckey not in found:
        return None
    return found[ckey][0].decode(), parse_generation(found.get(gkey, (b"", 0))[0]) or 0


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
    etcd = client(s.etcd_endpoint)
    for _ in range(FENCES + 1):
        snap, rendered = render_namespace(store, namespace, targets, s)
        result = publish(etcd, namespace, s.haproxy_version, snap.generation, rendered.text, rendered.checksum,
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


def republish_if_behind(store, namespace: str, targets: RouteTargets, settings: Settings | None = None) -> str:
    """Publish the namespace again when etcd's generation is not the store's: older (a write
    made while etcd was away is published by the next scheduled pass, not only by the next
    write), or newer (the store went back: publish_namespace fences); or when its signature is
    not the current key's (sign again: rotation). Cheap when up to date: one read of the
    generation item, one range read of the three keys, no rendering."""
    s = settings or current_settings()
    wanted = snapshot.generation(store, namespace)
    version = s.haproxy_version
    ckey, gkey, skey = config_key(namespace, version), generation_key(namespace, version), signature_key(namespace, version)
    found = _read(client(s.etcd_endpoint), [ckey, gkey, skey])
    held = parse_generation(found.get(gkey, (b"", 0))[0])
    # None (nothing, or garbage): publish a real one. A signature that is not the current key's
    # (rotated, or written before signing) is made again: agents would refuse it.
    if held == wanted and found.get(skey, (b"", 0))[0].decode(errors="replace") == envelope.sign(
            signing_key(s), namespace, version, held, found.get(ckey, (b"", 0))[0]):
        return "current"
    return publish_namespace(store, namespace, targets, s)[1].status


def republish_all(store, targets: RouteTargets) -> dict[str, str]:
    """The scheduled pass: every namespace that has had gateways; an etcd error is reported per
    namespace, never raised (the next pass tries again)."""
    if not current_settings().etcd_endpoint:
        return {}
    out = {}
    for namespace in namespaces.registered("gateways"):
        try:
            out[namespace] = republish_if_behind(store, namespace, targets)
        except Exception as e:  # noqa: BLE001 - etcd away: the next pass
            log.warning("namespace %s: not republished: %s", namespace, e)
            out[namespace] = f"error: {e}"
    return out
