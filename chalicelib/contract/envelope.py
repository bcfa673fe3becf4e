"""A published configuration as it travels through etcd (the keys: kv_keys.py), and its signature.

- The configuration key holds the HAProxy text itself, UTF-8, with nothing around it: the agent
  hands those bytes to HAProxy as they are (once verified), and `etcdctl get` shows the config.
- The generation key holds the namespace generation the text was rendered at, in decimal,
  zero-padded to 20 digits (byte order = numeric order, readable with etcdctl). The publisher
  compares it; the agent reports it back as the generation it applied (acknowledgement.py).
- The signature key holds `v1:hmac-sha256:<key id>:<hex>`: HMAC-SHA256, under a key the control
  plane and the agents share (docs/decisions/0023), of

      b"vamp-gateway-configuration" NUL b"v1" NUL namespace NUL version NUL generation(20 digits) NUL text

  so a signed text is good for one namespace, one HAProxy version and one generation only:
  written under another namespace's keys, or next to another generation (an older one replayed,
  or the same text moved to a generation it was not signed at), it no longer verifies. The agent
  verifies before anything else (before `haproxy -c`) and applies nothing that fails; it also
  refuses a generation older than the one it serves (a replay of a text that was once good). The
  publisher writes all three keys in one transaction (only generation and signature when the
  text is unchanged), so a reader sees a matching triple.
- The key id is the first 12 hex digits of SHA-256 over a fixed prefix and the key: it names the
  key a signature was made with (rotation: agents may hold several keys), and says nothing
  about the key itself.
- The checksum, "sha256:<hex>" of the text's bytes, is not stored: each side computes it. The
  API reports it for every publication, the agent in /healthz for the configuration it serves,
  so anyone can check what a node runs.

Keys: text, at least KEY_MIN_LENGTH characters (e.g. `openssl rand -hex 32`). A key file holds
one key per line (blank lines and `#` comments ignored); the control plane signs with the first,
an agent accepts any (parse_keys).
"""
from __future__ import annotations

import hashlib
import hmac

SCHEME = "v1:hmac-sha256"
KEY_MIN_LENGTH = 32
_DOMAIN = (b"vamp-gateway-configuration", b"v1")  # what a signature is of, and its version


class SignatureRefused(ValueError):
    """A configuration whose signature does not verify; str() is the reason, for the node's report."""


def checksum(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return "sha256:" + hashlib.sha256(data).hexdigest()


def format_generation(generation: int) -> str:
    return f"{generation:020d}"


def parse_generation(raw: bytes) -> int | None:
    """The generation a generation key holds; None when it is empty or not a number."""
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


def parse_keys(text: str) -> tuple[str, ...]:
    """The keys of a key file or setting: one a line, blank lines and `#` comments ignored.
    ValueError when there is none or one is too short to be a secret."""
    keys = tuple(line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#"))
    if not keys:
        raise ValueError("no signing key in it")
    for key in keys:
        if len(key) < KEY_MIN_LENGTH:
            raise ValueError(f"a signing key must be at least {KEY_MIN_LENGTH} characters (openssl rand -hex 32)")
    return keys


def key_id(key: str) -> str:
    return hashlib.sha256(b"vamp-gateway-key-id\0" + key.encode()).hexdigest()[:12]


def signed_message(namespace: str, version: str, generation: int, data: bytes) -> bytes:
    return b"\0".join((*_DOMAIN, namespace.encode(), version.encode(), format_generation(generation).encode(), data))


def sign(key: str, namespace: str, version: str, generation: int, data: bytes) -> str:
    mac = hmac.new(key.encode(), signed_message(namespace, version, generation, data), hashlib.sha256)
    return f"{SCHEME}:{key_id(key)}:{mac.hexdigest()}"


def verify(keys: tuple[str, ...], namespace: str, version: str, generation: int | None, data: bytes,
           signature: bytes | str | None) -> str:
    """The id of the key that signed it; SignatureRefused(reason) when it does not verify."""
    if not signature:
        raise SignatureRefused("unsigned: no signature key next to the configuration")
    if generation is None:
        raise SignatureRefused("no generation next to the configuration (a signature covers one)")
    text = signature.decode("ascii", "replace") if isinstance(signature, bytes) else signature
    parts = text.strip().split(":")
    if len(parts) != 4 or ":".join(parts[:2]) != SCHEME:
        raise SignatureRefused(f"signature not in the form {SCHEME}:<key id>:<hex>")
    kid, mac = parts[2], parts[3]
    for key in keys:
        if key_id(key) == kid:
            expected = sign(key, namespace, version, generation, data).rsplit(":", 1)[1]
            if hmac.compare_digest(expected, mac):
                return kid
            raise SignatureRefused(f"bad signature (key {kid}): not signed by the control plane for namespace "
                                   f"{namespace}, version {version}, generation {generation}")
    raise SignatureRefused(f"signed with a key this node does not hold (key id {kid})")
