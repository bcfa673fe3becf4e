"""Release state on the single DynamoDB table (keys in table.py): one item per release, the
state's JSON in `doc` and its `version` beside it; one lock item per gateway a running release
holds, naming it (`release`, `release_id`).

A state that holds its gateway is put in ONE transaction with the lock, conditional on the lock
being free or already this release's; a finished one deletes the lock in the transaction that
stores it. A lock naming a release that is gone, finished or restarted under a new id (a table
restored from a save taken between two writes, a hand edit) is stale and taken over,
conditional on still naming that release (docs/decisions/0019-no-lost-generation.md).
"""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Generic

from chalicelib.errors import Conflict, FieldError
from chalicelib.store import table
from chalicelib.store.release_store import GatewayHeld, ReleaseStore, StaleWrite, State

PAGE = 1000  # releases per Query page
LOCK_ATTEMPTS = 4  # a stale lock taken over, or a transaction conflict, then try again


def _key(namespace: str, name: str) -> dict:
    return {"pk": {"S": table.release_pk(namespace)}, "sk": {"S": name}}


def _lock_key(namespace: str, gateway: str) -> dict:
    return {"pk": {"S": table.release_lock_pk(namespace)}, "sk": {"S": gateway}}


def _cancelled(error, index: int) -> bool:
    """Whether item `index` of a cancelled transaction failed its condition."""
    reasons = error.response.get("CancellationReasons", [])
    return len(reasons) > index and reasons[index].get("Code") == "ConditionalCheckFailed"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class DynamoDBReleaseStore(ReleaseStore[State], Generic[State]):
    def __init__(self, state_model: type[State]):
        self._model = state_model  # a pydantic model: how the domain reads its stored JSON
        self._ddb = table.client()
        self._table = table.table_name()
        self.calls = 0  # DynamoDB requests made (the bench prices them)

    def _state(self, item: dict) -> State:
        return self._model.model_validate({**json.loads(item["doc"]["S"]), "version": int(item["version"]["N"])})

    def get(self, namespace: str, name: str) -> State | None:
        self.calls += 1
        item = self._ddb.get_item(TableName=self._table, Key=_key(namespace, name), ConsistentRead=True).get("Item")
        return self._state(item) if item else None

    def put(self, namespace: str, state: State, expected_version: int | None) -> State:
        version = (expected_version or 0) + 1
        stored = state.model_copy(update={"updated": _now(), "version": version})
        item = {**_key(namespace, state.name), "version": {"N": str(version)},
                "doc": {"S": json.dumps(stored.model_dump(mode="json"), separators=(",", ":"))}}
        if expected_version is None:
            cond = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            cond = {"ConditionExpression": "version = :v", "ExpressionAttributeValues": {":v": {"N": str(expected_version)}}}
        put = {"TableName": self._table, "Item": item, **cond}
        if state.holds_gateway:
            self._put_holding(namespace, state, put)
        else:
            self._put_releasing(namespace, state, put)
        return stored

    def _put_holding(self, namespace: str, state: State, put: dict) -> None:
        """The state and the gateway's lock naming it, in one transaction."""
        lock = {**_lock_key(namespace, state.gateway), "release": {"S": state.name}, "release_id": {"S": state.id}}
        # Free, or ours already (every write of a running release re-asserts it).
        free = {"ConditionExpression": "attribute_not_exists(pk) OR release_id = :id",
                "ExpressionAttributeValues": {":id": {"S": state.id}}}
        cond = free
        for _ in range(LOCK_ATTEMPTS):
            try:
                self._transact([{"Put": put}, {"Put": {"TableName": self._table, "Item": lock, **cond}}])
                return
            except self._ddb.exceptions.TransactionCanceledException as e:
                if _cancelled(e, 0):
                    raise self._stale(state.name) from None
            # The lock's condition failed, or another transaction had it (TransactionConflict).
            holder = self._lock(namespace, state.gateway)
            if holder is None or holder[1] == state.id:
                cond = free
                continue  # given up meanwhile: try again
            name, held_id = holder
            if self._running(namespace, name, held_id):
                raise GatewayHeld(state.gateway, name)
            # Stale: take it over, as long as it still names the release found finished.
            cond = {"ConditionExpression": "release_id = :stale", "ExpressionAttributeValues": {":stale": {"S": held_id}}}
        raise Conflict(f"gateway {state.gateway} is being taken by several releases at once; retry",
                       [FieldError("gateway", "contended")])

    def _put_releasing(self, namespace: str, state: State, put: dict) -> None:
        """The state, and the gateway's lock deleted if it names this release."""
        holder = self._lock(namespace, state.gateway)
        if holder is None or holder[1] != state.id:  # never ours, or given up before: one put
            self.calls += 1
            try:
                self._ddb.put_item(**put)
            except self._ddb.exceptions.ConditionalCheckFailedException:
                raise self._stale(state.name) from None
            return
        try:
            self._transact([{"Put": put}, {"Delete": self._unlock(namespace, state)}])
        except self._ddb.exceptions.TransactionCanceledException:
            raise self._stale(state.name) from None  # re-read and decide again (the lock moved: a takeover)

    def holder(self, namespace: str, gateway: str) -> str | None:
        found = self._lock(namespace, gateway)
        if found is None or not self._running(namespace, *found):
            return None
        return found[0]

    def _lock(self, namespace: str, gateway: str) -> tuple[str, str] | None:
        """(release name, release id) the gateway's lock names, or None."""
        self.calls += 1
        item = self._ddb.get_item(TableName=self._table, Key=_lock_key(namespace, gateway), ConsistentRead=True).get("Item")
        return (item["release"]["S"], item["release_id"]["S"]) if item else None

    def _running(self, namespace: str, name: str, release_id: str) -> bool:
        """Whether the lock's release is still the one stored under its name and still holds it."""
        state = self.get(namespace, name)
        return state is not None and state.id == release_id and state.holds_gateway

    def _unlock(self, namespace: str, state: State) -> dict:
        """The lock's delete, as long as it names this release."""
        return {"TableName": self._table, "Key": _lock_key(namespace, state.gateway),
                "ConditionExpression": "release_id = :id", "ExpressionAttributeValues": {":id": {"S": state.id}}}

    def _transact(self, items: list[dict]) -> None:
        self.calls += 1
        # The token makes botocore's retry of a timed-out transaction idempotent.
        self._ddb.transact_write_items(TransactItems=items, ClientRequestToken=uuid.uuid4().hex)

    @staticmethod
    def _stale(name: str) -> StaleWrite:
        return StaleWrite(f"release {name} was changed concurrently", [FieldError("version", "stale write")])

    def list(self, namespace: str) -> list[State]:
        states = []
        for page in table.query_pages(KeyConditionExpression="pk = :pk",
                                      ExpressionAttributeValues={":pk": {"S": table.release_pk(namespace)}}, Limit=PAGE):
            self.calls += 1
            states += [self._state(item) for item in page["Items"]]
        return states

    def delete(self, namespace: str, name: str, expected_version: int) -> None:
        state = self.get(namespace, name)
        if state is None or state.version != expected_version:
            raise StaleWrite(f"release {name} was changed concurrently", [])
        cond = {"ConditionExpression": "version = :v", "ExpressionAttributeValues": {":v": {"N": str(expected_version)}}}
        holder = self._lock(namespace, state.gateway)
        if holder is None or holder[1] != state.id:
            self.calls += 1
            try:
                self._ddb.delete_item(TableName=self._table, Key=_key(namespace, name), **cond)
            except self._ddb.exceptions.ConditionalCheckFailedException:
                raise StaleWrite(f"release {name} was changed concurrently", []) from None
            return
        # Still holding its gateway (deleted while running, or a lock left stale): no lock outlives it.
        try:
            self._transact([{"Delete": {"TableName": self._table, "Key": _key(namespace, name), **cond}},
                            {"Delete": self._unlock(namespace, state)}])
        except self._ddb.exceptions.TransactionCanceledException:
            raise StaleWrite(f"release {name} was changed concurrently", []) from None
