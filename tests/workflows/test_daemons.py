"""Daemon workflows (decision 0043) on the local driver, for real: a supervised process group
with Vamp's workflow environment and a token that does not expire, restarted when it dies,
stopped on suspend and delete (its token revoked), started again by the scheduled pass when the
driver lost it."""
from __future__ import annotations

import os
import signal
import threading

import pytest

from chalicelib import drivers
from chalicelib.drivers import local
from chalicelib.drivers.processes import group_members
from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore
from chalicelib.store.event_backend import event_store
from chalicelib.store.event_store import EventQuery
from chalicelib.store.tokens import DynamoDBTokenStore
from chalicelib.workflows import daemons, lifecycle
from tests.drivers.helpers import wait_for


@pytest.fixture(autouse=True)
def _no_daemon_left():
    yield
    local._stop_all_daemons()


def _events(name, what):
    return event_store().query("default", EventQuery(tags=[f"workflows:{name}", what], per_page=100)).items


def _daemon(api, tmp_path, name="d", command=None):
    """A daemon that writes its environment to a file, then sleeps (in a child: its group)."""
    out = tmp_path / f"{name}.env"
    command = command or (
        f'echo "$VAMP_NAMESPACE $VAMP_WORKFLOW_NAME $VAMP_WORKFLOW_EXECUTION_TIMEOUT $COLOUR" > {out}.tmp; '
        f'echo "$VAMP_API_TOKEN" >> {out}.tmp; mv {out}.tmp {out}; echo "up as $$"; sleep 600 & wait')
    r = api.post("/api/v1/breeds", {"name": f"{name}-breed", "deployable": {"type": "command", "definition": command},
                                    "environment_variables": {"COLOUR": "red"}})
    assert r.status_code == 201, r.body
    r = api.post("/api/v1/workflows", {"name": name, "breed": f"{name}-breed", "schedule": "daemon"})
    assert r.status_code == 202, r.body
    return out


def _said(out):
    """(environment line, token) the daemon wrote, once it did."""
    wait_for(lambda: out.exists(), timeout=10)
    env, token = out.read_text().splitlines()
    return env, token


def _pid(name="d"):
    return local.LocalDriver().daemon_pid("default", name)


def _pass():
    return daemons.reconcile(DynamoDBArtifactStore(), "default", event_store(), event_store().publish)


def test_a_daemon_runs_with_the_workflow_environment_and_comes_back_when_killed(api, tmp_path):
    out = _daemon(api, tmp_path)
    assert api.get("/api/v1/workflows/d/status").json == "running"
    [scheduled] = _events("d", "scheduled")
    assert scheduled["value"]["schedule"] == "daemon" and scheduled["value"]["handle"].startswith("daemon-default-")
    env, token = _said(out)
    assert env == "default d 0 red"
    assert api.get("/api/v1/deployments", token=token).status_code == 200  # an operator of its namespace
    assert api.get("/other/api/v1/deployments", token=token).status_code == 403
    assert DynamoDBTokenStore().authenticate(token).expires_at is None  # no timeout to expire with

    first = _pid()
    out.unlink()
    os.killpg(first, signal.SIGKILL)
    wait_for(lambda: _pid() not in (None, first), timeout=10)
    assert not group_members(first)  # the old group is gone (its sleep too)
    _said(out)  # it ran again, with the same token
    assert _pass() == {"d": "restarted"}
    [restarted] = _events("d", "restarted")
    assert restarted["value"]["by"] == "driver" and restarted["value"]["restarts"] == 1
    assert restarted["value"]["exit_code"] == -signal.SIGKILL
    assert any(line.startswith("up as ") for line in restarted["value"]["log"])
    assert _pass() == {}  # reported once
    assert len(_events("d", "restarted")) == 1
    assert api.get("/api/v1/workflows/d/status").json == "running"  # Vamp's status string, unchanged


