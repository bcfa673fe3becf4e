"""A published configuration as it travels through etcd (the keys: kv_keys.py).

- The configuration key holds the HAProxy text itself, UTF-8, with nothing around it: the agent
  hands those bytes to HAProxy as they are.
- The generation key holds the namespace generation the text was rendered at, in decimal,
  zero-padded to 20 digits (byte order = numeric order, readable with etcdctl). The publisher
  compares it; the agent reports it back as the generation it applied (acknowledgement.py).
- The checksum, "sha256:<hex>" of the text's bytes, is not stored: each side computes it. The
  API reports it for every publication, the agent in /healthz for the configuration it serves,
  so anyone can check what a node runs.
"""
from __future__ import annotations

import hashlib


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
