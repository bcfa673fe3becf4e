"""The single DynamoDB table: its key schema, and the boto3 handles every backend shares.

Items, by partition key (`pk`) and sort key (`sk`):
  <ns>#artifact#<kind>  <name>                 an artifact: version, doc (JSON text), updated
  <ns>#counts           <kind>                 how many artifacts of a kind (for X-Total-Count)
  <ns>#event-tag#<tag>  <timestamp>#<id>       one copy of an event per (expanded) tag
  <ns>#events           <timestamp>#<id>       every event, for queries without tags
  #tokens               <sha256 of token>      an API token (hashed), its name and creation time
Items that expire carry `expires_at` (epoch seconds, the table's TTL attribute).
"""
from __future__ import annotations

from functools import lru_cache

import boto3
from botocore.config import Config

from chalicelib.settings import settings

KEY_SCHEMA = [
    {"AttributeName": "pk", "KeyType": "HASH"},
    {"AttributeName": "sk", "KeyType": "RANGE"},
]
ATTRIBUTES = [
    {"AttributeName": "pk", "AttributeType": "S"},
    {"AttributeName": "sk", "AttributeType": "S"},
]
TTL_ATTRIBUTE = "expires_at"

_BOTO_CONFIG = Config(retries={"max_attempts": 4, "mode": "standard"}, connect_timeout=2, read_timeout=10)


@lru_cache(maxsize=None)
def client(service: str = "dynamodb"):
    s = settings()
    return boto3.client(service, region_name=s.region, endpoint_url=s.aws_endpoint, config=_BOTO_CONFIG)


def table_name() -> str:
    return settings().table_name


def ensure_table(name: str | None = None) -> None:
    """Create the table if missing (local tooling and tests; on AWS infra/ declares it)."""
    ddb = client()
    name = name or table_name()
    try:
        ddb.describe_table(TableName=name)
        return
    except ddb.exceptions.ResourceNotFoundException:
        pass
    ddb.create_table(
        TableName=name,
        KeySchema=KEY_SCHEMA,
        AttributeDefinitions=ATTRIBUTES,
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    ddb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE}
    )


def reset_clients() -> None:
    """Forget cached clients and settings (tests switch endpoints)."""
    client.cache_clear()
    settings.cache_clear()
