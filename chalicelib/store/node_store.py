"""The gateway nodes' latest acknowledgements, per namespace: the interface (`NodeStore`) and its
backend on the single table (`DynamoDBNodeStore`; key shape in table.py). An item per node,
replaced by each report and expiring (TTL) when a node stops reporting, so departed nodes
vanish; an older report (by the agent's own `sent` clock) never replaces a newer one."""
from __future__ import annotations

import json
import time
from typing import Protocol

from chalicelib.contract.acknowledgement import Acknowledgement
from chalicelib.store import table


class NodeStore(Protocol):
    def report(self, ack: Acknowledgement, received: float) -> bool:
        """Keep `ack` as the node's latest (False: a newer one is kept already)."""
        ...

    def nodes(self, namespace: str) -> list[tuple[Acknowledgement, float]]:
        """Every node that reported and has not expired: (its latest acknowledgement, when it was received)."""
        ...


class DynamoDBNodeStore:
    def __init__(self, ttl_seconds: int) -> None:
        self._ddb = table.client()
        self._table = table.table_name()
        self._ttl = ttl_seconds

    def report(self, ack: Acknowledgement, received: float) -> bool:
        item = {"pk": {"S": table.node_pk(ack.namespace)}, "sk": {"S": ack.node},
                "doc": {"S": json.dumps(ack.as_dict())}, "sent": {"N": repr(ack.sent)},
                "received": {"N": repr(received)},
                table.TTL_ATTRIBUTE: {"N": str(int(received) + self._ttl)}}
        try:
            self._ddb.put_item(TableName=self._table, Item=item,
                               ConditionExpression="attribute_not_exists(pk) OR sent <= :sent",
                               ExpressionAttributeValues={":sent": {"N": repr(ack.sent)}})
        except self._ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def nodes(self, namespace: str) -> list[tuple[Acknowledgement, float]]:
        items = table.query_items(KeyConditionExpression="pk = :pk", ConsistentRead=True,
                                  ExpressionAttributeValues={":pk": {"S": table.node_pk(namespace)}})
        now = time.time()
        out = []
        for item in items:
            # DynamoDB deletes expired items within hours, not at once: expired is gone here too.
            if int(item.get(table.TTL_ATTRIBUTE, {}).get("N", "0")) < now:
                continue
            out.append((Acknowledgement(**json.loads(item["doc"]["S"])), float(item["received"]["N"])))
        return sorted(out, key=lambda pair: pair[0].node)
