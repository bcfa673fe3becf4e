"""boto3 clients for the control plane, one per service and process, all pointed at the same
endpoint (moto or LocalStack locally, AWS itself when none is set) with the same timeouts and
retry policy. The store's DynamoDB client comes from here too; only store/ may use that one."""
from __future__ import annotations

from functools import lru_cache

import boto3
from botocore.config import Config

from chalicelib.settings import settings

_BOTO_CONFIG = Config(retries={"max_attempts": 4, "mode": "standard"}, connect_timeout=2, read_timeout=10)


@lru_cache(maxsize=None)
def client(service: str):
    s = settings()
    return boto3.client(service, region_name=s.region, endpoint_url=s.aws_endpoint, config=_BOTO_CONFIG)


def reset_clients() -> None:
    """Forget cached clients and settings (tests and tools switch endpoints)."""
    client.cache_clear()
    settings.cache_clear()
