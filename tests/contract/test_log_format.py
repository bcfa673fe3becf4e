"""The log contract shared with the renderer: names, the log-format, and HAProxy accepting it."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.contract.log_format import (
    GLOBAL_LOG_LINE,
    LOG_FIELDS,
    LOG_FORMAT,
    LOG_FORMAT_LINE,
    LOG_SOCKET_ENV,
    backend_name,
    decode_name,
    encode_name,
    frontend_name,
    gateway_route,
)

HAPROXY_SAFE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-")


@given(st.text(max_size=60))
def test_encode_decode_round_trip_and_alphabet(name):
    encoded = encode_name(name)
    assert decode_name(encoded) == name
    assert set(encoded) <= HAPROXY_SAFE - {"."}  # "." stays free to separate the parts


@pytest.mark.parametrize("name, encoded", [
    ("sava/9050", "sava__9050"),
    ("sava/sava:1.0.0/webport", "sava__sava:1_2E0_2E0__webport"),
    ("a_b", "a_5Fb"),
    ("héllo", "h_C3_A9llo"),
    ("~%", "_7E_25"),
])
def test_encoding_examples(name, encoded):
    assert encode_name(name) == encoded


@pytest.mark.parametrize("bad", ["a_", "a_4", "a_zz", "a.b", "a/b", "_2e"])
def test_decode_refuses_what_encode_cannot_produce(bad):
    with pytest.raises(ValueError):
        decode_name(bad)


def test_gateway_and_route_from_proxy_names():
    g, r = "sava/9050", "sava/sava:1.0.0/webport"
    assert frontend_name(g) == "gw.sava__9050"
    assert backend_name(g, r) == "rt.sava__9050.sava__sava:1_2E0_2E0__webport"
    assert gateway_route(frontend_name(g), backend_name(g, r)) == (g, r)
    assert gateway_route(frontend_name(g), frontend_name(g)) == (g, None)  # HAProxy answered itself
    assert gateway_route("stats", "stats") == (None, None)
    assert gateway_route("gw.x", "rt.bad_zz.r") == ("x", None)


def test_log_format_names_every_field_once():
    names = [n for n, _ in LOG_FIELDS]
    assert names == ["client_ip", "client_port", "timestamp", "frontend", "backend", "server", "Tq", "Tw", "Tc",
                     "Tr", "Tt", "status", "bytes_read", "termination_state", "actconn", "feconn", "beconn",
                     "srv_conn", "retries", "srv_queue", "backend_queue", "request"]
    assert "'" not in LOG_FORMAT and LOG_FORMAT_LINE == f"log-format '{LOG_FORMAT}'"
    assert "${" + LOG_SOCKET_ENV + "}" in GLOBAL_LOG_LINE


def test_sample_line_is_json():
    # What HAProxy makes of the format, with representative values substituted.
    values = {"%ci": "127.0.0.1", "%cp": "5000", "%Ts.%ms": "1700000000.123", "%f": "gw.a", "%b": "rt.a.b",
              "%s": "s1", "%{+Q}r": '"GET / HTTP/1.1"', "%ts": "--", "%rc": "+1"}
    values.update((spec, "-1") for spec in ("%Tq", "%Tw", "%Tc", "%Tr", "%Tt", "%ST", "%B", "%ac", "%fc", "%bc",
                                             "%sc", "%sq", "%bq"))
    line = LOG_FORMAT
    for spec in sorted(values, key=len, reverse=True):  # "%sc" before "%s"
        line = line.replace(spec, values[spec])
    assert json.loads(line)["retries"] == "+1"


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("haproxy"), reason="haproxy not installed")
def test_haproxy_accepts_the_log_configuration(tmp_path):
    cfg = tmp_path / "h.cfg"
    cfg.write_text("\n".join([
        "global", f"    {GLOBAL_LOG_LINE}", "defaults", "    mode http", "    log global", f"    {LOG_FORMAT_LINE}",
        "    timeout connect 1s", "    timeout client 1s", "    timeout server 1s",
        f"frontend {frontend_name('sava/9050')}", "    bind 127.0.0.1:18999",
        f"    default_backend {backend_name('sava/9050', 'sava/sava:1.0.0/webport')}",
        f"backend {backend_name('sava/9050', 'sava/sava:1.0.0/webport')}", "    server s1 127.0.0.1:1", ""]))
    done = subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True, text=True,
                          env={**os.environ, LOG_SOCKET_ENV: str(tmp_path / "log.sock")})
    assert done.returncode == 0, done.stderr
