"""The local driver: real processes on loopback ports, restarts, health, no leaks."""
from __future__ import annotations

import dataclasses
import os
import signal
import urllib.request

import pytest

from chalicelib.drivers import DriverError, Guarded
from chalicelib.drivers.base import HealthCheckSpec, PortSpec, ServiceSpec
from chalicelib.drivers.local import LocalDriver
from tests.drivers.helpers import SERVER, image_spec, wait_for


def spec(version: str = "1", instances: int = 1, **kw) -> ServiceSpec:
    return ServiceSpec(deployment="d", cluster="c", service=f"svc:{version}", deployable_type="command",
                       definition=kw.pop("definition", SERVER), ports=(PortSpec("web", 0),),
                       env={"VERSION": version}, instances=instances, **kw)


@pytest.fixture()
def driver():
    d = LocalDriver()
    ns = f"t{os.getpid()}-{id(d)}"
    yield d, ns
    d.undeploy_namespace(ns)


def get(instance) -> str:
    with urllib.request.urlopen(f"http://{instance.host}:{instance.ports['web']}/", timeout=2) as r:
        return r.read().decode()


def ready(d, ns, key):
    st = d.status(ns, [key])[key]
    return st if st.state == "running" else None


def test_deploys_answers_and_undeploys_without_leaks(driver):
    d, ns = driver
    s = spec(instances=2)
    d.deploy(ns, s)
    st = wait_for(lambda: ready(d, ns, s.key), what="running")
    assert len(st.instances) == 2 and all(i.healthy and i.host == "127.0.0.1" for i in st.instances)
    assert {get(i) for i in st.instances} == {"1"}
    assert len({i.ports["web"] for i in st.instances}) == 2
    assert d.running(ns) == {s.key: s.digest()}
    pids = d.pids(ns, s.key)
    d.undeploy(ns, "d", "c", "svc:1")
    assert d.running(ns) == {}
    assert d.status(ns, [s.key])[s.key].state == "absent"
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    d.undeploy(ns, "d", "c", "svc:1")  # twice is fine


def test_same_spec_is_a_no_op_and_scaling_keeps_instances(driver):
    d, ns = driver
    s = spec()
    d.deploy(ns, s)
    first = d.pids(ns, s.key)
    d.deploy(ns, s)
    assert d.pids(ns, s.key) == first
    bigger = ServiceSpec(**{**s.to_dict(), "ports": s.ports, "instances": 3})
    d.deploy(ns, bigger)
    assert d.pids(ns, s.key)[0] == first[0] and len(d.pids(ns, s.key)) == 3
    st = wait_for(lambda: ready(d, ns, s.key))
    assert len(st.instances) == 3 and st.digest == bigger.digest()


def test_a_scale_in_gives_the_stopped_instance_its_grace_to_finish(driver, tmp_path):
    """`sh -c` exits at once on TERM; the service it started must still get the grace to answer
    what it holds (killing its group when sh exited cut requests in flight: 502s in the demo)."""
    d, ns = driver
    drains = ("import os,signal,sys,time\n"
              "mark = os.environ['MARK'] + os.environ['VAMP_INSTANCE']\n"
              "def drain(*_):\n"
              "  time.sleep(0.5); open(mark, 'w').write('drained'); sys.exit(0)\n"
              "signal.signal(signal.SIGTERM, drain)\n"
              "open(mark, 'w').write('up')\n"
              "time.sleep(60)\n")
    s = ServiceSpec(deployment="d", cluster="c", service="svc:1", deployable_type="command",
                    definition=f"python3 -c \"{drains}\"", env={"MARK": str(tmp_path / "mark-")}, instances=2)
    d.deploy(ns, s)
    wait_for(lambda: all((tmp_path / f"mark-{i}").exists() and (tmp_path / f"mark-{i}").read_text() == "up"
                         for i in (0, 1)), what="both instances up")
    d.deploy(ns, ServiceSpec(**{**s.to_dict(), "instances": 1}))
    wait_for(lambda: (tmp_path / "mark-1").read_text() != "up", what="the dropped instance stopped", timeout=10)
    assert (tmp_path / "mark-1").read_text() == "drained"  # stopped after it finished, not killed mid-way
    assert (tmp_path / "mark-0").read_text() == "up" and len(d.pids(ns, s.key)) == 1


