"""Units of the DSL and their canonical forms.

percent: "NN%" (an int 0..100, written "NN%"); memory: MB/GB/KB (x1000) or Ki/Mi/Gi (x1024),
normalised to MB (a float, written "<n>MB"); cpu: a number or "500m" (cores, a float); time:
10s/1m/1h and the long spellings, normalised to whole seconds (written "<n>s").
"""
from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

_NUMBER = r"(\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)"
# Matched on the value with its outer spaces stripped: ` *(\d+) *%? *` has two ` *` side by side
# (when `%` is absent), and backtracking between them made "1" + 40,000 spaces + "x" quadratic.
# No two adjacent repeats here can take the same character (tests/dsl/test_linear_regexes.py).
_PERCENT_RE = re.compile(r"^(\d+) *%?$")
_MEMORY_RE = re.compile(rf"^{_NUMBER} *([a-zA-Z]*)$")
_CPU_RE = re.compile(rf"^{_NUMBER} *(m?)$")
_TIME_RE = re.compile(r"^(\d+) *([a-zA-Z]*)$")
# Units upper bounds no real cluster reaches (docs/decisions/0024): 10^100 instances or cores
# used to be stored, then handed to a driver.
MAX_CPU = 1024.0  # cores
MAX_MEMORY = 16 * 1024 * 1024.0  # MB: 16 TiB

_MEMORY_FACTORS = {
    "": 1.0, "m": 1.0, "mb": 1.0, "k": 1e-3, "kb": 1e-3, "g": 1e3, "gb": 1e3,
    "ki": 1 / 1024, "kib": 1 / 1024, "mi": 1.0, "mib": 1.0, "gi": 1024.0, "gib": 1024.0,
}
_TIME_FACTORS = {
    "": 1, "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
}


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _shown(value: object) -> str:
    """The value as a reason quotes it; a 5,000-digit integer has no repr (Python's limit)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**18:
        return "a number that large"
    return repr(value)


def parse_percent(value: object) -> int:
    """"90%", "90" or 90 -> 90; whole percentages 0..100 only (Vamp's Percentage is an int)."""
    if _is_number(value):
        # JSON's 1e400 is float inf and int(inf) an OverflowError (a 500); NaN and huge floats
        # are refused here with the same words as any other number out of range.
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"invalid percentage {value!r}: a whole number 0..100 followed by %")
        if not 0 <= value <= 100:
            raise ValueError(f"percentage {_shown(value)} out of range 0..100%")
        if value != int(value):
            raise ValueError(f"invalid percentage {value!r}: a whole number 0..100 followed by %")
        number = int(value)
    elif isinstance(value, str) and (m := _PERCENT_RE.fullmatch(value.strip(" "))):
        number = int(m.group(1))
    else:
        raise ValueError(f"invalid percentage {value!r}: a whole number 0..100 followed by %")
    if not 0 <= number <= 100:
        raise ValueError(f"percentage {value!r} out of range 0..100%")
    return number


def format_percent(value: int) -> str:
    return f"{value}%"


def _finite(number: float, what: str, original: object, allow_zero: bool = False, maximum: float = math.inf,
            unit: str = "") -> float:
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        raise ValueError(f"invalid {what} {original!r}: must be a positive number")
    if number > maximum:
        raise ValueError(f"{what} {original!r} is more than {format_number(maximum)}{unit}")
    return number


def parse_memory(value: object, allow_zero: bool = False) -> float:
    """Memory in MB: 256MB, 1GB (x1000), 512Mi, 1Gi (x1024), 1024KB, or a bare number of MB."""
    if _is_number(value):
        return _finite(float(value), "memory", value, allow_zero, MAX_MEMORY, "MB (16 TiB)")
    if isinstance(value, str) and (m := _MEMORY_RE.fullmatch(value.strip(" "))):
        factor = _MEMORY_FACTORS.get(m.group(2).lower())
        if factor is not None:
            return _finite(float(m.group(1)) * factor, "memory", value, allow_zero, MAX_MEMORY, "MB (16 TiB)")
    raise ValueError(f"invalid memory {value!r}: e.g. 256MB, 1GB, 512Mi, 1Gi")


def format_number(value: float) -> str:
    """The shortest text that reads back as the same float (repr), without a useless `.0`."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def format_memory(value: float) -> str:
    return f"{format_number(value)}MB"


def parse_cpu(value: object, allow_zero: bool = False) -> float:
    """CPU in cores: 0.5, "0.5" or "500m"."""
    if _is_number(value):
        return _finite(float(value), "cpu", value, allow_zero, MAX_CPU, " cores")
    if isinstance(value, str) and (m := _CPU_RE.fullmatch(value.strip(" "))):
        number = float(m.group(1)) / (1000 if m.group(2) else 1)
        return _finite(number, "cpu", value, allow_zero, MAX_CPU, " cores")
    raise ValueError(f"invalid cpu {value!r}: a number of cores or millicores like 500m")


def parse_time(value: object) -> int:
    """Whole seconds: 10, "10s", "1m", "1h", "2 minutes", ..."""
    if isinstance(value, int) and not isinstance(value, bool):
        number, factor = value, 1
    elif isinstance(value, str) and (m := _TIME_RE.fullmatch(value.strip(" "))):
        number, factor = int(m.group(1)), _TIME_FACTORS.get(m.group(2).lower())
    else:
        factor = None
    if factor is None or number < 0:
        raise ValueError(f"invalid time {value!r}: e.g. 10s, 1m, 1h")
    return number * factor


def format_time(value: int) -> str:
    return f"{value}s"


Percent = Annotated[int, BeforeValidator(parse_percent), PlainSerializer(format_percent, return_type=str)]
Memory = Annotated[float, BeforeValidator(parse_memory), PlainSerializer(format_memory, return_type=str)]
Cpu = Annotated[float, BeforeValidator(parse_cpu)]
Duration = Annotated[int, BeforeValidator(parse_time), PlainSerializer(format_time, return_type=str)]


_PORT_RE = re.compile(r"^(\d+) *(?:/ *([a-zA-Z]+))?$")  # on the value without its outer spaces


def parse_port(value: object) -> str:
    """8080, "8080", "8080/http", "9023/tcp" -> canonical "8080/http" (`/http` is the default)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    m = _PORT_RE.fullmatch(value.strip(" ")) if isinstance(value, str) else None
    if m:
        number, kind = int(m.group(1)), (m.group(2) or "http").lower()
        if 1 <= number <= 65535 and kind in ("http", "tcp"):
            return f"{number}/{kind}"
    raise ValueError(f"invalid port {value!r}: a number 1..65535 with an optional /http or /tcp")


def port_number(port: str) -> int:
    return int(port.split("/")[0])


def port_type(port: str) -> str:
    return port.split("/")[1]


Port = Annotated[str, BeforeValidator(parse_port)]
