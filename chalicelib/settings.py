"""Runtime settings, from the environment (prefix VAMP_), the same on Lambda and locally."""
from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VAMP_", extra="ignore")

    # DynamoDB single table holding artifacts, deployments, counters, tokens and (by default) events.
    table_name: str = "vamp"
    default_namespace: str = "default"
    # Endpoint of an AWS emulation (moto server, LocalStack); boto3 also honours AWS_ENDPOINT_URL.
    aws_endpoint: str | None = None
    region: str = "us-east-1"

    event_store: Literal["dynamodb", "opensearch"] = "dynamodb"
    opensearch_url: str | None = None
    # Events older than this are expired by DynamoDB TTL (0 keeps them forever).
    event_retention_days: int = 30

    # token: Bearer API tokens checked by the Chalice authorizer; iam: SigV4 (API Gateway IAM auth).
    auth_mode: Literal["token", "iam"] = "token"
    max_body_bytes: int = 1_048_576
    per_page_max: int = 1000


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings()
