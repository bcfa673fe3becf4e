"""Name rules of the DSL.

Vamp's rule is `^[^\\s/\\[\\]]+$` (ports and constants also without `.`). We also refuse control
characters, `#`, quotes, backslashes and braces: names end up in HAProxy backend names and
Kubernetes labels, and none of those characters has a legitimate use there (improvement over Vamp).
"""
from __future__ import annotations

import re

from chalicelib.text import NOT_TEXT

NAME_RE = re.compile(r"^[^\s/\[\]#'\"\\{}" + NOT_TEXT + "]+$")
DOTLESS_NAME_RE = re.compile(r"^[^\s/\[\].#'\"\\{}" + NOT_TEXT + "]+$")
MAX_NAME = 255


def check_name(value: object, *, dotless: bool = False, what: str = "name") -> str:
    """Return the name (ints are accepted as YAML loads `9050:` keys as ints) or raise ValueError."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string")
    rule = DOTLESS_NAME_RE if dotless else NAME_RE
    if not value or len(value) > MAX_NAME or not rule.fullmatch(value):
        extra = ", `.`" if dotless else ""
        raise ValueError(
            f"invalid {what} {value!r}: no whitespace, `/`, `[`, `]`{extra}, `#`, quotes, "
            "backslashes, braces, control or format characters, 1..255 characters"
        )
    return value


def check_gateway_name(value: object) -> str:
    """Gateway names have 1..4 `/`-separated segments (3: `deployment/cluster/port`, internal)."""
    if not isinstance(value, str):
        raise ValueError("name must be a string")
    parts = value.split("/")
    if not 1 <= len(parts) <= 4:
        raise ValueError(f"invalid gateway name {value!r}: 1 to 4 segments separated by `/`")
    for part in parts:
        check_name(part, what="gateway name segment")
    return value


