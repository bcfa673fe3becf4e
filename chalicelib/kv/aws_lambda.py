"""Published configurations through the publisher function: the relay (docs/decisions/0036).

On AWS the control plane's functions run outside any VPC (DynamoDB, Step Functions, STS and
Secrets Manager without a NAT gateway or interface endpoints), and etcd is private in the
cluster's VPC. One small function inside that VPC, app.py's `gateway_publish`, executes the
store's two operations against etcd (kv/etcd.py) and answers plain JSON; the others invoke it
(`lambda:InvokeFunction`, RequestResponse). It holds no store access and no signing key: what
it writes comes signed (kv.Signed), and it can only read and compare-and-swap the three gateway
keys of a namespace.

Both sides are here, the wire format in one place:

    {"operation": "read", "version": "2.6", "namespaces": ["team-a", ...]}
      -> {"held": {"team-a": {"configuration": <base64>|null, "generation": <int>|null,
                              "signature": <base64>}, ...},
          "remaining": [...]}            # not read: over the answer's budget, ask again
    {"operation": "publish", "namespace": "team-a", "version": "2.6", "generation": 7,
     "configuration": <base64>, "signature": "v1:hmac-sha256:<key id>:<hex>"}
      -> {"status": "published"|"unchanged"|"superseded", "generation": 7, "held": <int>|null}

The function is a trust boundary (only this stack's functions may invoke it, by IAM): it refuses
anything malformed, any other field, a namespace or version that would build a key outside
`/vamp/<namespace>/gateways/`, with a `Refused` naming the field. An error, refused or from
etcd, is a function error, which the caller raises as RelayError with the function's message:
the gateway write stays stored, a `publish-failed` event says why, and the scheduled pass
publishes it later (gateways/writes.py), exactly as with etcd directly.
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from functools import lru_cache

from chalicelib.kv import Held, Publication, Signed, checked_names
from chalicelib.settings import settings as current_settings

log = logging.getLogger(__name__)

READ_BATCH = 1000  # namespaces per read request (the function refuses more)
# An answer stays under Lambda's 6 MB response limit: configurations are sent until this many
# bytes of base64, the rest is named in "remaining" for the next request. One configuration is
# at most MAX_CONFIGURATION (etcd's --max-request-bytes is 1.5 MiB), so every answer has one.
ANSWER_BUDGET = 4 * 1024 * 1024
MAX_CONFIGURATION = 1_400_000
# The caller waits as long as the function may run (its timeout, 30 s in .chalice/config.json):
# a read timeout retried would run a second publish next to the first.
INVOKE_TIMEOUT = 40
SIGNATURE = re.compile(r"^v1:hmac-sha256:[0-9a-f]{12}:[0-9a-f]{64}$")
STATUSES = ("published", "unchanged", "superseded")


class RelayError(RuntimeError):
    """The publisher function failed (etcd away, refused credentials, a refused payload) or
    answered something that is not the wire format; str() says which and why."""


class EtcdFailed(RuntimeError):
    """The publisher function could not do what it was asked in etcd; str() says where and why."""


class Refused(ValueError):
    """A payload the publisher function does not execute; str() names the field and the reason."""


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _b64decode(text: object, what: str, limit: int, error: type[Exception]) -> bytes:
    if not isinstance(text, str) or len(text) > limit * 4 // 3 + 4:
        raise error(f"{what}: base64 of at most {limit} bytes")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise error(f"{what}: not base64") from None


def _integer(value: object, what: str, error: type[Exception], optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2 ** 63:
        raise error(f"{what}: an integer from 0 to 2^63-1{' or null' if optional else ''}")
    return value


# -- the caller's side ---------------------------------------------------------------------------

@lru_cache(maxsize=4)
def _lambda(region: str, endpoint: str | None):
    import boto3
    from botocore.config import Config

    # Its own client (chalicelib/aws.py's reads time out after 10 s): see INVOKE_TIMEOUT.
    return boto3.client("lambda", region_name=region, endpoint_url=endpoint, config=Config(
        retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=2, read_timeout=INVOKE_TIMEOUT,
        max_pool_connections=64))  # the local API's threads share it, as chalicelib/aws.py's


class LambdaConfigurations:
    """kv.PublishedConfigurations executed by the publisher function `function` (name or ARN)."""

    def __init__(self, function: str, client=None) -> None:
        self.function = function
        self._client = client

    def _invoke(self, payload: dict) -> dict:
        s = current_settings()
        client = self._client or _lambda(s.region, s.aws_endpoint)
        answer = client.invoke(FunctionName=self.function, InvocationType="RequestResponse",
                               Payload=json.dumps(payload).encode())
        body = answer["Payload"].read()
        if answer.get("FunctionError"):
            try:
                error = json.loads(body)
                reason = f"{error.get('errorType', 'Error')}: {error.get('errorMessage', '')}"
            except (ValueError, AttributeError):
                reason = body[:300].decode(errors="replace")
            raise RelayError(f"publisher function {self.function}: {reason[:600]}")
        try:
            found = json.loads(body)
        except ValueError:
            found = None
        if not isinstance(found, dict):
            raise RelayError(f"publisher function {self.function}: answered no JSON object")
        return found

    def read(self, namespaces: list[str], version: str) -> dict[str, Held]:
        todo = list(dict.fromkeys(namespaces))
        for ns in todo:
            checked_names(ns, version)  # refused here already, with the same words
        out: dict[str, Held] = {}
        while todo:
            batch, todo = todo[:READ_BATCH], todo[READ_BATCH:]
            answer = self._invoke({"operation": "read", "version": version, "namespaces": batch})
            held, remaining = answer.get("held"), answer.get("remaining")
            if set(answer) != {"held", "remaining"} or not isinstance(held, dict) or not isinstance(remaining, list):
                raise RelayError(f"publisher function {self.function}: a read answered {sorted(answer)}")
            if set(held) | set(remaining) != set(batch) or set(held) & set(remaining) or not held:
                raise RelayError(f"publisher function {self.function}: a read answered other namespaces than asked")
            for ns, value in held.items():
                out[ns] = _held_of(value, f"held.{ns}")
            todo = [ns for ns in batch if ns in remaining] + todo
        return out

    def publish(self, signed: Signed) -> Publication:
        checked_names(signed.namespace, signed.version)
        answer = self._invoke({"operation": "publish", "namespace": signed.namespace, "version": signed.version,
                               "generation": signed.generation, "configuration": _b64encode(signed.text),
                               "signature": signed.signature})
        status = answer.get("status")
        try:
            if set(answer) != {"status", "generation", "held"} or status not in STATUSES \
                    or answer["generation"] != signed.generation:
                raise RelayError("")
            held = _integer(answer["held"], "held", RelayError, optional=True)
        except RelayError:
            raise RelayError(f"publisher function {self.function}: a publish answered {json.dumps(answer)[:300]}") from None
        return Publication(status, signed.generation, signed.checksum, held=held)


def _held_of(value: object, what: str) -> Held:
    if not isinstance(value, dict) or set(value) != {"configuration", "generation", "signature"}:
        raise RelayError(f"{what}: not configuration, generation and signature")
    configuration = value["configuration"]
    return Held(None if configuration is None else _b64decode(configuration, what, MAX_CONFIGURATION, RelayError),
                _integer(value["generation"], f"{what}.generation", RelayError, optional=True),
                _b64decode(value["signature"], f"{what}.signature", 4096, RelayError))


# -- the publisher function's side ---------------------------------------------------------------

_FIELDS = {"read": {"operation", "version", "namespaces"},
           "publish": {"operation", "namespace", "version", "generation", "configuration", "signature"}}


def checked(event: object) -> dict:
    """The payload, if it is exactly one of the two requests; else Refused naming the field."""
    if not isinstance(event, dict):
        raise Refused("payload: a JSON object")
    operation = event.get("operation")
    if operation not in _FIELDS:
        raise Refused(f"operation: one of {', '.join(sorted(_FIELDS))}, not {str(operation)[:40]!r}")
    extra, missing = sorted(set(event) - _FIELDS[operation]), sorted(_FIELDS[operation] - set(event))
    if extra or missing:
        raise Refused(f"{operation}: fields {sorted(_FIELDS[operation])}" + (f"; unknown {extra}"[:200] if extra else "")
                      + (f"; missing {missing}" if missing else ""))
    names = event["namespaces"] if operation == "read" else [event["namespace"]]
    if not isinstance(names, list) or not 0 < len(names) <= READ_BATCH:
        raise Refused(f"namespaces: a list of 1 to {READ_BATCH} namespaces")
    for name in names:
        try:
            checked_names(name, event["version"])
        except ValueError as e:
            raise Refused(str(e)[:300]) from None
    if operation == "publish":
        _integer(event["generation"], "generation", Refused)
        if not isinstance(event["signature"], str) or not SIGNATURE.fullmatch(event["signature"]):
            raise Refused("signature: v1:hmac-sha256:<key id>:<hex> (contract/envelope.py)")
        _b64decode(event["configuration"], "configuration", MAX_CONFIGURATION, Refused)
    return event


def serve(event: object, store=None) -> dict:
    """Execute one request against etcd (`store`: default, VAMP_ETCD_ENDPOINT with its TLS and
    credentials); the answer as JSON values."""
    try:
        request = checked(event)
    except Refused as refused:
        log.warning("refused a payload: %s", refused)
        raise
    where = "etcd"
    if store is None:
        s = current_settings()
        if not s.etcd_endpoint:
            raise RuntimeError("the publisher function has no VAMP_ETCD_ENDPOINT")
        where = f"etcd at {s.etcd_endpoint}"
    try:
        if store is None:
            from chalicelib.kv.etcd import at

            store = at(s.etcd_endpoint, s)  # eks-service://...: its members found first (kv/etcd_members.py)
        return _execute(request, store)
    except Exception as e:  # etcd3gw's errors often say nothing themselves: where, which, etcd's words
        detail = getattr(e, "detail_text", None)
        from chalicelib.kv.etcd_members import MembersUnknown, NoMemberAnswered

        said = 500 if isinstance(e, (MembersUnknown, NoMemberAnswered)) else 200  # these name each member
        raise EtcdFailed(f"{where}: {type(e).__name__}: {str(e)[:said]}" + (f" ({str(detail)[:300]})" if detail else "")) from e


def _execute(request: dict, store) -> dict:
    if request["operation"] == "read":
        held = store.read(request["namespaces"], request["version"])
        answer: dict[str, dict] = {}
        remaining, spent = [], 0
        for ns in request["namespaces"]:
            if ns in answer or ns in remaining:
                continue
            value = held.get(ns, Held())
            configuration = None if value.configuration is None else _b64encode(value.configuration)
            spent += len(configuration or "")
            if answer and spent > ANSWER_BUDGET:
                remaining.append(ns)
                continue
            answer[ns] = {"configuration": configuration, "generation": value.generation,
                          "signature": _b64encode(value.signature)}
        return {"held": answer, "remaining": remaining}
    signed = Signed(request["namespace"], request["version"], request["generation"],
                    base64.b64decode(request["configuration"]), request["signature"])
    result = store.publish(signed)
    return {"status": result.status, "generation": result.generation, "held": result.held}
