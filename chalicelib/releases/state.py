"""Release state in the single DynamoDB table: one item per release, `<ns>#release` / `<name>`,
the state as JSON in `doc` and a `version` every write is conditional on. Every transition is a
read-modify-write that only lands on the version it read (`transition`), so an API call and a
step handler racing on one release serialise: the loser re-reads and decides again.
"""
from __future__ import annotations

import json
from typing import Callable

from chalicelib.errors import Conflict, FieldError, NotFound
from chalicelib.releases.model import ReleaseState, now


class ReleaseStore:
    def __init__(self, client=None, table_name: str | None = None):
        from chalicelib.store import table

        self._ddb = client or table.client()
        self._table = table_name or table.table_name()
        self.calls = 0  # DynamoDB requests made (the bench prices them)

    @staticmethod
    def _key(namespace: str, name: str) -> dict:
        return {"pk": {"S": f"{namespace}#release"}, "sk": {"S": name}}

    @staticmethod
    def _state(item: dict) -> ReleaseState:
        return ReleaseState.model_validate({**json.loads(item["doc"]["S"]), "version": int(item["version"]["N"])})

    def get(self, namespace: str, name: str) -> ReleaseState | None:
        self.calls += 1
        item = self._ddb.get_item(TableName=self._table, Key=self._key(namespace, name), ConsistentRead=True).get("Item")
        return self._state(item) if item else None

    def require(self, namespace: str, name: str) -> ReleaseState:
        state = self.get(namespace, name)
        if state is None:
            raise NotFound(f"release {name} does not exist", [FieldError("name", "not found")])
        return state

    def put(self, namespace: str, state: ReleaseState, expected_version: int | None) -> ReleaseState:
        """Write `state` if the stored version is still `expected_version` (None: must not exist)."""
        version = (expected_version or 0) + 1
        stored = state.model_copy(update={"updated": now(), "version": version})
        item = {**self._key(namespace, state.name), "version": {"N": str(version)},
                "doc": {"S": json.dumps(stored.model_dump(mode="json"), separators=(",", ":"))}}
        if expected_version is None:
            cond = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            cond = {"ConditionExpression": "version = :v", "ExpressionAttributeValues": {":v": {"N": str(expected_version)}}}
        self.calls += 1
        try:
            self._ddb.put_item(TableName=self._table, Item=item, **cond)
        except self._ddb.exceptions.ConditionalCheckFailedException:
            raise Conflict(f"release {state.name} was changed concurrently", [FieldError("version", "stale write")]) from None
        return stored

    def transition(self, namespace: str, name: str, change: Callable[[ReleaseState], ReleaseState | None],
                   attempts: int = 8) -> tuple[ReleaseState, bool]:
        """Apply `change` (state -> new state, or None for no change) atomically; returns the
        state now stored and whether this call changed it."""
        for _ in range(attempts):
            state = self.require(namespace, name)
            new = change(state.model_copy(deep=True))
            if new is None:
                return state, False
            try:
                return self.put(namespace, new, state.version), True
            except Conflict:
                continue
        raise Conflict(f"release {name} is changing too often; retry", [])

    def list(self, namespace: str, limit: int = 1000) -> list[ReleaseState]:
        out, start = [], None
        while True:
            kwargs = {"TableName": self._table, "KeyConditionExpression": "pk = :pk",
                      "ExpressionAttributeValues": {":pk": {"S": f"{namespace}#release"}}, "Limit": limit}
            if start:
                kwargs["ExclusiveStartKey"] = start
            self.calls += 1
            page = self._ddb.query(**kwargs)
            out += [self._state(item) for item in page["Items"]]
            start = page.get("LastEvaluatedKey")
            if not start:
                return out

    def delete(self, namespace: str, name: str, expected_version: int) -> None:
        self.calls += 1
        try:
            self._ddb.delete_item(TableName=self._table, Key=self._key(namespace, name),
                                  ConditionExpression="version = :v",
                                  ExpressionAttributeValues={":v": {"N": str(expected_version)}})
        except self._ddb.exceptions.ConditionalCheckFailedException:
            raise Conflict(f"release {name} was changed concurrently", []) from None
