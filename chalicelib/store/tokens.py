"""API tokens: created once (shown once), stored only as a SHA-256 hash, revoked by name, each
with a role and the namespaces it may touch (docs/decisions/0022-token-roles-and-namespaces.md).

The interface (`TokenStore`) and its one backend, the single table: one item per token under
`#tokens`, the hash as sort key (layout in table.py). Bearer parsing, the check per request and
what a role may do are the API's (api/auth.py, api/authorization.py).
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol

from chalicelib.errors import Conflict, FieldError, NotFound, ValidationFailed
from chalicelib.store import table

TOKEN_PREFIX = "vamp_"
TOKEN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")

ADMIN, OPERATOR, READER, AGENT = "admin", "operator", "reader", "agent"
ROLES = (ADMIN, OPERATOR, READER, AGENT)  # what POST /tokens may grant
# A workflow run's token (docs/decisions/0044): bound to one workflow of one namespace, minted by
# the control plane for a run (workflows/script_runs.mint_run_token), never through the API.
WORKFLOW = "workflow"
STORED_ROLES = ROLES + (WORKFLOW,)
ALL_NAMESPACES = "*"
MIN_TOKEN_LENGTH = 16  # a given (bootstrap) token; minted ones are 32 random bytes


@dataclass(frozen=True)
class StoredToken:
    """What is kept about a token besides its hash: the name callers are known by, its role and
    the namespaces it may touch (("*",): every one)."""

    name: str
    created: str  # ISO-8601 UTC, seconds
    role: str = ADMIN
    namespaces: tuple[str, ...] = (ALL_NAMESPACES,)
    # Epoch seconds after which the token is refused (None: never). Workflow runs' tokens
    # (docs/decisions/0039) expire with the run; the table's TTL attribute removes the item later.
    expires_at: int | None = None
    # Role `workflow` only: the workflow whose runs hold the token, and the chain of workflows
    # whose runs led to this one (itself last): what the events it posts carry so that they never
    # trigger a workflow of the chain again (workflows/triggers.py).
    workflow: str | None = None
    chain: tuple[str, ...] = ()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenStore(Protocol):
    def authenticate(self, token: str | None) -> StoredToken | None:
        """The token's entry, or None (unknown, revoked, malformed): the caller answers 401."""
        ...

    def create(self, name: str, token: str | None = None, *, role: str,
               namespaces: tuple[str, ...] | list[str], expires_at: int | None = None,
               workflow: str | None = None, chain: tuple[str, ...] = ()) -> tuple[str, StoredToken]:
        """Store a token under `name` (Conflict if the name is taken) with its role and
        namespaces (checked by the caller: api/authorization.checked_grant); a new random one
        unless `token` is given (bootstrap). Returns the token itself: the only time it is seen."""
        ...

    def ensure(self, name: str, token: str, *, role: str, namespaces: tuple[str, ...] | list[str]) -> StoredToken:
        """Register `token` under `name` unless it already is (local bootstrap from VAMP_API_TOKEN):
        a token already registered keeps the role and namespaces it has; another token of that
        name is revoked (the operator gave a new bootstrap token)."""
        ...

    def list(self) -> list[StoredToken]:
        """Every token's entry, by name."""
        ...

    def named(self, name: str) -> StoredToken | None:
        """The entry of the token named `name`, or None."""
        ...

    def revoke(self, name: str) -> None:
        """Delete every token named `name` (NotFound if none)."""
        ...


def _key(digest: str) -> dict:
    return {"pk": {"S": table.TOKENS_PK}, "sk": {"S": digest}}


def _entry(item: dict) -> StoredToken:
    """An item as a token. Items written before tokens had roles carry neither a role nor
    namespaces: every token was the admin of every namespace then, and so they stay (decision
    0022: list them, revoke and replace them with scoped ones)."""
    role = item.get("role", {}).get("S", ADMIN)
    namespaces = tuple(n["S"] for n in item.get("namespaces", {}).get("L", [])) or (ALL_NAMESPACES,)
    expires = item.get(table.TTL_ATTRIBUTE, {}).get("N")
    workflow = item.get("workflow", {}).get("S")
    chain = tuple(n["S"] for n in item.get("chain", {}).get("L", []))
    return StoredToken(item["name"]["S"], item["created"]["S"], role, namespaces, int(expires) if expires else None,
                       workflow, chain)


