"""What the API takes as text, shared by the DSL's names and the body parser (which must not
import the DSL: pydantic is not paid at cold start)."""
from __future__ import annotations

import re

# What is not text in a name or a key: C0/C1 controls (Cc), the format characters (Cf: U+202E turns the
# rest of a name around on screen, U+200B hides in it), surrogates (Cs: a lone one cannot be
# encoded, and made every YAML listing of its kind fail), private use (Co) and U+FFFD (what an
# undecodable byte became). One class, so the OpenAPI pattern says exactly what the code refuses.
SURROGATES = r"\ud800-\udfff"
NOT_TEXT = (r"\x00-\x1f\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
            r"\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f" + SURROGATES + r"\ue000-\uf8ff\ufeff\ufff9-\ufffb\ufffd"
            r"\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
            r"\U000e0001\U000e0020-\U000e007f\U000f0000-\U0010ffff")
NOT_TEXT_RE = re.compile("[" + NOT_TEXT + "]")


def portable_pattern(pattern: str) -> str:
    """`pattern` as a JSON Schema (ECMA-262) pattern: those run over code points, where a lone
    surrogate cannot occur (so its range goes), and know no `\\U` escape (astral characters are
    written as themselves)."""
    pattern = pattern.replace(SURROGATES, "")
    return re.sub(r"\\U([0-9a-fA-F]{8})", lambda m: chr(int(m.group(1), 16)), pattern)
