from __future__ import annotations

import pytest

from chalicelib.dsl.names import check_gateway_name, check_name
from chalicelib.dsl.units import (
    format_memory,
    parse_cpu,
    parse_memory,
    parse_percent,
    parse_port,
    parse_time,
)


@pytest.mark.parametrize("text, expected", [("90%", 90), ("0%", 0), ("100%", 100), (" 5 % ", 5), (50, 50), ("7", 7)])
def test_percent(text, expected):
    assert parse_percent(text) == expected


@pytest.mark.parametrize("text", ["101%", "-1%", "12.5%", "abc", True, None, 12.5, "%"])
def test_percent_rejected(text):
    with pytest.raises(ValueError):
        parse_percent(text)


@pytest.mark.parametrize(
    "text, mb",
    [
        ("256MB", 256), ("256mb", 256), ("256M", 256), ("1GB", 1000), ("1.5GB", 1500), ("1024KB", 1.024),
        ("512Mi", 512), ("1Gi", 1024), ("2Gi", 2048), ("1024Ki", 1), (128, 128), (0.5, 0.5), ("1e-05MB", 1e-05),
    ],
)
def test_memory(text, mb):
    assert parse_memory(text) == pytest.approx(mb)


@pytest.mark.parametrize("text", ["256XB", "-1MB", "0MB", "MB", "", True, "1 TB", "nanMB", "infMB"])
def test_memory_rejected(text):
    with pytest.raises(ValueError):
        parse_memory(text)


@pytest.mark.parametrize("mb", [256.0, 0.0009765625, 1e-05, 1024.0, 0.1 + 0.2, 12345678.123])
def test_memory_format_reads_back(mb):
    assert parse_memory(format_memory(mb)) == mb


@pytest.mark.parametrize("text, cores", [(0.2, 0.2), (1, 1.0), ("500m", 0.5), ("0.25", 0.25), ("1500m", 1.5)])
def test_cpu(text, cores):
    assert parse_cpu(text) == pytest.approx(cores)


@pytest.mark.parametrize("text", ["0", "-1", "abc", "5k", True, "500 mm"])
def test_cpu_rejected(text):
    with pytest.raises(ValueError):
        parse_cpu(text)


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("10s", 10), ("1m", 60), ("1h", 3600), (30, 30), ("5", 5), ("2 sec", 2), ("1 second", 1), ("3 seconds", 3),
        ("2min", 120), ("1 minute", 60), ("2 minutes", 120), ("2hrs", 7200), ("1 hour", 3600), ("2 hours", 7200),
    ],
)
def test_time(text, seconds):
    assert parse_time(text) == seconds


@pytest.mark.parametrize("text", ["10x", "1.5s", "-1s", "s", True, None, 1.5])
def test_time_rejected(text):
    with pytest.raises(ValueError):
        parse_time(text)


@pytest.mark.parametrize(
    "text, port", [("8080/http", "8080/http"), ("9023/tcp", "9023/tcp"), ("8080", "8080/http"), (8080, "8080/http"), ("80/HTTP", "80/http")]
)
def test_port(text, port):
    assert parse_port(text) == port


@pytest.mark.parametrize("text", ["0", "65536", "8080/udp", "http", "8080/", True, "80 80"])
def test_port_rejected(text):
    with pytest.raises(ValueError):
        parse_port(text)


@pytest.mark.parametrize("name", ["sava", "sava:1.0.0", "a.b-c_d", "9050", "x*"])
def test_names(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "a b", "a/b", "a[0]", "a\nb", "a\n", "a\r", "a#b", "a'b", 'a"b', "a\\b", "a{b}", "a\x00", "a" * 256])
def test_names_rejected(name):
    with pytest.raises(ValueError):
        check_name(name)


def test_dotless_names():
    assert check_name("webport", dotless=True) == "webport"
    with pytest.raises(ValueError):
        check_name("web.port", dotless=True)


@pytest.mark.parametrize("name", ["a", "a/b", "d/c/p", "d/c/s/p"])
def test_gateway_names(name):
    assert check_gateway_name(name) == name


@pytest.mark.parametrize("name", ["a/b/c/d/e", "a//b", "/a", "a b/c", ""])
def test_gateway_names_rejected(name):
    with pytest.raises(ValueError):
        check_gateway_name(name)
