"""The control plane -> etcd path on AWS (docs/decisions/0036), on this machine: the functions
publish through the publisher function (boto3 `lambda.invoke` on moto, delivered to app.py's
gateway_publish in this process, which alone reaches a real etcd).

What is asserted: the agent-visible keys are exactly what direct publishing writes, reads too
(garbage included); a gateway PUT publishes through it and the function's payloads carry the
signature, never the signing key; etcd away or the function timing out keeps the write stored,
says publish-failed, and the scheduled pass publishes it once etcd is back, with ONE invocation
for every namespace; the function refuses malformed payloads and keys outside
/vamp/<namespace>/gateways/; TLS and etcd authentication from the credentials' JSON."""
from __future__ import annotations

import base64
import json
import os
import stat

import boto3
import pytest

from chalicelib.contract import envelope, kv_keys
from chalicelib.contract.envelope import checksum
from chalicelib.gateways import publisher
from chalicelib.kv import Held, Signed
from chalicelib.kv import etcd as kv_etcd
from chalicelib.kv.aws_lambda import LambdaConfigurations, Refused, RelayError, serve
from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore
from local import stepfunctions
from tests.conftest import TEST_SIGNING_KEY

BODY = {"name": "shop", "routes": {"[127.0.0.1:8080]": {"weight": "100%"}}}


@pytest.fixture()
def deliveries():
    """The events delivered to gateway_publish while the test runs; `fail` makes the next ones
    fail as Lambda reports a timed-out function."""
    seen: list[dict] = []
    failing = {"next": 0}

    def record(name, event, proceed):
        if name != "gateway_publish":
            return proceed(event)
        seen.append(event)
        if failing["next"]:
            failing["next"] -= 1
            raise TimeoutError("Task timed out after 30.00 seconds")
        return proceed(event)

    def fail(times: int) -> None:
        failing["next"] = times

    stepfunctions.interceptors.append(record)
    record.fail = fail  # type: ignore[attr-defined]
    record.seen = seen  # type: ignore[attr-defined]
    yield record
    stepfunctions.interceptors.remove(record)


def _keys_under(etcd, namespace: str) -> dict[str, bytes]:
    return {meta["key"].decode() if isinstance(meta["key"], bytes) else meta["key"]: value
            for value, meta in etcd.get_prefix(f"/vamp/{namespace}/")}


def _settings_changed(monkeypatch, **env: str) -> None:
    from chalicelib.settings import settings

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings.cache_clear()


def test_the_relay_writes_and_reads_exactly_what_etcd_directly_does(relay, live_etcd, namespace):
    etcd = live_etcd.client()
    stores = {"direct": kv_etcd.EtcdConfigurations(etcd), "relay": LambdaConfigurations(relay)}
    written, answers = {}, {}
    for name, store in stores.items():
        etcd.delete_prefix(f"/vamp/{namespace}/")
        answers[name] = [publisher.publish(store, namespace, "2.6", g, text, checksum(text))
                         for g, text in ((1, "a\n"), (2, "a\n"), (3, "b\n"), (2, "old\n"))]
        written[name] = _keys_under(etcd, namespace)
    assert written["relay"] == written["direct"]
    assert set(written["direct"]) == {kv_keys.config_key(namespace, "2.6"), kv_keys.generation_key(namespace, "2.6"),
                                      kv_keys.signature_key(namespace, "2.6")}
    assert answers["relay"] == answers["direct"]
    assert [a.status for a in answers["direct"]] == ["published", "unchanged", "published", "superseded"]

    # Reads: one request for several namespaces, an empty one and garbage included, the same.
    garbage, empty = f"{namespace}-x", f"{namespace}-none"
    etcd.put(kv_keys.config_key(garbage, "2.6"), b"\xff\xfenot utf-8")
    etcd.put(kv_keys.generation_key(garbage, "2.6"), "not a number")
    names = [namespace, garbage, empty]
    assert stores["relay"].read(names, "2.6") == stores["direct"].read(names, "2.6")
    held = stores["relay"].read(names, "2.6")
    assert held[garbage] == Held(b"\xff\xfenot utf-8", None, b"") and held[empty] == Held()
    assert held[namespace].generation == 3 and held[namespace].configuration == b"b\n"


