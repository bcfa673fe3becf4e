"""The etcd side of the contract, byte for byte: agents already running read these keys and values."""
from __future__ import annotations

import hashlib

import pytest

from chalicelib.contract import envelope, kv_keys
from chalicelib.contract.envelope import checksum, format_generation, parse_generation


def test_key_layout():
    assert kv_keys.config_key("team-a", "2.6") == "/vamp/team-a/gateways/haproxy/2.6/configuration"
    assert kv_keys.generation_key("team-a", "2.6") == "/vamp/team-a/gateways/haproxy/2.6/generation"


def test_generations_are_20_digits_and_sort_as_numbers():
    assert format_generation(2) == "00000000000000000002"
    assert parse_generation(format_generation(2).encode()) == 2
    assert sorted(format_generation(g) for g in (10, 9, 100)) == [format_generation(g) for g in (9, 10, 100)]
    assert parse_generation(b"") is None and parse_generation(b"garbage") is None


def test_checksum_is_sha256_of_the_text_bytes():
    expected = "sha256:" + hashlib.sha256("héllo\n".encode()).hexdigest()
    assert checksum("héllo\n") == checksum("héllo\n".encode()) == expected


# -- the signature (docs/decisions/0023) ---------------------------------------------------------

KEY = "k" * 40
TEXT = b"global\n    maxconn 10\n"


def test_the_signature_key_sits_next_to_the_configuration():
    assert kv_keys.signature_key("team-a", "2.6") == "/vamp/team-a/gateways/haproxy/2.6/signature"


def test_a_signature_verifies_for_its_namespace_version_generation_and_text_only():
    signature = envelope.sign(KEY, "team-a", "2.6", 7, TEXT)
    assert signature.startswith(f"v1:hmac-sha256:{envelope.key_id(KEY)}:") and signature.isascii()
    assert envelope.verify((KEY,), "team-a", "2.6", 7, TEXT, signature.encode()) == envelope.key_id(KEY)
    for namespace, version, generation, text in (("team-b", "2.6", 7, TEXT), ("team-a", "2.8", 7, TEXT),
                                                 ("team-a", "2.6", 6, TEXT), ("team-a", "2.6", 8, TEXT),
                                                 ("team-a", "2.6", 7, TEXT + b"program x\n")):
        with pytest.raises(envelope.SignatureRefused, match="bad signature"):
            envelope.verify((KEY,), namespace, version, generation, text, signature)


def test_what_is_refused_before_any_key_is_tried():
    with pytest.raises(envelope.SignatureRefused, match="unsigned"):
        envelope.verify((KEY,), "ns", "2.6", 1, TEXT, None)
    with pytest.raises(envelope.SignatureRefused, match="no generation"):
        envelope.verify((KEY,), "ns", "2.6", None, TEXT, envelope.sign(KEY, "ns", "2.6", 1, TEXT))
    with pytest.raises(envelope.SignatureRefused, match="not in the form"):
        envelope.verify((KEY,), "ns", "2.6", 1, TEXT, b"sha256:" + b"0" * 64)
    other = envelope.sign("o" * 40, "ns", "2.6", 1, TEXT)
    with pytest.raises(envelope.SignatureRefused, match="key this node does not hold"):
        envelope.verify((KEY,), "ns", "2.6", 1, TEXT, other)
    assert envelope.verify((KEY, "o" * 40), "ns", "2.6", 1, TEXT, other)  # rotation: any key held


def test_key_files_hold_one_key_a_line_and_keys_are_long():
    assert envelope.parse_keys(f"# rotated 2026-01\n{KEY}\n\n{'o' * 40}\n") == (KEY, "o" * 40)
    for text in ("", "# nothing\n", "short\n"):
        with pytest.raises(ValueError):
            envelope.parse_keys(text)
    assert KEY not in envelope.key_id(KEY) and len(envelope.key_id(KEY)) == 12
