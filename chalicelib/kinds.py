"""The artifact kinds the API stores, by their plural names (Vamp's URLs), without importing
the DSL models: read paths must not pay for building them (Lambda cold start)."""
from __future__ import annotations

from chalicelib.errors import FieldError, NotFound, ValidationFailed

KINDS = (
    "breeds", "blueprints", "scales", "slas", "escalations", "routes",
    "conditions", "rewrites", "workflows", "gateways", "templates", "release-policies",
)
# Vamp answers 202 for kinds whose change sets something in motion.
ACCEPTED_KINDS = frozenset({"gateways", "workflows"})
_SINGULAR = {k[:-1]: k for k in KINDS} | {"release-policy": "release-policies"}


def normalize_kind(kind: str) -> str:
    """'breed' or 'breeds' -> 'breeds'; anything else is a 400."""
    if not isinstance(kind, str):
        raise ValidationFailed.at("kind", "must be a string")
    k = kind.strip().lower()
    if k in KINDS:
        return k
    if k in _SINGULAR:
        return _SINGULAR[k]
    raise ValidationFailed.at("kind", f"unknown kind '{kind}': one of {', '.join(KINDS)}")


def kind_in_path(kind: str) -> str:
    """A kind named by the URL: unknown ones are a 404, as for any path that is not there."""
    try:
        return normalize_kind(kind)
    except ValidationFailed:
        raise NotFound(f"unknown kind {kind}", [FieldError("kind", f"one of {', '.join(KINDS)}")]) from None
