"""The etcd side of the contract, byte for byte: agents already running read these keys and values."""
from __future__ import annotations

import hashlib

from chalicelib.contract import kv_keys
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
