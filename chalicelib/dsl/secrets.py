"""Secrets in documents: references to SSM parameters and Secrets Manager secrets inside
environment values, and the redaction of what must never reach an archive event or an error
message (docs/decisions/0025-egress-policy.md).

An environment value stays a string, as in Vamp; a secret is named with Vamp's own `${...}`
reference syntax, alone or inside a longer value:

    DB_PASSWORD: ${ssm:/shop/db/password}                           # SecureString, decrypted
    DB_URL: postgres://shop:${secretsmanager:shop/db#password}@db/shop # a key of a JSON secret
    API_KEY: ${secretsmanager:arn:aws:secretsmanager:eu-west-1:123456789012:secret:api-AbCdEf}

The store and the archive keep the reference; the value is read at deploy time
(chalicelib/deployments/secrets.py) and handed to the driver only.
"""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

REDACTED = "<redacted>"

SSM, SECRETS_MANAGER = "ssm", "secretsmanager"
_SECRET_PREFIX = re.compile(r"^(ssm|secretsmanager):")
_SSM_NAME = re.compile(r"^[A-Za-z0-9_.\-/:]{1,2048}$")
_SECRET_ID = re.compile(r"^[A-Za-z0-9/_+=.@\-:]{1,2048}$")
_JSON_KEY = re.compile(r"^[A-Za-z0-9_.\-]{1,256}$")
# `$x`, `${...}` and `$$` as environment values write them (dsl/breed.value_references).
_VALUE_REF = re.compile(r"\$(\$|\{([^}$]*)\}|([A-Za-z0-9_\-.]*[A-Za-z0-9_\-]))")
# Where documents hold environment values, and keys whose values are credentials wherever they are.
# (`environment`, and `env` lists of {name, value}: dialects, as Kubernetes and ECS write them.)
ENVIRONMENT_KEYS = frozenset({"environment_variables", "env", "environment"})
_SECRET_KEY = re.compile(r"(pass|secret|token|key|credential|auth|private|signature)", re.IGNORECASE)


def is_secret_reference(ref: str) -> bool:
    """`ssm:...` or `secretsmanager:...`: what a `${...}` names when it names a secret."""
    return bool(_SECRET_PREFIX.match(ref))


def parse_secret_reference(ref: str) -> tuple[str, str, str | None]:
    """(service, name or ARN, JSON key or None); ValueError with the reason (which never
    repeats the reference: a malformed one may be a value someone meant literally)."""
    service, _, rest = ref.partition(":")
    if service == SSM:
        if not _SSM_NAME.fullmatch(rest):
            raise ValueError("invalid secret reference: ${ssm:<parameter name or ARN>}")
        return SSM, rest, None
    if service == SECRETS_MANAGER:
        name, hash_, key = rest.partition("#")
        if not _SECRET_ID.fullmatch(name) or (hash_ and not _JSON_KEY.fullmatch(key)):
            raise ValueError("invalid secret reference: ${secretsmanager:<name or ARN>[#<JSON key>]}")
        return SECRETS_MANAGER, name, key or None
    raise ValueError("invalid secret reference: ${ssm:...} or ${secretsmanager:...}")


def secret_references(value: str) -> list[str]:
    """The secret references inside an environment value (an escaped `$${...}` is none)."""
    return [m.group(2) for m in _VALUE_REF.finditer(value)
            if m.group(1) != "$" and m.group(2) is not None and is_secret_reference(m.group(2))]


def check_environment_value(value: Any) -> Any:
    """The DSL's check of an environment value: its secret references are well formed."""
    if isinstance(value, str):
        for ref in secret_references(value):
            parse_secret_reference(ref)
    return value


# A reference that is plainly one (a dependency's host, port, variable or constant): a bare
# `$word` is a constant's name in Vamp, but as easily the tail of a password: never shown.
_PLAIN_REF = re.compile(r"^[^\s.$]+\.(host|ports\.[^\s.]+|environment_variables\.[^\s.]+|constants\.[^\s.]+)$")


def shows_no_secret(ref: str) -> bool:
    """A reference (what `${...}` names) that may appear in an archive or an error message."""
    return is_secret_reference(ref) or bool(_PLAIN_REF.fullmatch(ref))


def is_only_references(value: str) -> bool:
    """A value made of nothing but such references (`$db.host`, `${ssm:/x}`): it holds no secret
    of its own, so the archive may keep it."""
    refs = list(_VALUE_REF.finditer(value))
    return (bool(refs) and _VALUE_REF.sub("", value) == ""
            and all(m.group(1) != "$" and shows_no_secret(m.group(2) or m.group(3)) for m in refs))


# -- redaction -------------------------------------------------------------------------------

def redact_value(value: Any) -> Any:
    if value is None or (isinstance(value, str) and is_only_references(value)):
        return value
    return REDACTED


def redact_url(url: Any) -> Any:
    """A webhook URL without its credentials: user info and every query value redacted."""
    if not isinstance(url, str):
        return url
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
        query = "&".join(f"{quote(k, safe='')}={REDACTED}" for k, _ in parse_qsl(parts.query, keep_blank_values=True))
        return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    except ValueError:
        return REDACTED


def redact(document: Any) -> Any:
    """A copy of a document (any kind, inline artifacts included) safe for an archive event:
    every environment value (unless it is only references), webhook URLs' credentials, and the
    values of webhook metadata whose keys name a credential."""
    if isinstance(document, list):
        return [redact(item) for item in document]
    if not isinstance(document, dict):
        return document
    out = {}
    for key, value in document.items():
        if key in ENVIRONMENT_KEYS and isinstance(value, dict):
            out[key] = {k: redact_value(v) for k, v in value.items()}
        elif key in ENVIRONMENT_KEYS and isinstance(value, list):
            out[key] = [{**v, "value": redact_value(v["value"])} if isinstance(v, dict) and "value" in v
                        else redact(v) for v in value]
        elif key == "webhooks" and isinstance(value, list):
            out[key] = [_redact_hook(h) for h in value]
        else:
            out[key] = redact(value)
    return out


def _redact_hook(hook: Any) -> Any:
    if not isinstance(hook, dict):
        return hook
    out = {**hook}
    if "url" in out:
        out["url"] = redact_url(out["url"])
    if isinstance(out.get("metadata"), dict):
        out["metadata"] = {k: (REDACTED if _SECRET_KEY.search(str(k)) else v) for k, v in out["metadata"].items()}
    return out
