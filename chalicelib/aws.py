"""boto3 clients for the control plane, one per service and process, all pointed at the same
endpoint (moto or LocalStack locally, AWS itself when none is set) with the same timeouts and
retry policy. The store's DynamoDB client comes from here too; only store/ may use that one."""
from __future__ import annotations

import base64
from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from chalicelib.settings import settings

# max_pool_connections: the local API serves requests on threads sharing one client; with
# botocore's 10, the connections of 50 concurrent requests beyond 10 were opened and dropped per call.
_BOTO_CONFIG = Config(retries={"max_attempts": 4, "mode": "standard"}, connect_timeout=2, read_timeout=10,
                      max_pool_connections=64)
# What a service answers when it is saturated or briefly down (botocore has retried them already).
_BUSY_CODES = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException", "Throttling", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailable", "TransactionInProgressException",
})
_BUSY_ERRORS = (ReadTimeoutError, ConnectTimeoutError, EndpointConnectionError, ConnectionClosedError)


@lru_cache(maxsize=None)
def client(service: str):
    s = settings()
    return boto3.client(service, region_name=s.region, endpoint_url=s.aws_endpoint, config=_BOTO_CONFIG)


def read_secret(service: str, name: str, via=None) -> tuple[str | None, str]:
    """(value, version) of an SSM parameter (`service` "ssm", decrypted) or a Secrets Manager
    secret ("secretsmanager"; value None when it is binary), through `via` (a client of that
    service) or this module's; botocore's errors pass through, for the caller to word."""
    value, version, _ = read_secret_and_arn(service, name, via)
    return value, version


def read_secret_and_arn(service: str, name: str, via=None) -> tuple[str | None, str, str | None]:
    """read_secret's (value, version) and the secret's or parameter's full ARN (None if the
    service did not say), which ECS's `valueFrom` needs (docs/decisions/0038)."""
    via = via or client(service)
    if service == "ssm":
        found = via.get_parameter(Name=name, WithDecryption=True)["Parameter"]
        return found["Value"], str(found.get("Version", "")), found.get("ARN")
    found = via.get_secret_value(SecretId=name)
    return found.get("SecretString"), str(found.get("VersionId", "")), found.get("ARN")


def reset_clients() -> None:
    """Forget cached clients and settings (tests and tools switch endpoints)."""
    client.cache_clear()
    settings.cache_clear()


def busy(error: BaseException) -> str | None:
    """What made a call fail if the service was busy (a throttle, a timeout, an unreachable
    endpoint that botocore's retries did not get past), else None: the request itself is fine,
    and the API answers 503 with Retry-After rather than 500."""
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code")
        return code if code in _BUSY_CODES else None
    return type(error).__name__ if isinstance(error, _BUSY_ERRORS) else None


# -- EKS authentication ----------------------------------------------------------------------
# Here, not in drivers/kubernetes.py: the publisher function finds etcd's members through the
# cluster's API too (chalicelib/kv/etcd_members.py) and must not import the kubernetes client.
EKS_TOKEN_PREFIX = "k8s-aws-v1."
EKS_TOKEN_TTL = 600  # refresh the EKS token after 10 of its 15 minutes


def eks_token(cluster_name: str, sts_client: Any) -> str:
    """What `aws eks get-token` prints as `status.token`: `k8s-aws-v1.` + the unpadded base64url
    of a presigned STS GetCallerIdentity URL that signs the `x-k8s-aws-id: <cluster>` header.
    Presigning is local: no request is made (EKS makes it, to learn who the caller is)."""

    def add_cluster_header(request: Any, **_: Any) -> None:
        request.headers["x-k8s-aws-id"] = cluster_name

    events = sts_client.meta.events
    events.register_first("before-sign.sts.GetCallerIdentity", add_cluster_header, unique_id="vamp-eks-token")
    try:
        url = sts_client.generate_presigned_url(
            "get_caller_identity", Params={}, ExpiresIn=60, HttpMethod="GET"
        )
    finally:
        events.unregister("before-sign.sts.GetCallerIdentity", unique_id="vamp-eks-token")
    return EKS_TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")
