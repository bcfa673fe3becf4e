"""Release state in the single DynamoDB table: one item per release, `<ns>#release` / `<name>`,
the state as JSON in `doc` and a `version` every write is conditional on. Every transition is a
read-modify-write that only lands on the version it read (`transition`), so an API call and a
step handler racing on one release serialise: the loser re-reads and decides again.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Callable

from chalicelib.errors import Conflict, FieldError, NotFound

ACTIVE = ("progressing", "paused", "awaiting_approval")
TERMINAL = ("promoted", "rolled_back", "failed")
HISTORY = 50  # checks kept in the state (every check is also an event)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ReleaseStore:
    def __init__(self, client=None, table_name: str | None = None):
        from chalicelib.store import table

        self._ddb = client or table.client()
        self._table = table_name or table.table_name()
        self.calls = 0  # DynamoDB requests made (the bench prices them)

    @staticmethod
    def _key(namespace: str, name: str) -> dict:
        return {"pk": {"S": f"{namespace}#release"}, "sk": {"S": name}}

    def get(self, namespace: str, name: str) -> dict | None:
        self.calls += 1
        item = self._ddb.get_item(TableName=self._table, Key=self._key(namespace, name), ConsistentRead=True).get("Item")
        if not item:
            return None
        state = json.loads(item["doc"]["S"])
        state["version"] = int(item["version"]["N"])
        return state

    def require(self, namespace: str, name: str) -> dict:
        state = self.get(namespace, name)
        if state is None:
            raise NotFound(f"release {name} does not exist", [FieldError("name", "not found")])
        return state

    def put(self, namespace: str, state: dict, expected_version: int | None) -> dict:
        """Write `state` if the stored version is still `expected_version` (None: must not exist)."""
        version = (expected_version or 0) + 1
        body = {k: v for k, v in state.items() if k != "version"}
        body["updated"] = now()
        item = {**self._key(namespace, state["name"]), "version": {"N": str(version)},
                "doc": {"S": json.dumps(body, separators=(",", ":"))}}
        if expected_version is None:
            cond = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            cond = {"ConditionExpression": "version = :v", "ExpressionAttributeValues": {":v": {"N": str(expected_version)}}}
        self.calls += 1
        try:
            self._ddb.put_item(TableName=self._table, Item=item, **cond)
        except self._ddb.exceptions.ConditionalCheckFailedException:
            raise Conflict(f"release {state['name']} was changed concurrently", [FieldError("version", "stale write")]) from None
        return {**body, "version": version}

    def transition(self, namespace: str, name: str, change: Callable[[dict], dict | None], attempts: int = 8) -> tuple[dict, bool]:
        """Apply `change` (state -> new state, or None for no change) atomically; returns the
        state now stored and whether this call changed it."""
        for _ in range(attempts):
            state = self.require(namespace, name)
            new = change(json.loads(json.dumps(state)))
            if new is None:
                return state, False
            try:
                return self.put(namespace, new, state["version"]), True
            except Conflict:
                continue
        raise Conflict(f"release {name} is changing too often; retry", [])

    def list(self, namespace: str, limit: int = 1000) -> list[dict]:
        out, start = [], None
        while True:
            kwargs = {"TableName": self._table, "KeyConditionExpression": "pk = :pk",
                      "ExpressionAttributeValues": {":pk": {"S": f"{namespace}#release"}}, "Limit": limit}
            if start:
                kwargs["ExclusiveStartKey"] = start
            self.calls += 1
            page = self._ddb.query(**kwargs)
            for item in page["Items"]:
                state = json.loads(item["doc"]["S"])
                state["version"] = int(item["version"]["N"])
                out.append(state)
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


def record_check(state: dict, check: dict) -> None:
    state["history"] = (state.get("history") or [])[-(HISTORY - 1):] + [check]
