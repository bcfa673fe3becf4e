"""Which namespaces hold something a scheduled pass must visit (deployments to synchronise,
gateways to keep published): one small item per (what, namespace), read by a Query, so a pass
never scans the table to find its namespaces."""
from __future__ import annotations

from chalicelib.store import table


def _pk(what: str) -> str:
    return f"#namespaces#{what}"


def register(what: str, namespace: str) -> None:
    """Idempotent: a put of the same item."""
    table.client().put_item(TableName=table.table_name(), Item={"pk": {"S": _pk(what)}, "sk": {"S": namespace}})


def registered(what: str) -> list[str]:
    ddb, out, start = table.client(), [], None
    while True:
        kwargs = {"TableName": table.table_name(), "KeyConditionExpression": "pk = :pk",
                  "ExpressionAttributeValues": {":pk": {"S": _pk(what)}}}
        if start:
            kwargs["ExclusiveStartKey"] = start
        page = ddb.query(**kwargs)
        out += [i["sk"]["S"] for i in page["Items"]]
        start = page.get("LastEvaluatedKey")
        if not start:
            return out
