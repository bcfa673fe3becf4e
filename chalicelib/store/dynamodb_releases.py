"""Release state on the single DynamoDB table (key in table.py): one item per release, the
state's JSON in `doc` and its `version` beside it."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Generic

from chalicelib.errors import FieldError
from chalicelib.store import table
from chalicelib.store.release_store import ReleaseStore, StaleWrite, State

PAGE = 1000  # releases per Query page


def _key(namespace: str, name: str) -> dict:
    return {"pk": {"S": table.release_pk(namespace)}, "sk": {"S": name}}


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
        self.calls += 1
        try:
            self._ddb.put_item(TableName=self._table, Item=item, **cond)
        except self._ddb.exceptions.ConditionalCheckFailedException:
            raise StaleWrite(f"release {state.name} was changed concurrently", [FieldError("version", "stale write")]) from None
        return stored

    def list(self, namespace: str) -> list[State]:
        states = []
        for page in table.query_pages(KeyConditionExpression="pk = :pk",
                                      ExpressionAttributeValues={":pk": {"S": table.release_pk(namespace)}}, Limit=PAGE):
            self.calls += 1
            states += [self._state(item) for item in page["Items"]]
        return states

    def delete(self, namespace: str, name: str, expected_version: int) -> None:
        self.calls += 1
        try:
            self._ddb.delete_item(TableName=self._table, Key=_key(namespace, name),
                                  ConditionExpression="version = :v",
                                  ExpressionAttributeValues={":v": {"N": str(expected_version)}})
        except self._ddb.exceptions.ConditionalCheckFailedException:
            raise StaleWrite(f"release {name} was changed concurrently", []) from None
