"""Artifact store on the single DynamoDB table (layout in table.py).

Lists are a Query on the kind's partition (sorted by name) with a Limit, and the total comes
from a counter item kept in the same transaction as every create and delete: listing page 1
costs the same with 100 or 10,000 artifacts stored. No request path Scans.
"""
from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import datetime, timezone

from chalicelib.errors import Conflict, FieldError, NotFound, PayloadTooLarge, Unavailable, ValidationFailed
from chalicelib.store import table
from chalicelib.store.artifact_store import ArtifactPage, StoredArtifact, Summaries, Write

# DynamoDB transactions take at most 100 items; each kind touched adds one counter update, each
# write of a summarised kind its summary (counted against MAX_WRITES).
MAX_WRITES = 90


def _key(namespace: str, kind: str, name: str) -> dict:
    return {"pk": {"S": table.artifact_pk(namespace, kind)}, "sk": {"S": name}}


def _summary_key(namespace: str, kind: str, name: str) -> dict:
    return {"pk": {"S": table.summary_pk(namespace, kind)}, "sk": {"S": name}}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _from_item(item: dict) -> StoredArtifact:
    return StoredArtifact(
        kind=item["kind"]["S"],
        name=item["sk"]["S"],
        version=int(item["version"]["N"]),
        document=json.loads(item["doc"]["S"]),
        updated=item["updated"]["S"],
    )


