"""API tokens: created once (shown once), stored only as a SHA-256 hash, revoked by name.

The same `authenticate` runs in the Chalice authorizer on API Gateway and in the local
stack, so a request without a valid token gets 401 everywhere.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

from chalicelib.errors import Conflict, FieldError, NotFound, ValidationFailed
from chalicelib.store import table

PARTITION = "#tokens"
TOKEN_PREFIX = "vamp_"
TOKEN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


@dataclass(frozen=True)
class Principal:
    name: str
    created: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


class TokenStore:
    def __init__(self) -> None:
        self._ddb = table.client()
        self._table = table.table_name()

    def authenticate(self, token: str | None) -> Principal | None:
        if not token or len(token) > 200:
            return None
        digest = hash_token(token)
        item = self._ddb.get_item(
            TableName=self._table, Key={"pk": {"S": PARTITION}, "sk": {"S": digest}}, ConsistentRead=True
        ).get("Item")
        # Compare again in constant time: the key lookup alone would leak nothing useful,
        # but the check keeps a corrupted item from matching.
        if not item or not hmac.compare_digest(item["sk"]["S"], digest):
            return None
        return Principal(item["name"]["S"], item["created"]["S"])

    def create(self, name: str, token: str | None = None) -> tuple[str, Principal]:
        """Store a token under `name`; a new random one unless `token` is given (bootstrap)."""
        if not isinstance(name, str) or not TOKEN_NAME.match(name):
            raise ValidationFailed.at("name", "1-64 characters: letters, digits, _ . @ -, starting with a letter or digit")
        if token is not None and len(token) < 16:
            raise ValidationFailed.at("token", "at least 16 characters")
        if any(p.name == name for p in self.list()):
            raise Conflict(f"a token named {name} exists", [FieldError("name", "already exists")])
        token = token or TOKEN_PREFIX + secrets.token_urlsafe(32)
        created = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item={"pk": {"S": PARTITION}, "sk": {"S": hash_token(token)}, "name": {"S": name}, "created": {"S": created}},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self._ddb.exceptions.ConditionalCheckFailedException:
            raise Conflict("this token is already registered", [FieldError("token", "already exists")]) from None
        return token, Principal(name, created)

    def ensure(self, name: str, token: str) -> Principal:
        """Register `token` unless it already is (local bootstrap from VAMP_API_TOKEN)."""
        found = self.authenticate(token)
        if found:
            return found
        return self.create(name, token)[1]

    def list(self) -> list[Principal]:
        out, start = [], None
        while True:
            kwargs = {
                "TableName": self._table,
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": {":pk": {"S": PARTITION}},
            }
            if start:
                kwargs["ExclusiveStartKey"] = start
            page = self._ddb.query(**kwargs)
            out += [Principal(i["name"]["S"], i["created"]["S"]) for i in page["Items"]]
            start = page.get("LastEvaluatedKey")
            if not start:
                return sorted(out, key=lambda p: p.name)

    def revoke(self, name: str) -> None:
        keys = []
        start = None
        while True:
            kwargs = {
                "TableName": self._table,
                "KeyConditionExpression": "pk = :pk",
                "FilterExpression": "#n = :name",
                "ExpressionAttributeNames": {"#n": "name"},
                "ExpressionAttributeValues": {":pk": {"S": PARTITION}, ":name": {"S": name}},
            }
            if start:
                kwargs["ExclusiveStartKey"] = start
            page = self._ddb.query(**kwargs)
            keys += [i["sk"]["S"] for i in page["Items"]]
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        if not keys:
            raise NotFound(f"no token named {name}", [FieldError("name", "not found")])
        for digest in keys:
            self._ddb.delete_item(TableName=self._table, Key={"pk": {"S": PARTITION}, "sk": {"S": digest}})