def test_a_scaled_in_instance_leaves_the_status_at_once_and_serves_until_its_drain_ends(driver, monkeypatch):
    """The pass publishes gateways from the status: the dropped instance must be out of it before
    it stops answering, or HAProxy sends requests to a closing socket (502s on scale-in)."""
    from chalicelib.drivers import local

    monkeypatch.setattr(local, "SCALE_IN_DRAIN", 1.5)
    d, ns = driver
    s = spec(instances=2)
    d.deploy(ns, s)
    st = wait_for(lambda: ready(d, ns, s.key), what="two instances")
    dropped = st.instances[1]
    d.deploy(ns, dataclasses.replace(s, instances=1))
    after = d.status(ns, [s.key])[s.key]
    assert [i.name for i in after.instances] == [st.instances[0].name] and after.state == "running"
    assert get(dropped) == "1"  # still answering while the gateways move off it
    wait_for(lambda: _refused(dropped), what="the dropped instance stopped after its drain", timeout=10)


def _refused(instance) -> bool:
    try:
        get(instance)
    except OSError:
        return True
    return False


def test_a_killed_process_comes_back_on_the_same_port(driver):
    d, ns = driver
    s = spec()
    d.deploy(ns, s)
    st = wait_for(lambda: ready(d, ns, s.key))
    port = st.instances[0].ports["web"]
    (pid,) = d.pids(ns, s.key)
    os.killpg(pid, signal.SIGKILL)
    wait_for(lambda: d.pids(ns, s.key) and d.pids(ns, s.key)[0] != pid, what="restart")
    st = wait_for(lambda: ready(d, ns, s.key), what="healthy again")
    assert st.instances[0].ports["web"] == port and get(st.instances[0]) == "1"


def test_a_crashing_command_fails_with_its_reason_and_backs_off(driver):
    d, ns = driver
    s = spec(definition="exit 3")
    d.deploy(ns, s)
    st = wait_for(lambda: (x := d.status(ns, [s.key])[s.key]).state == "failed" and x, timeout=10)
    assert "exited with code 3" in st.reason and not st.instances[0].healthy


def test_health_check_path_decides(driver):
    d, ns = driver
    s = spec(health_checks=(HealthCheckSpec("web", "/anything", "HTTP", 0, 1, 1, 1),))
    d.deploy(ns, s)
    assert wait_for(lambda: ready(d, ns, s.key))
    tcp_only = spec(definition="sleep 30")
    d.deploy(ns, tcp_only)
    st = d.status(ns, [tcp_only.key])[tcp_only.key]
    assert st.state == "deploying" and "port" in st.reason


def test_images_are_refused_with_a_reason(driver):
    d, ns = driver
    with pytest.raises(DriverError, match="command"):
        Guarded(d).deploy(ns, image_spec())


def test_state_is_shared_between_driver_objects(driver):
    d, ns = driver
    s = spec()
    d.deploy(ns, s)
    assert LocalDriver().running(ns) == {s.key: s.digest()}


def test_a_services_workdir_argument_is_its_process_directory(driver, tmp_path):
    d, ns = driver
    mark = tmp_path / "cwd"
    s = ServiceSpec(deployment="d", cluster="c", service="svc:1", deployable_type="command",
                    definition=f"pwd > {mark}; sleep 60", arguments=(("workdir", str(tmp_path)),))
    d.deploy(ns, s)
    wait_for(lambda: mark.exists() and mark.read_text().strip(), what="the process wrote its directory")
    assert mark.read_text().strip() == str(tmp_path)
    with pytest.raises(DriverError, match="argument 'privileged'.*local driver"):
        d.deploy(ns, dataclasses.replace(s, service="svc:2", arguments=(("privileged", "true"),)))
    assert d.status(ns, ["d/c/svc:2"])["d/c/svc:2"].state == "absent"
