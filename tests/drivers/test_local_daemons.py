"""The local driver's daemons (decision 0043): supervised process groups restarted with backoff,
their output's tail in their status, their records and logs gone when they stop."""
from __future__ import annotations

import pytest

from chalicelib.drivers import local
from chalicelib.drivers.base import DriverError, JobSpec
from chalicelib.drivers.processes import group_members
from tests.drivers.helpers import wait_for


@pytest.fixture()
def driver(tmp_path, monkeypatch):
    from chalicelib.settings import settings

    monkeypatch.setenv("VAMP_LOCAL_WORK_DIR", str(tmp_path))
    settings.cache_clear()
    yield local.LocalDriver()
    local._stop_all_daemons()
    settings.cache_clear()


def _spec(command: str, name: str = "d") -> JobSpec:
    return JobSpec(name=name, deployable_type="command", definition=command, env={"WHO": "daemon"},
                   labels={"token": "daemon@t.1"})


def test_a_daemon_that_keeps_dying_is_restarted_with_backoff_and_reported_failed(driver, caplog):
    import re

    caplog.set_level("WARNING", logger="chalicelib.drivers.local")
    driver.run_daemon("ns", _spec('echo "boom from $WHO"; exit 3'))
    status = wait_for(lambda: (s := driver.daemons("ns")["d"]).restarts >= 3 and s.state == "failed" and s, timeout=20)
    assert status.exit_code == 3 and status.token_name == "daemon@t.1"
    assert status.log[-1] == "boom from daemon" and len(status.log) <= local.DAEMON_LOG_LINES
    assert "exited with code 3" in status.reason
    delays = [float(m) for m in re.findall(r"daemon ns/d exited with 3; restart in ([0-9.]+)s", caplog.text)]
    assert delays[:3] == [0.25, 0.5, 1.0]  # the services' backoff: doubling, capped at 10 s


def test_stop_takes_its_whole_group_its_record_and_its_log(driver):
    handle = driver.run_daemon("ns", _spec("sleep 600 & echo started; wait"))
    pid = driver.daemon_pid("ns", "d")
    wait_for(lambda: "started" in driver.daemons("ns")["d"].log, timeout=10)
    assert len(group_members(pid)) == 2  # the shell and its sleep
    assert list(local.run_dir().glob(f"{handle}-*.json"))
    driver.stop_daemon("ns", "d")
    assert not group_members(pid)
    assert not list(local.run_dir().glob(f"{handle}-*.json"))
    assert not (local.work_dir() / "daemons" / f"{handle}.log").exists()
    assert driver.daemons("ns") == {}
    driver.stop_daemon("ns", "d")  # nothing there: not an error


def test_run_again_replaces_it_one_instance_at_a_time(driver):
    driver.run_daemon("ns", _spec("exec sleep 600"))
    first = driver.daemon_pid("ns", "d")
    driver.run_daemon("ns", _spec("exec sleep 601"))
    assert not group_members(first) and driver.daemon_pid("ns", "d") != first
    assert list(driver.daemons("ns")) == ["d"] and driver.daemons("other") == {}


def test_a_log_past_its_bound_keeps_its_tail(driver, monkeypatch):
    monkeypatch.setattr(local, "DAEMON_LOG_BYTES", 10_000)
    driver.run_daemon("ns", _spec("i=0; while [ $i -lt 3000 ]; do echo line $i; i=$((i+1)); done; exec sleep 600"))
    wait_for(lambda: driver.daemons("ns")["d"].log[-1:] == ("line 2999",), timeout=20)
    with local._LOCK:
        path = local._DAEMONS[("ns", "d")].log_path
    wait_for(lambda: path.stat().st_size <= 10_000, timeout=10)


def test_images_are_refused(driver):
    with pytest.raises(DriverError, match="`command` breeds only"):
        driver.run_daemon("ns", JobSpec(name="i", deployable_type="container/docker", definition="busybox"))


def test_a_daemons_workdir_argument_is_its_directory_and_others_are_refused(driver, tmp_path):
    import dataclasses

    work = tmp_path / "work"
    work.mkdir()
    driver.run_daemon("ns", dataclasses.replace(_spec("pwd; sleep 60"), arguments=(("workdir", str(work)),)))
    wait_for(lambda: str(work) in driver.daemons("ns")["d"].log, what="the daemon printed its directory")
    with pytest.raises(DriverError, match="argument 'privileged'.*local driver"):
        driver.run_daemon("ns", dataclasses.replace(_spec("sleep 60", name="e"), arguments=(("privileged", "true"),)))
    assert "e" not in driver.daemons("ns")