def test_a_gateway_put_publishes_through_the_function_which_never_sees_the_signing_key(
        relay, api, namespace, live_etcd, deliveries):
    assert api.put(f"/{namespace}/api/v1/gateways/shop", BODY).status_code == 202
    text, generation = publisher.current(kv_etcd.EtcdConfigurations(live_etcd.client()), namespace, "2.6")
    assert "gw.shop" in text and generation == 1
    signature = live_etcd.client().get(kv_keys.signature_key(namespace, "2.6"))[0]
    assert envelope.verify((TEST_SIGNING_KEY,), namespace, "2.6", generation, text.encode(), signature)

    publishes = [e for e in deliveries.seen if e["operation"] == "publish"]
    assert publishes and publishes[-1]["signature"] == signature.decode()
    assert base64.b64decode(publishes[-1]["configuration"]).decode() == text
    assert all(TEST_SIGNING_KEY not in json.dumps(e) for e in deliveries.seen)
    # what the agents' API route reads, through the function as well
    assert api.get(f"/{namespace}/api/v1/vga/haproxy/2.6/configuration").json == {"configuration": text,
                                                                                  "generation": 1}
    assert deliveries.seen[-1]["operation"] == "read"
    assert api.get(f"/{namespace}/api/v1/vga/haproxy/2.6%2F..%2Fx/configuration").status_code == 404


@pytest.mark.parametrize("fault", ["etcd away", "function timed out"])
def test_a_write_while_the_path_is_broken_is_stored_said_and_published_by_the_scheduled_pass(
        relay, api, namespace, live_etcd, deliveries, monkeypatch, fault):
    if fault == "etcd away":  # the function's etcd: nothing listens there
        _settings_changed(monkeypatch, VAMP_ETCD_ENDPOINT="127.0.0.1:1")
    else:
        deliveries.fail(10)
    assert api.put(f"/{namespace}/api/v1/gateways/shop", BODY).status_code == 202  # stored, not published
    events = api.get(f"/{namespace}/api/v1/events?tag=gateways:shop&tag=publish-failed").json
    assert events and f"publisher function {relay}" in events[0]["value"]["error"]
    assert ("Task timed out" if fault == "function timed out" else "EtcdFailed: etcd at 127.0.0.1:1: ConnectionFailed") \
        in events[0]["value"]["error"]
    etcd = kv_etcd.EtcdConfigurations(live_etcd.client())
    assert publisher.current(etcd, namespace, "2.6") is None
    store = DynamoDBArtifactStore()
    assert publisher.republish_all(store, publisher.no_targets)[namespace].startswith("error: ")  # still broken

    _settings_changed(monkeypatch, VAMP_ETCD_ENDPOINT=live_etcd.endpoint)  # etcd is back
    deliveries.fail(0)
    assert publisher.republish_all(store, publisher.no_targets) == {namespace: "published"}
    assert "gw.shop" in publisher.current(etcd, namespace, "2.6")[0]


def test_the_scheduled_pass_reads_every_namespace_in_one_invocation(relay, api, namespace, deliveries):
    names = [f"{namespace}-{i}" for i in range(3)]
    for ns in names:
        assert api.put(f"/{ns}/api/v1/gateways/shop", BODY).status_code == 202
    before = len(deliveries.seen)
    assert publisher.republish_all(DynamoDBArtifactStore(), publisher.no_targets) == {ns: "current" for ns in names}
    (pass_read,) = deliveries.seen[before:]
    assert pass_read == {"operation": "read", "version": "2.6", "namespaces": sorted(names)}


def _publish_payload(namespace: str = "team-a", **change) -> dict:
    text = b"global\n"
    payload = {"operation": "publish", "namespace": namespace, "version": "2.6", "generation": 1,
               "configuration": base64.b64encode(text).decode(),
               "signature": envelope.sign(TEST_SIGNING_KEY, namespace, "2.6", 1, text)}
    payload.update(change)
    return {k: v for k, v in payload.items() if v is not ...}