def _checked_scope(role: str, namespaces, workflow: str | None = None) -> tuple[str, ...]:
    """The store's own guard (the API checks names and scope first, with the reasons)."""
    if role not in STORED_ROLES:
        raise ValidationFailed.at("role", f"one of {', '.join(STORED_ROLES)}")
    if isinstance(namespaces, str) or not namespaces or not all(isinstance(n, str) and n for n in namespaces):
        raise ValidationFailed.at("namespaces", f"a non-empty list of namespace names, or [{ALL_NAMESPACES!r}]")
    if role == WORKFLOW:  # one workflow of one namespace, never "*"
        if not isinstance(workflow, str) or not workflow:
            raise ValidationFailed.at("workflow", "a workflow token names its workflow")
        if len(namespaces) != 1 or namespaces[0] == ALL_NAMESPACES:
            raise ValidationFailed.at("namespaces", "a workflow token has its workflow's namespace only")
    elif workflow is not None:
        raise ValidationFailed.at("workflow", f"only a {WORKFLOW} token names a workflow")
    return tuple(namespaces)


class DynamoDBTokenStore:
    def __init__(self) -> None:
        self._ddb = table.client()
        self._table = table.table_name()

    def authenticate(self, token: str | None) -> StoredToken | None:
        if not token or len(token) > 200:
            return None
        digest = hash_token(token)
        item = self._ddb.get_item(TableName=self._table, Key=_key(digest), ConsistentRead=True).get("Item")
        # Compare again in constant time: the key lookup alone would leak nothing useful,
        # but the check keeps a corrupted item from matching.
        if not item or not hmac.compare_digest(item["sk"]["S"], digest):
            return None
        entry = _entry(item)
        # DynamoDB's TTL deletes expired items within days, not at once: the expiry is checked here.
        if entry.expires_at is not None and entry.expires_at <= time.time():
            return None
        return entry

    def create(self, name: str, token: str | None = None, *, role: str,
               namespaces: tuple[str, ...] | list[str], expires_at: int | None = None,
               workflow: str | None = None, chain: tuple[str, ...] = ()) -> tuple[str, StoredToken]:
        if not isinstance(name, str) or not TOKEN_NAME.match(name):
            raise ValidationFailed.at("name", "1-64 characters: letters, digits, _ . @ -, starting with a letter or digit")
        namespaces = _checked_scope(role, namespaces, workflow)
        chain = tuple(chain) if role == WORKFLOW else ()
        if role == ADMIN and expires_at is not None:  # a short-lived token is a run's, never an admin
            raise ValidationFailed.at("role", "an expiring token cannot be an admin")
        if token is not None and len(token) < MIN_TOKEN_LENGTH:
            raise ValidationFailed.at("token", f"at least {MIN_TOKEN_LENGTH} characters")
        if any(p.name == name for p in self.list()):
            raise Conflict(f"a token named {name} exists", [FieldError("name", "already exists")])
        token = token or TOKEN_PREFIX + secrets.token_urlsafe(32)
        created = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item={**_key(hash_token(token)), "name": {"S": name}, "created": {"S": created},
                      "role": {"S": role}, "namespaces": {"L": [{"S": n} for n in namespaces]},
                      **({table.TTL_ATTRIBUTE: {"N": str(int(expires_at))}} if expires_at is not None else {}),
                      **({"workflow": {"S": workflow}, "chain": {"L": [{"S": n} for n in chain]}}
                         if workflow is not None else {})},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self._ddb.exceptions.ConditionalCheckFailedException:
            raise Conflict("this token is already registered", [FieldError("token", "already exists")]) from None
        return token, StoredToken(name, created, role, namespaces, expires_at, workflow, chain)

    def ensure(self, name: str, token: str, *, role: str, namespaces: tuple[str, ...] | list[str]) -> StoredToken:
        found = self.authenticate(token)
        if found:
            return found
        if self.named(name):
            self.revoke(name)
        return self.create(name, token, role=role, namespaces=namespaces)[1]

    def list(self) -> list[StoredToken]:
        items = table.query_items(TableName=self._table, KeyConditionExpression="pk = :pk",
                                  ExpressionAttributeValues={":pk": {"S": table.TOKENS_PK}})
        return sorted(map(_entry, items), key=lambda t: t.name)

    def named(self, name: str) -> StoredToken | None:
        return next((t for t in self.list() if t.name == name), None)

    def revoke(self, name: str) -> None:
        items = table.query_items(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            FilterExpression="#n = :name",
            ExpressionAttributeNames={"#n": "name"},
            ExpressionAttributeValues={":pk": {"S": table.TOKENS_PK}, ":name": {"S": name}},
        )
        digests = [i["sk"]["S"] for i in items]
        if not digests:
            raise NotFound(f"no token named {name}", [FieldError("name", "not found")])
        for digest in digests:
            self._ddb.delete_item(TableName=self._table, Key=_key(digest))
