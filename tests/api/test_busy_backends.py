"""A DynamoDB throttle or timeout that outlasts botocore's retries is a 503 with Retry-After (the
client may send the same request again), never a 500; anything else unexpected stays a 500.

The table's client is made to fail by a botocore before-call handler that answers in DynamoDB's
place (botocore's own retries sit below that hook: each failure here is the final one)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from botocore.exceptions import ReadTimeoutError

from chalicelib import aws
from chalicelib.store import table


def _answer(code: str, **extra):
    def handler(**_):
        return SimpleNamespace(status_code=400, headers={}), {"Error": {"Code": code, "Message": code}, **extra}
    return handler


def _raise(error: Exception):
    def handler(**_):
        raise error
    return handler


@pytest.fixture()
def failing():
    undo: list = []
    yield lambda operation, handler: undo.append(table.watch(f"before-call.dynamodb.{operation}", handler))
    for u in undo:
        u()


GATEWAY = {"name": "shop", "port": "40123/http", "routes": {"[127.0.0.1:8080]": {"weight": "100%"}}}


def assert_busy(r, reason: str) -> None:
    assert r.status_code == 503, r.body
    assert r.headers["Retry-After"] == "1"
    assert r.json["errors"] == [{"path": "backend", "reason": reason}]


def test_a_throttled_write_is_a_503_with_retry_after(api, failing):
    failing("TransactWriteItems", _answer("ProvisionedThroughputExceededException"))
    assert_busy(api.put("/api/v1/gateways/shop", GATEWAY), "ProvisionedThroughputExceededException")


def test_a_transaction_cancelled_by_throttling_is_a_503_not_a_lost_race(api, failing):
    reasons = [{"Code": "ThrottlingError"}, {"Code": "None"}, {"Code": "None"}]
    failing("TransactWriteItems", _answer("TransactionCanceledException", CancellationReasons=reasons))
    assert_busy(api.put("/api/v1/gateways/shop", GATEWAY), "ThrottlingError")


def test_a_read_timeout_is_a_503(api, failing):
    failing("BatchGetItem", _raise(ReadTimeoutError(endpoint_url="http://127.0.0.1:1")))
    assert_busy(api.put("/api/v1/gateways/shop", GATEWAY), "ReadTimeoutError")


def test_a_throttled_token_check_is_a_503_not_a_401_or_500(api, failing):
    failing("GetItem", _answer("ThrottlingException"))
    r = api.get("/api/v1/breeds/none")
    assert_busy(r, "ThrottlingException")


def test_anything_else_unexpected_is_still_a_500(api, failing):
    failing("TransactWriteItems", _answer("ValidationException"))  # a bug of ours, not a busy table
    r = api.put("/api/v1/gateways/shop", GATEWAY)
    assert r.status_code == 500 and "Retry-After" not in r.headers


def test_busy_names_what_was_busy_and_nothing_else():
    from botocore.exceptions import ClientError, EndpointConnectionError

    throttled = ClientError({"Error": {"Code": "RequestLimitExceeded"}}, "Query")
    assert aws.busy(throttled) == "RequestLimitExceeded"
    assert aws.busy(EndpointConnectionError(endpoint_url="http://x")) == "EndpointConnectionError"
    assert aws.busy(ClientError({"Error": {"Code": "ConditionalCheckFailedException"}}, "PutItem")) is None
    assert aws.busy(ValueError("x")) is None