REFUSED = [
    ("payload", ["operation", "read"]),
    ("operation", {"operation": "delete", "key": "/vamp/team-a/gateways/x"}),
    ("unknown ['key']", _publish_payload(key="/vamp/other/gateways/haproxy/2.6/configuration")),
    ("missing ['signature']", _publish_payload(signature=...)),
    ("namespace", _publish_payload(namespace="../etc")),
    ("namespace", _publish_payload(namespace="team-a/gateways/haproxy/2.6/x")),
    ("namespace", _publish_payload(namespace="Team-A")),
    ("version", _publish_payload(version="2.6/../../../other")),
    ("version", _publish_payload(version="")),
    ("generation", _publish_payload(generation=-1)),
    ("generation", _publish_payload(generation=True)),
    ("generation", _publish_payload(generation="7")),
    ("signature", _publish_payload(signature="")),
    ("signature", _publish_payload(signature="v1:hmac-sha256:zz:00")),
    ("configuration", _publish_payload(configuration="not base64!")),
    ("configuration", _publish_payload(configuration="A" * 2_000_000)),
    ("namespaces", {"operation": "read", "version": "2.6", "namespaces": []}),
    ("namespaces", {"operation": "read", "version": "2.6", "namespaces": "team-a"}),
    ("namespaces", {"operation": "read", "version": "2.6", "namespaces": ["x"] * 1001}),
    ("namespace", {"operation": "read", "version": "2.6", "namespaces": ["team-a", "/"]}),
    ("namespace", {"operation": "read", "version": "2.6", "namespaces": [{"key": "/"}]}),
]


@pytest.mark.parametrize(("field", "payload"), REFUSED, ids=[f"{i}-{f}" for i, (f, _) in enumerate(REFUSED)])
def test_the_function_refuses_what_is_malformed_or_outside_the_gateway_keys(field, payload, live_etcd):
    etcd = live_etcd.client()
    with pytest.raises(Refused) as refused:
        serve(payload, store=kv_etcd.EtcdConfigurations(etcd))
    assert field in str(refused.value)
    assert etcd.get_prefix("/vamp/team-a/") == [] and etcd.get_prefix("/vamp/other/") == []
    assert etcd.get_prefix("/etc") == [] and etcd.get_prefix("/vamp/../") == []


def test_a_refusal_is_a_function_error_the_caller_raises_with_its_reason(relay, aws):
    lam = boto3.client("lambda", endpoint_url=aws, region_name="us-east-1")
    answer = lam.invoke(FunctionName=relay, Payload=json.dumps(_publish_payload(namespace="../etc")).encode())
    assert answer["FunctionError"] == "Unhandled"
    error = json.loads(answer["Payload"].read())
    assert error["errorType"] == "Refused" and "namespace '../etc'" in error["errorMessage"]
    # and an answer that is not the wire format is the caller's error too (moto's own echo)
    with pytest.raises(RelayError, match="a publish answered"):
        LambdaConfigurations(relay, client=_Echo()).publish(Signed("team-a", "2.6", 1, b"x", "v1:hmac-sha256:" + "0" * 12
                                                                   + ":" + "0" * 64))


class _Echo:
    """A Lambda that answers the payload it was sent (moto's backend without our dispatch)."""

    def invoke(self, FunctionName, InvocationType, Payload):  # noqa: N803 - boto3's names
        import io

        return {"StatusCode": 200, "Payload": io.BytesIO(Payload)}


def _credentials_in(monkeypatch, endpoint: str, **credentials: str) -> None:
    _settings_changed(monkeypatch, VAMP_ETCD_ENDPOINT=endpoint, VAMP_ETCD_CREDENTIALS=json.dumps(credentials))


def test_tls_through_the_function_from_the_credentials_pems(relay, tmp_path, monkeypatch, namespace):
    from tests.agent.helpers import Certificates, EtcdServer

    certs = Certificates(tmp_path / "pki")
    etcd = EtcdServer(tmp_path / "etcd", tls=certs).start()
    try:
        store, text = LambdaConfigurations(relay), "global\n"
        _credentials_in(monkeypatch, f"https://{etcd.endpoint}", ca=certs.ca_cert.read_text())
        with pytest.raises(RelayError, match=f"publisher function {relay}: EtcdFailed"):  # no client certificate
            publisher.publish(store, namespace, "2.6", 1, text, checksum(text))
        pems = {"ca": certs.ca_cert.read_text(), "cert": certs.client_cert.read_text(), "key": certs.client_key.read_text()}
        _credentials_in(monkeypatch, f"https://{etcd.endpoint}", **pems)
        assert publisher.publish(store, namespace, "2.6", 1, text, checksum(text)).status == "published"
        assert publisher.current(store, namespace, "2.6") == (text, 1)
        access = kv_etcd.etcd_access(f"https://{etcd.endpoint}")
        for path, what in ((access.ca_file, "ca"), (access.cert_file, "cert"), (access.key_file, "key")):
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and open(path).read() == pems[what]
    finally:
        etcd.stop()