class DynamoDBArtifactStore:
    def __init__(self, table_name: str | None = None):
        self._table = table_name or table.table_name()
        self._ddb = table.client()

    def get(self, namespace: str, kind: str, name: str) -> StoredArtifact | None:
        key = _key(namespace, kind, name)
        item = self._ddb.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item")
        return _from_item(item) if item else None

    def get_many(self, namespace: str, keys: list[tuple[str, str]]) -> dict[tuple[str, str], StoredArtifact]:
        found: dict[tuple[str, str], StoredArtifact] = {}
        pending = [_key(namespace, k, n) for k, n in dict.fromkeys(keys)]
        while pending:
            chunk, pending = pending[:100], pending[100:]
            request = {self._table: {"Keys": chunk, "ConsistentRead": True}}
            while request:
                out = self._ddb.batch_get_item(RequestItems=request)
                for item in out["Responses"].get(self._table, []):
                    a = _from_item(item)
                    found[(a.kind, a.name)] = a
                request = out.get("UnprocessedKeys") or None
        return found

    def list(self, namespace: str, kind: str, page: int, per_page: int) -> ArtifactPage:
        total = self._count(namespace, kind)
        items: list[StoredArtifact] = []
        skip = (page - 1) * per_page
        if skip < total:
            query = {
                "TableName": self._table,
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": {":pk": {"S": table.artifact_pk(namespace, kind)}},
            }
            # Pages before the wanted one are read keys-only, then the page itself in full.
            start = None
            if skip:
                start = self._skip(query, skip)
            if skip == 0 or start:
                items = [_from_item(i) for i in table.query_after(start, **query, Limit=per_page)["Items"]]
        return ArtifactPage(items=items, total=total)

    def _skip(self, query: dict, count: int) -> dict | None:
        """The key the wanted page starts after (None: there are not `count` items). Each Query's
        Limit is what is left to skip, so no key past the wanted page is read (the paginator's
        fixed page size would read up to a page too many)."""
        start, left = None, count
        while left > 0:
            out = table.query_after(start, **query, Limit=left, ProjectionExpression="pk, sk")
            left -= out["Count"]
            start = out.get("LastEvaluatedKey")
            if not start:
                return None
        return start

    def all_of_kind(self, namespace: str, kind: str) -> list[StoredArtifact]:
        items = table.query_items(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": table.artifact_pk(namespace, kind)}},
            ConsistentRead=True,
        )
        return [_from_item(i) for i in items]

    def summaries(self, namespace: str, kind: str) -> Summaries:
        items = table.query_items(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": table.summary_pk(namespace, kind)}},
            ConsistentRead=True,
        )
        found = {i["sk"]["S"]: (int(i["version"]["N"]), json.loads(i["summary"]["S"])) for i in items}
        return Summaries(found, self._count(namespace, kind))

    def put_summary(self, namespace: str, kind: str, name: str, version: int, summary: dict) -> bool:
        try:
            self._ddb.transact_write_items(TransactItems=[
                {"ConditionCheck": {"TableName": self._table, "Key": _key(namespace, kind, name),
                                    "ConditionExpression": "version = :v",
                                    "ExpressionAttributeValues": {":v": {"N": str(version)}}}},
                {"Put": {"TableName": self._table, "Item": self._summary_item(namespace, kind, name, version, summary)}},
            ], ClientRequestToken=uuid.uuid4().hex)
        except self._ddb.exceptions.TransactionCanceledException:
            return False
        return True

    @staticmethod
    def _summary_item(namespace: str, kind: str, name: str, version: int, summary: dict) -> dict:
        return {**_summary_key(namespace, kind, name), "version": {"N": str(version)},
                "summary": {"S": json.dumps(summary, separators=(",", ":"), sort_keys=True)}}

    def _count(self, namespace: str, kind: str) -> int:
        item = self._ddb.get_item(
            TableName=self._table,
            Key={"pk": {"S": table.counts_pk(namespace)}, "sk": {"S": kind}},
            ConsistentRead=True,
        ).get("Item")
        return int(item["count"]["N"]) if item else 0

    def apply(self, namespace: str, writes: list[Write]) -> list[StoredArtifact | None]:
        if not writes:
            return []
        if len(writes) + sum(w.kind in table.SUMMARISED_KINDS for w in writes) > MAX_WRITES:
            raise ValidationFailed.at("documents", f"at most {MAX_WRITES} documents per request")
        keys = [(w.kind, w.name) for w in writes]
        if len(set(keys)) != len(keys):
            dup = next(k for k in keys if keys.count(k) > 1)
            raise ValidationFailed.at("documents", f"{dup[0]}/{dup[1]} appears more than once")
        # Only "any version" (0) writes need the stored version read first; the others name it
        # (None: must not exist), and the transaction's conditions check it.
        current = self.get_many(namespace, [k for w, k in zip(writes, keys) if w.expected_version == 0])
        now = _now()
        items, results, deltas = [], [], Counter()
        for w in writes:
            expected = w.expected_version
            if expected == 0:
                stored = current.get((w.kind, w.name))
                expected = stored.version if stored else None
            key = _key(namespace, w.kind, w.name)
            if expected:
                cond = {"ConditionExpression": "version = :v", "ExpressionAttributeValues": {":v": {"N": str(expected)}}}
            else:
                cond = {"ConditionExpression": "attribute_not_exists(pk)"}
            if w.document is None:
                if not expected:
                    raise NotFound(f"{w.kind}/{w.name} does not exist", [FieldError("name", "not found")])
                items.append({"Delete": {"TableName": self._table, "Key": key, **cond}})
                deltas[w.kind] -= 1
                results.append(None)
                continue
            version = expected + 1 if expected else 1
            if w.version is not None:
                if w.version < version:
                    raise ValueError(f"{w.kind}/{w.name}: version {w.version} is not past {version - 1}")
                version = w.version
            item = {
                **key,
                "kind": {"S": w.kind},
                "version": {"N": str(version)},
                "doc": {"S": json.dumps(w.document, separators=(",", ":"), sort_keys=True)},
                "updated": {"S": now},
            }
            items.append({"Put": {"TableName": self._table, "Item": item, **cond}})
            if not expected:
                deltas[w.kind] += 1
            results.append(StoredArtifact(w.kind, w.name, version, w.document, now))
        for kind, delta in deltas.items():
            if delta:
                items.append({"Update": {
                    "TableName": self._table,
                    "Key": {"pk": {"S": table.counts_pk(namespace)}, "sk": {"S": kind}},
                    "UpdateExpression": "ADD #c :d",
                    "ExpressionAttributeNames": {"#c": "count"},
                    "ExpressionAttributeValues": {":d": {"N": str(delta)}},
                }})
        # After the writes: a cancelled transaction's reasons are read by position (_transact).
        for w, stored in zip(writes, results):
            if w.kind in table.SUMMARISED_KINDS:
                if stored is None or w.summary is None:
                    items.append({"Delete": {"TableName": self._table, "Key": _summary_key(namespace, w.kind, w.name)}})
                else:
                    item = self._summary_item(namespace, w.kind, w.name, stored.version, w.summary)
                    items.append({"Put": {"TableName": self._table, "Item": item}})
        self._transact(namespace, items, writes)
        return results

    def _transact(self, namespace: str, items: list[dict], writes: list[Write]) -> None:
        try:
            if len(items) == 1 and "Put" in items[0]:
                self._ddb.put_item(**items[0]["Put"])
            else:
                # The token makes botocore's retry of a timed-out transaction idempotent: without it,
                # a retry after a commit the client never heard of would fail its own conditions.
                self._ddb.transact_write_items(TransactItems=items, ClientRequestToken=uuid.uuid4().hex)
        except self._ddb.exceptions.ConditionalCheckFailedException:
            self._raise_conflict(namespace, writes[0])
        except self._ddb.exceptions.TransactionCanceledException as e:
            reasons = e.response.get("CancellationReasons", [])
            for w, r in zip(writes, reasons):
                if r.get("Code") == "ConditionalCheckFailed":
                    self._raise_conflict(namespace, w)
            if any(r.get("Code") == "ValidationError" and "size" in r.get("Message", "") for r in reasons):
                raise _too_large(e) from e
            throttled = {r.get("Code") for r in reasons} & {"ThrottlingError", "ProvisionedThroughputExceeded"}
            if throttled:  # not a lost race: the table is saturated, the client may retry
                raise Unavailable("the table is throttling writes; retry later",
                                  [FieldError("backend", throttled.pop())]) from e
            raise Conflict("a concurrent write got there first; retry", [], current_version=None) from e
        except self._ddb.exceptions.ClientError as e:
            error = e.response.get("Error", {})
            if error.get("Code") == "ValidationException" and "size" in error.get("Message", ""):
                raise _too_large(e) from e  # a deployment grown by merges past what an item holds
            raise

    def _raise_conflict(self, namespace: str, w: Write) -> None:
        now = self.get(namespace, w.kind, w.name)
        if w.expected_version is None and now is not None:
            raise Conflict(f"{w.kind}/{w.name} already exists", [FieldError("name", "already exists")],
                           current_version=now.version)
        raise Conflict(f"{w.kind}/{w.name} was changed concurrently",
                       [FieldError("version", "stale write rejected")],
                       current_version=now.version if now else None)


def _too_large(error: Exception) -> PayloadTooLarge:
    return PayloadTooLarge("the document is larger than a DynamoDB item can hold (400 KB)",
                           [FieldError("", "item size exceeded: nothing was written")])
