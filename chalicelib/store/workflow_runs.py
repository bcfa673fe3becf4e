"""Run slots of a `repeat: N` time schedule: each run claims the next one with a conditional
write before it starts, so two firings at once (a run outliving its period) never make N + 1
runs. The count belongs to one scheduling of the workflow (its `scheduled` event): scheduled
again (started, restarted), it counts from 0."""
from __future__ import annotations

from botocore.exceptions import ClientError

from chalicelib.store import table


def claim(namespace: str, workflow: str, schedule: str, limit: int) -> int | None:
    """The number of this run (1..limit) within the scheduling `schedule`; None when all `limit`
    were claimed already."""
    key = {"pk": {"S": table.workflow_runs_pk(namespace)}, "sk": {"S": workflow}}
    for _ in range(3):  # the first run of a scheduling resets; a racing reset or claim: try again
        try:
            answer = table.client().update_item(
                TableName=table.table_name(), Key=key, ReturnValues="UPDATED_NEW",
                UpdateExpression="SET runs = runs + :one",
                ConditionExpression="#s = :s AND runs < :limit",
                ExpressionAttributeNames={"#s": "schedule"},
                ExpressionAttributeValues={":one": {"N": "1"}, ":s": {"S": schedule}, ":limit": {"N": str(limit)}})
            return int(answer["Attributes"]["runs"]["N"])
        except ClientError as e:
            if e.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
        try:  # not this scheduling's item (or none yet): this run is its first
            table.client().put_item(
                TableName=table.table_name(), Item={**key, "schedule": {"S": schedule}, "runs": {"N": "1"}},
                ConditionExpression="attribute_not_exists(pk) OR #s <> :s",
                ExpressionAttributeNames={"#s": "schedule"}, ExpressionAttributeValues={":s": {"S": schedule}})
            return 1
        except ClientError as e:
            if e.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            # this scheduling's item exists: either full (the update's condition) or claimed meanwhile
            item = table.client().get_item(TableName=table.table_name(), Key=key, ConsistentRead=True).get("Item")
            if item and item["schedule"]["S"] == schedule and int(item["runs"]["N"]) >= limit:
                return None
    raise RuntimeError(f"the run slots of workflow {workflow} kept changing")  # the run fails, reported