def test_etcd_authentication_through_the_function_from_the_credentials(relay, tmp_path, monkeypatch, namespace):
    # etcd 3.4's JSON gateway refuses authentication from a client certificate with a CommonName
    # ("CommonName of client sending a request against gateway will be ignored"): with etcd auth,
    # TLS verifies the server (the "ca" PEM) and the user is the password's (docs/decisions/0036).
    from tests.agent.helpers import EtcdServer
    from tests.agent.test_etcd_security import PUBLISHER_PASSWORD, enable_auth

    etcd = EtcdServer(tmp_path / "etcd").start()
    try:
        enable_auth(etcd)
        store, text = LambdaConfigurations(relay), "global\n"
        _credentials_in(monkeypatch, etcd.endpoint)
        with pytest.raises(RelayError, match="user name is empty"):
            publisher.publish(store, namespace, "2.6", 1, text, checksum(text))
        _credentials_in(monkeypatch, etcd.endpoint, username="publisher", password="guess")
        with pytest.raises(RelayError, match="etcd refused user 'publisher'"):
            publisher.publish(store, namespace, "2.6", 1, text, checksum(text))
        _credentials_in(monkeypatch, etcd.endpoint, username="publisher", password=PUBLISHER_PASSWORD)
        assert publisher.publish(store, namespace, "2.6", 1, text, checksum(text)).status == "published"
        assert publisher.current(store, namespace, "2.6") == (text, 1)
    finally:
        etcd.stop()


def test_the_credentials_document_is_checked_without_showing_its_values():
    assert kv_etcd.credentials(None) == {} and kv_etcd.credentials('{"username": "p", "cert": ""}') == {"username": "p"}
    for text, reason in (("[1]", "an object"), ('{"pasword": "s3cret"}', "unknown keys ['pasword']"),
                         ('{"password": 7}', "password: a string"), ('{"ca": "s3cret"}', "ca: a PEM"),
                         ("{s3cret", "not JSON")):
        with pytest.raises(ValueError, match=reason.replace("[", r"\[").replace("]", r"\]")) as refused:
            kv_etcd.credentials(text)
        assert "s3cret" not in str(refused.value)


def test_a_read_over_the_answer_budget_comes_in_several_answers(relay, live_etcd, namespace, deliveries, monkeypatch):
    from chalicelib.kv import aws_lambda

    store = LambdaConfigurations(relay)
    names = [f"{namespace}-{i}" for i in range(4)]
    for ns in names:
        publisher.publish(store, ns, "2.6", 1, f"{ns}\n" * 50, checksum(f"{ns}\n" * 50))
    monkeypatch.setattr(aws_lambda, "ANSWER_BUDGET", 1000)  # about one configuration an answer
    before = len(deliveries.seen)
    held = store.read(names + [f"{namespace}-none"], "2.6")
    assert held == kv_etcd.EtcdConfigurations(live_etcd.client()).read(names + [f"{namespace}-none"], "2.6")
    assert [held[ns].configuration for ns in names] == [f"{ns}\n".encode() * 50 for ns in names]
    assert len(deliveries.seen) - before == 4  # each answer holds at least one, and stays under the budget


def test_a_publish_that_landed_but_whose_answer_was_lost_is_not_published_twice_nor_lost(
        relay, api, namespace, live_etcd, monkeypatch):
    # Half-succeeded: the function wrote etcd, then timed out before answering. The write is stored
    # and reported failed; the next pass finds etcd already at the store's generation and signature.
    lost = []

    def answer_lost(name, event, proceed):
        result = proceed(event)
        if name == "gateway_publish" and event.get("operation") == "publish" and not lost:
            lost.append(result)
            raise TimeoutError("Task timed out after 30.00 seconds")
        return result

    stepfunctions.interceptors.append(answer_lost)
    try:
        assert api.put(f"/{namespace}/api/v1/gateways/shop", BODY).status_code == 202
    finally:
        stepfunctions.interceptors.remove(answer_lost)
    assert lost and lost[0]["status"] == "published"  # etcd has it
    events = api.get(f"/{namespace}/api/v1/events?tag=gateways:shop&tag=publish-failed").json
    assert events and "Task timed out" in events[0]["value"]["error"]
    etcd = kv_etcd.EtcdConfigurations(live_etcd.client())
    held = publisher.current(etcd, namespace, "2.6")
    assert held and "gw.shop" in held[0]
    assert publisher.republish_all(DynamoDBArtifactStore(), publisher.no_targets) == {namespace: "current"}
    assert publisher.current(etcd, namespace, "2.6") == held
