"""Reading the secrets environment values reference (`${ssm:...}`, `${secretsmanager:...}`,
chalicelib/dsl/secrets.py) when a service is deployed, for every driver: synchronisation builds
the driver's spec with them (sync.service_spec), so the store and the archive only ever hold the
reference.

A spec's digest must not become a hash of a password (it is stored in the deployment, and in
Kubernetes annotations and ECS tags): `seal` gives the environment as the digest sees it, each
secret value replaced by its reference and version, so a rotated secret (a new version) is
redeployed and nothing of its value is in the digest.
"""
from __future__ import annotations

import json
from typing import Any

from chalicelib.deployments.environment import EnvironmentError_
from chalicelib.dsl.secrets import REDACTED, parse_secret_reference


class SecretSource:
    """Secret values by reference, each read once (one source per synchronisation of a
    deployment). `clients`: service name -> boto3 client (default: chalicelib.aws's)."""

    def __init__(self, clients: dict[str, Any] | None = None):
        self._clients = dict(clients or {})
        self._read: dict[str, tuple[str, str]] = {}  # reference -> (value, version)
        self._arns: dict[str, str] = {}  # reference -> the secret's or parameter's ARN, when known

    def _client(self, service: str):
        if service not in self._clients:
            from chalicelib import aws  # boto3 clients: only when a secret is read

            self._clients[service] = aws.client(service)
        return self._clients[service]

    def __call__(self, ref: str) -> str:
        if ref not in self._read:
            self._read[ref] = self._fetch(ref)
        return self._read[ref][0]

    def _fetch(self, ref: str) -> tuple[str, str]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            service, name, key = parse_secret_reference(ref)
        except ValueError as e:
            raise EnvironmentError_(str(e)) from None
        from chalicelib import aws  # boto3: only when a secret is read

        try:
            value, version, arn = aws.read_secret_and_arn(service, name, self._client(service))
        except ClientError as e:  # the code only: AWS messages may quote what was asked
            raise EnvironmentError_(f"secret ${{{ref}}}: {e.response.get('Error', {}).get('Code', 'error')}") from None
        except BotoCoreError as e:
            raise EnvironmentError_(f"secret ${{{ref}}}: {type(e).__name__}") from None
        if value is None:
            raise EnvironmentError_(f"secret ${{{ref}}}: a binary secret (only strings are environment values)")
        if arn:
            self._arns[ref] = arn
        if key is None:
            return value, version
        try:
            field = json.loads(value)[key]
        except (ValueError, TypeError, KeyError):
            raise EnvironmentError_(f"secret ${{{ref}}}: not a JSON object with the key {key!r}") from None
        return (field if isinstance(field, str) else json.dumps(field)), version

    @property
    def used(self) -> bool:
        return bool(self._read)

    def seal(self, env: dict[str, str]) -> dict[str, str]:
        """`env` as a digest may see it: every secret value replaced by `${<ref>@<version>}`."""
        ordered = sorted(self._read.items(), key=lambda item: -len(item[1][0]))
        out = {}
        for name, value in env.items():
            for ref, (secret, version) in ordered:
                if secret:
                    value = value.replace(secret, f"${{{ref}@{version}}}")
            out[name] = value
        return out

    def value_sources(self, env: dict[str, str]) -> dict[str, str]:
        """The variables of `env` whose whole value is one secret read here, each as the
        reference ECS's `secrets` field takes (`valueFrom`), so the value need not be in a task
        definition: a parameter's ARN; a secret's ARN with its JSON key and version id
        (`<arn>:<key>::<version>`: exactly the version the digest holds). A reference inside a
        longer value has no such form and stays a value (docs/decisions/0038)."""
        out = {}
        for name, sealed in self.seal(env).items():
            if not (sealed.startswith("${") and sealed.endswith("}")):
                continue
            ref, _, version = sealed[2:-1].rpartition("@")
            arn = self._arns.get(ref)
            if arn is None or ref not in self._read or self._read[ref][1] != version:
                continue
            service, _, key = parse_secret_reference(ref)
            out[name] = arn if service != "secretsmanager" else f"{arn}:{key or ''}::{version}"
        return out

    def scrub(self, text: str | None) -> str | None:
        """A reason (a driver's error, a status) without any secret value read here."""
        if not text:
            return text
        for secret, _ in sorted(self._read.values(), key=lambda item: -len(item[0])):
            if len(secret) >= 3:
                text = text.replace(secret, REDACTED)
        return text