def test_suspend_stops_it_start_runs_it_again_with_a_new_token(api, tmp_path):
    out = _daemon(api, tmp_path)
    _, token = _said(out)
    pid = _pid()
    r = api.put("/api/v1/workflows/d/status", "suspend")
    assert r.status_code == 202 and r.json == "suspended"
    assert _pid() is None and not group_members(pid)
    assert api.get("/api/v1/deployments", token=token).status_code == 401  # revoked
    [unscheduled] = _events("d", "unscheduled")
    assert unscheduled["value"]["token_revoked"] is True and "up as" in unscheduled["value"]["log"][0]
    assert _pass() == {}  # suspended: nothing to start

    out.unlink()
    assert api.put("/api/v1/workflows/d/status", "start").json == "running"
    _, fresh = _said(out)
    assert fresh != token and api.get("/api/v1/deployments", token=fresh).status_code == 200
    assert _pid() not in (None, pid)

    out.unlink()
    before = _pid()
    assert api.put("/api/v1/workflows/d/status", "restart").json == "running"
    _, third = _said(out)
    # revoked in the store at once; this process's API trusts its last answer for 2 s (0022)
    assert third != fresh and DynamoDBTokenStore().authenticate(fresh) is None
    assert api.get("/api/v1/deployments", token=third).status_code == 200
    assert _pid() != before and not group_members(before)
    assert len(_events("d", "scheduled")) == 3


def test_delete_removes_it_and_revokes_its_token(api, tmp_path):
    out = _daemon(api, tmp_path)
    _, token = _said(out)
    pid = _pid()
    assert api.delete("/api/v1/workflows/d").status_code == 202
    assert _pid() is None and not group_members(pid)
    assert api.get("/api/v1/deployments", token=token).status_code == 401
    assert not [t for t in DynamoDBTokenStore().list() if t.name.startswith("daemon@")]
    [unscheduled] = _events("d", "unscheduled")
    assert unscheduled["value"]["token_revoked"] is True


def test_a_built_in_cannot_be_a_daemon(api):
    r = api.post("/api/v1/workflows", {"name": "h", "breed": "health", "schedule": "daemon"})
    assert r.status_code == 400
    [error] = r.json["errors"]
    assert error["path"] == "schedule" and "a built-in runs on a time or event schedule" in error["reason"]
    assert api.get("/api/v1/workflows/h").status_code == 404


def test_a_daemon_the_driver_refuses_stays_starting_and_says_why(api):
    assert api.post("/api/v1/breeds", {"name": "img", "deployable": "busybox"}).status_code == 201
    assert api.post("/api/v1/workflows", {"name": "i", "breed": "img", "schedule": "daemon"}).status_code == 202
    assert api.get("/api/v1/workflows/i/status").json == "starting"
    [failed] = _events("i", "failed")
    assert "`command` breeds only" in failed["value"]["error"]
    r = api.put("/api/v1/workflows/i/status", "running")
    assert r.status_code == 409 and r.json["errors"][0]["path"] == "schedule"
    assert "`command` breeds only" in r.json["errors"][0]["reason"]
    assert not [t for t in DynamoDBTokenStore().list() if t.name.startswith("daemon@")]  # revoked again


def test_the_pass_runs_again_a_daemon_the_driver_lost(api, tmp_path):
    """As after a restart of the local stack: its processes stopped with it, the store still says running."""
    out = _daemon(api, tmp_path)
    _, token = _said(out)
    local.stop_all()
    assert _pid() is None
    out.unlink()
    assert _pass() == {"d": "started"}
    _, fresh = _said(out)
    assert DynamoDBTokenStore().authenticate(token) is None
    assert api.get("/api/v1/deployments", token=fresh).status_code == 200
    [restarted] = _events("d", "restarted")
    assert restarted["value"]["by"] == "control plane"
    assert _pass() == {}


def test_the_pass_stops_a_daemon_no_running_workflow_asks_for(api, tmp_path):
    out = _daemon(api, tmp_path)
    _said(out)
    store = DynamoDBArtifactStore()
    stored = store.get("default", "workflows", "d")
    # suspended behind the driver's back (a writer that died between its two writes)
    from chalicelib.store.artifact_store import Write

    store.apply("default", [Write("workflows", "d", {**stored.document, "status": "suspended"}, stored.version)])
    pid = _pid()
    assert _pass() == {"d": "stopped"}
    assert _pid() is None and not group_members(pid)
    assert not [t for t in DynamoDBTokenStore().list() if t.name.startswith("daemon@")]


