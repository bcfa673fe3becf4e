"""Which namespaces hold something a scheduled pass must visit (deployments to synchronise,
gateways to keep published): one small item per (what, namespace), read by a Query, so a pass
never scans the table to find its namespaces."""
from __future__ import annotations

from chalicelib.store import table

# What this process has registered: every gateway write registers its namespace, and a put per
# write was one DynamoDB call in ten of a gateway PUT. Nothing ever removes the item.
_registered: set[tuple[str, str, str]] = set()


def register(what: str, namespace: str) -> None:
    """Idempotent: a put of the same item, once per process and table."""
    key = (table.table_name(), what, namespace)
    if key in _registered:
        return
    item = {"pk": {"S": table.namespaces_pk(what)}, "sk": {"S": namespace}}
    table.client().put_item(TableName=table.table_name(), Item=item)
    _registered.add(key)


def registered(what: str) -> list[str]:
    items = table.query_items(KeyConditionExpression="pk = :pk",
                              ExpressionAttributeValues={":pk": {"S": table.namespaces_pk(what)}})
    return [i["sk"]["S"] for i in items]
