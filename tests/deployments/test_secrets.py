"""Secrets by reference (finding 11 of issue 10): an environment value `${ssm:...}` or
`${secretsmanager:...}` is stored, shown and archived as the reference; its value is read from
moto's SSM and Secrets Manager when the service is deployed, handed to the driver only, and
never in the deployment document, its digest, an archive event or a failure's notification."""
from __future__ import annotations

import json

import pytest

from chalicelib import aws
from chalicelib.deployments import sync
from chalicelib.deployments.environment import EnvironmentError_
from chalicelib.deployments.secrets import SecretSource
from chalicelib.drivers.base import DriverError, Instance, ServiceSpec, ServiceStatus

NS = "secrets"
PASSWORD, JSON_PASSWORD = "hunter2-ssm", "s3cret-from-sm"


class RecordingDriver:
    """Runs whatever it is given at once, and keeps every spec it was handed."""

    name = "recording"

    def __init__(self, fail_with: str | None = None):
        self.deployed: list[ServiceSpec] = []
        self.fail_with = fail_with
        self._running: dict[str, ServiceSpec] = {}

    def deploy(self, namespace, spec):
        if self.fail_with:
            raise DriverError(self.fail_with.format(**spec.env))  # a driver echoing what it was given
        self.deployed.append(spec)
        self._running[spec.key] = spec

    def undeploy(self, namespace, deployment, cluster, service):
        self._running.pop(f"{deployment}/{cluster}/{service}", None)

    def status(self, namespace, keys):
        return {k: ServiceStatus(k, "running", (Instance("i0", "127.0.0.1", {"port": 8080}, True),), 1, None,
                                 self._running[k].digest()) if k in self._running else ServiceStatus(k, "absent")
                for k in keys}

    def running(self, namespace):
        return {k: s.digest() for k, s in self._running.items()}


@pytest.fixture()
def driver(monkeypatch):
    """Every synchronisation of the test (the API's after a change too) uses one recording driver."""
    recording = RecordingDriver()
    monkeypatch.setattr(sync, "driver_for", lambda namespace: recording)
    return recording


@pytest.fixture()
def stored_secrets(aws):
    ssm, sm = aws_clients()
    ssm.put_parameter(Name="/shop/db/password", Value=PASSWORD, Type="SecureString", Overwrite=True)
    try:
        sm.create_secret(Name="shop/db", SecretString=json.dumps({"password": JSON_PASSWORD}))
    except sm.exceptions.ResourceExistsException:
        sm.put_secret_value(SecretId="shop/db", SecretString=json.dumps({"password": JSON_PASSWORD}))
    return ssm, sm


def aws_clients():
    return aws.client("ssm"), aws.client("secretsmanager")


def blueprint(**env) -> dict:
    return {"name": "shop", "clusters": {"web": {"services": [{"breed": {
        "name": "web:1", "deployable": {"type": "command", "definition": "run"}, "ports": {"port": "8080/http"},
        "environment_variables": {"DB_PASSWORD": "${ssm:/shop/db/password}", "LEVEL": "info",
                                  "DB_URL": "postgres://shop:${secretsmanager:shop/db#password}@db/shop", **env}}}]}}}


def service(api) -> dict:
    [s] = api.get(f"/{NS}/api/v1/deployments/shop").json["clusters"]["web"]["services"]
    return s


def test_the_driver_gets_the_values_the_store_and_history_keep_the_references(api, stored_secrets, driver):
    assert api.post(f"/{NS}/api/v1/deployments", blueprint()).status_code == 202
    sync.sync_namespace(NS)
    [spec] = driver.deployed
    assert spec.env == {"DB_PASSWORD": PASSWORD, "LEVEL": "info", "DB_URL": f"postgres://shop:{JSON_PASSWORD}@db/shop"}
    assert service(api)["status"]["phase"]["name"] == "done"

    shown = json.dumps([api.get(f"/{NS}/api/v1/deployments/shop").json, api.get(f"/{NS}/api/v1/breeds/web:1").json,
                        api.get(f"/{NS}/api/v1/events?per_page=1000").json])
    assert "${ssm:/shop/db/password}" in shown
    assert PASSWORD not in shown and JSON_PASSWORD not in shown
    # The digest (stored, and in Kubernetes annotations / ECS tags) is of the references and versions.
    assert service(api)["digest"] == spec.digest()
    assert PASSWORD not in repr(spec) and PASSWORD not in json.dumps(spec.sealed_env)
    assert spec.sealed_env["DB_PASSWORD"] == "${ssm:/shop/db/password@1}"
    # ECS lets the task read a variable that is wholly a secret (0038); DB_URL only holds one
    assert set(spec.secret_sources) == {"DB_PASSWORD"} and spec.secret_sources["DB_PASSWORD"].endswith(
        ":parameter/shop/db/password")