def test_the_daemon_pass_is_part_of_the_scheduled_pass(api, tmp_path):
    from chalicelib import jobs

    out = _daemon(api, tmp_path)
    _said(out)
    local.stop_all()
    assert jobs.every_minute()["daemons"] == {"default": {"d": "started"}}
    wait_for(lambda: _pid() is not None, timeout=5)


def test_concurrent_status_writers_lose_no_update_and_leave_the_driver_as_the_store_says(api, tmp_path):
    _daemon(api, tmp_path, command="sleep 600")
    store = DynamoDBArtifactStore()
    before = store.get("default", "workflows", "d").version
    outcomes, failures = [], []

    def write(request):
        try:
            outcomes.append(lifecycle.set_status(store, "default", "d", request, event_store().publish))
        except Exception as e:  # noqa: BLE001 - counted below
            failures.append(e)

    threads = [threading.Thread(target=write, args=(r,)) for r in ["suspend", "start", "restart"] * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    # a writer whose last write another overtook answers the status it then reads (0039)
    assert set(outcomes) <= {"running", "suspended", "restarting", "starting", "suspending"}
    stored = store.get("default", "workflows", "d")
    assert stored.version > before and stored.document["status"] in ("running", "suspended")
    _pass()  # whatever order the drivers' calls took, one pass makes the driver agree with the store
    running = drivers.driver_for("default").daemons("default") or {}
    tokens = [t.name for t in DynamoDBTokenStore().list() if t.name.startswith("daemon@")]
    if stored.document["status"] == "running":
        assert set(running) == {"d"} and tokens == [running["d"].token_name]
        with local._LOCK:
            token = local._DAEMONS[("default", "d")].spec.env["VAMP_API_TOKEN"]
        assert DynamoDBTokenStore().authenticate(token) is not None  # the one it runs with
    else:
        assert running == {} and tokens == []


def test_a_daemon_whose_token_was_revoked_gets_a_fresh_one_from_the_pass(api, tmp_path):
    out = _daemon(api, tmp_path)
    _, token = _said(out)
    [name] = [t.name for t in DynamoDBTokenStore().list() if t.name.startswith("daemon@default.d.")]
    DynamoDBTokenStore().revoke(name)
    out.unlink()
    assert _pass() == {"d": "started"}
    _, fresh = _said(out)
    assert fresh != token and DynamoDBTokenStore().authenticate(fresh) is not None
    [restarted] = _events("d", "restarted")
    assert restarted["value"]["reason"].startswith("its token was revoked")


def test_the_local_stack_runs_its_daemons_again_after_a_restart(aws, tmp_path, monkeypatch):
    """Through the stack's HTTP API: a daemon runs; the stack stops (its processes with it) and
    starts again on the same store; its first scheduled pass starts the daemon again."""
    import requests

    from chalicelib.workflows import in_process
    from local.stack import LocalStack, free_port

    monkeypatch.setenv("VAMP_GATEWAY_PORTS", "20000-24999")
    out = tmp_path / "daemon.env"
    command = f'echo "$VAMP_WORKFLOW_NAME" > {out}; echo "$VAMP_API_TOKEN" >> {out}; exec sleep 600'

    def stack():
        in_process.TIMER.clear()
        return LocalStack(api_port=free_port(), state_dir=tmp_path / "state", persist=False, quiet=True,
                          gateways=False).start()

    first = stack()
    try:
        url, auth = f"{first.api_url}/api/v1", {"Authorization": f"Bearer {first.token}"}
        breed = {"name": "watch", "deployable": {"type": "command", "definition": command}}
        assert requests.post(f"{url}/breeds", json=breed, headers=auth, timeout=30).status_code == 201
        r = requests.post(f"{url}/workflows", json={"name": "w", "breed": "watch", "schedule": "daemon"},
                          headers=auth, timeout=30)
        assert r.status_code == 202, r.text
        _, token = _said(out)
        pid = local.LocalDriver().daemon_pid("default", "w")
    finally:
        first.stop()
    assert not group_members(pid)  # stopped with the stack
    out.unlink()
    second = stack()
    try:
        _, fresh = _said(out)
        assert fresh != token
        url, auth = f"{second.api_url}/api/v1", {"Authorization": f"Bearer {second.token}"}
        assert requests.get(f"{url}/workflows/w/status", headers=auth, timeout=30).json() == "running"
        assert requests.get(f"{url}/deployments", headers={"Authorization": f"Bearer {fresh}"},
                            timeout=30).status_code == 200
        assert requests.get(f"{url}/deployments", headers={"Authorization": f"Bearer {token}"},
                            timeout=30).status_code == 401  # the last run's token, revoked
        events = requests.get(f"{url}/events", params={"tag": ["workflows:w", "restarted"]}, headers=auth,
                              timeout=30).json()
        assert [e["value"]["by"] for e in events] == ["control plane"]
    finally:
        second.stop()
    assert local.LocalDriver().daemon_pid("default", "w") is None


def test_a_time_workflow_made_a_daemon_keeps_no_time_schedule(api, tmp_path):
    from chalicelib.workflows import in_process

    command = "sleep 600"
    assert api.post("/api/v1/breeds", {"name": "b", "deployable": {"type": "command", "definition": command}}
                    ).status_code == 201
    timed = {"name": "t", "breed": "b", "schedule": {"time": {"period": "PT1M"}}}
    assert api.post("/api/v1/workflows", timed).status_code == 202
    assert api.put("/api/v1/workflows/t/status", "suspend").json == "suspended"
    assert in_process.TIMER.entry("default", "t") is not None  # kept, disabled
    r = api.put("/api/v1/workflows/t", {**timed, "schedule": "daemon"})
    assert r.status_code == 202, r.body
    assert in_process.TIMER.entry("default", "t") is None
    assert api.put("/api/v1/workflows/t/status", "start").json == "running"
    assert _pid("t") is not None


def test_a_daemon_created_suspended_runs_nothing_until_started(api, tmp_path):
    assert api.post("/api/v1/breeds", {"name": "b", "deployable": {"type": "command", "definition": "sleep 600"}}
                    ).status_code == 201
    r = api.post("/api/v1/workflows", {"name": "s", "breed": "b", "schedule": "daemon", "status": "suspended"})
    assert r.status_code == 202, r.body
    assert api.get("/api/v1/workflows/s/status").json == "suspended"
    assert _pid("s") is None and _events("s", "scheduled") == []
    assert not [t for t in DynamoDBTokenStore().list() if t.name.startswith("daemon@")]
    assert _pass() == {}
    assert api.put("/api/v1/workflows/s/status", "start").json == "running"
    assert _pid("s") is not None


def test_a_driver_that_cannot_stop_it_does_not_hold_the_suspension_up(api, tmp_path, monkeypatch):
    from chalicelib.drivers.base import DriverError

    out = _daemon(api, tmp_path)
    _, token = _said(out)
    real = local.LocalDriver.stop_daemon

    def away(self, namespace, name):
        raise DriverError("driver away")

    monkeypatch.setattr(local.LocalDriver, "stop_daemon", away)
    assert api.put("/api/v1/workflows/d/status", "suspend").json == "suspended"
    assert DynamoDBTokenStore().authenticate(token) is None  # revoked first: it can no longer act
    [unscheduled] = _events("d", "unscheduled")
    assert "driver away" in unscheduled["value"]["not_stopped"]
    assert _pid() is not None
    monkeypatch.setattr(local.LocalDriver, "stop_daemon", real)
    assert _pass() == {"d": "stopped"}  # the pass finishes it
    assert _pid() is None


def test_a_daemons_tokens_are_its_own_whatever_the_names(api, tmp_path):
    """Stopping `a` revokes a's tokens only, even for a workflow named after a's token prefix."""
    assert api.post("/api/v1/breeds", {"name": "b", "deployable": {"type": "command", "definition": "sleep 600"}}
                    ).status_code == 201
    prefix = daemons.token_prefix("default", "a")  # daemon@default.a.<digest>.
    lookalike = prefix.removeprefix("daemon@default.") + "x"  # a.<digest>.x
    for name in ("a", lookalike):
        r = api.post("/api/v1/workflows", {"name": name, "breed": "b", "schedule": "daemon"})
        assert r.status_code == 202, r.body
    assert api.put("/api/v1/workflows/a/status", "suspend").json == "suspended"
    [left] = [t.name for t in DynamoDBTokenStore().list() if t.name.startswith("daemon@")]
    assert left.startswith(daemons.token_prefix("default", lookalike))
    assert _pid(lookalike) is not None
