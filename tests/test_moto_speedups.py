"""local/moto_speedups: a Query reads its partition only (moto's own walks every item of the
table), with the same answers as DynamoDB's: key conditions, order, pages, filters."""
from __future__ import annotations

import moto.backends
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models.dynamo_type import DynamoType

from chalicelib.store import table


class Unwalkable(dict):
    """A partition that fails when anything iterates it: what moto's whole-table walk does."""

    def values(self):
        raise AssertionError("a Query walked another partition")


@pytest.fixture()
def two_partitions(aws):
    ddb = table.client()
    items = [{"pk": {"S": pk}, "sk": {"S": f"{i:03d}"}, "n": {"N": str(i)}} for pk in ("a", "b") for i in range(30)]
    for i in range(0, len(items), 25):
        ddb.batch_write_item(RequestItems={table.table_name(): [{"PutRequest": {"Item": it}} for it in items[i:i + 25]]})
    served_table().items[DynamoType({"S": "elsewhere"})] = Unwalkable()
    yield ddb
    del served_table().items[DynamoType({"S": "elsewhere"})]


def served_table():
    """The moto server's own table object (the server runs in this process)."""
    return moto.backends.get_backend("dynamodb")[DEFAULT_ACCOUNT_ID]["us-east-1"].tables[table.table_name()]


def query(ddb, **extra) -> list[str]:
    request = {"TableName": table.table_name(), "KeyConditionExpression": "pk = :pk",
               "ExpressionAttributeValues": {":pk": {"S": "a"}, **extra.pop("values", {})}, **extra}
    pages = ddb.get_paginator("query").paginate(**request)
    return [item["sk"]["S"] for page in pages for item in page["Items"]]


def test_a_query_reads_only_its_partition_with_dynamodbs_answers(two_partitions):
    assert query(two_partitions) == [f"{i:03d}" for i in range(30)]
    assert query(two_partitions, ScanIndexForward=False, PaginationConfig={"PageSize": 7}) == [
        f"{i:03d}" for i in reversed(range(30))]
    between = query(two_partitions, KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
                    values={":lo": {"S": "010"}, ":hi": {"S": "012"}})
    assert between == ["010", "011", "012"]
    late = query(two_partitions, FilterExpression="n > :five", values={":five": {"N": "25"}})
    assert late == ["026", "027", "028", "029"]


def test_a_query_of_a_missing_partition_finds_nothing_and_creates_nothing(two_partitions):
    out = two_partitions.query(TableName=table.table_name(), KeyConditionExpression="pk = :pk",
                           ExpressionAttributeValues={":pk": {"S": "nothing"}})
    assert out["Items"] == [] and DynamoType({"S": "nothing"}) not in served_table().items
    with pytest.raises(AssertionError):  # moto's walk (a Scan's) meets the guard: it is real
        served_table().all_items()