def test_a_rotated_secret_is_a_new_digest_the_same_value_the_same_digest(stored_secrets):
    ssm, _ = stored_secrets
    env = {"A": PASSWORD, "B": "8080"}
    before = SecretSource()
    assert before("ssm:/shop/db/password") == PASSWORD
    spec = ServiceSpec("d", "c", "s:1", "command", "run", env=env, sealed_env=before.seal(env))
    again = SecretSource()
    again("ssm:/shop/db/password")
    assert ServiceSpec("d", "c", "s:1", "command", "run", env=env, sealed_env=again.seal(env)).digest() == spec.digest()
    ssm.put_parameter(Name="/shop/db/password", Value="hunter3-ssm", Type="SecureString", Overwrite=True)
    rotated = SecretSource()
    env2 = {"A": rotated("ssm:/shop/db/password"), "B": "8080"}
    assert ServiceSpec("d", "c", "s:1", "command", "run", env=env2, sealed_env=rotated.seal(env2)).digest() != spec.digest()
    # Without secrets, the digest is the one it always was (no redeploy of everything on upgrade).
    plain = ServiceSpec("d", "c", "s:1", "command", "run", env={"B": "8080"})
    assert plain.digest() == ServiceSpec("d", "c", "s:1", "command", "run", env={"B": "8080"}, sealed_env=None).digest()


def test_a_missing_or_malformed_secret_fails_the_service_with_the_reference_only(api, stored_secrets, driver):
    assert api.post(f"/{NS}/api/v1/deployments", blueprint(API_KEY="${ssm:/shop/nope}")).status_code == 202
    assert driver.deployed == []
    phase = service(api)["status"]["phase"]
    assert phase["name"] == "failed"
    assert "environment variable API_KEY: secret ${ssm:/shop/nope}: ParameterNotFound" in phase["notification"]
    assert "ParameterNotFound" in phase["notification"]
    with pytest.raises(EnvironmentError_, match="not a JSON object with the key 'user'"):
        SecretSource()("secretsmanager:shop/db#user")


def test_a_driver_error_that_echoes_the_environment_is_scrubbed(api, stored_secrets, driver):
    driver.fail_with = "container env DB_PASSWORD={DB_PASSWORD} invalid"
    assert api.post(f"/{NS}/api/v1/deployments", blueprint()).status_code == 202
    phase = service(api)["status"]["phase"]
    assert phase["name"] == "failed" and "DB_PASSWORD=<redacted> invalid" in phase["notification"]
    assert PASSWORD not in json.dumps(api.get(f"/{NS}/api/v1/deployments/shop").json)


def test_a_malformed_secret_reference_is_a_400(api, driver):
    r = api.post(f"/{NS}/api/v1/deployments", blueprint(API_KEY="${ssm:/has space}"))
    assert r.status_code == 400, r.body
    assert r.json["errors"][0]["reason"].startswith("invalid secret reference"), r.body


def test_whole_secret_values_get_the_reference_ecs_reads_them_by(stored_secrets):
    ssm, sm = stored_secrets
    source = SecretSource()
    env = {"PW": source("ssm:/shop/db/password"), "JSON": source("secretsmanager:shop/db#password"),
           "URL": f"postgres://shop:{source('secretsmanager:shop/db#password')}@db/shop", "LEVEL": "info"}
    parameter = ssm.get_parameter(Name="/shop/db/password")["Parameter"]
    secret = sm.get_secret_value(SecretId="shop/db")
    assert source.value_sources(env) == {
        "PW": parameter["ARN"],
        "JSON": f"{secret['ARN']}:password::{secret['VersionId']}",  # the version the digest holds
    }
    assert SecretSource().value_sources({"LEVEL": "info"}) == {}
