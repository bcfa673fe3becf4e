"""Which driver a namespace gets: the operator's configuration, never the caller's choice
(docs/decisions/0026); and nothing heavy is imported to find out."""
from __future__ import annotations

import subprocess
import sys

import pytest

from chalicelib import drivers
from chalicelib.settings import Settings

LAMBDA = {"AWS_LAMBDA_FUNCTION_NAME": "vamp-dev"}


def test_the_operator_maps_namespaces_to_drivers():
    s = Settings.from_env({"VAMP_DRIVER": "kubernetes", "VAMP_NAMESPACE_DRIVERS": "team-a=ecs, dev=local"})
    assert s.driver_for("team-a", {}) == "ecs" and s.driver_for("dev", {}) == "local"
    assert s.driver_for("other", {}) == "kubernetes"
    assert Settings.from_env({}).driver_for("x", {}) == "local"  # off Lambda: the local stack's default


@pytest.mark.parametrize("env, message", [
    ({"VAMP_DRIVER": "nomad"}, "VAMP_DRIVER must be one of"),
    ({"VAMP_NAMESPACE_DRIVERS": "team-a=swarm"}, "the driver of 'team-a' must be one of"),
    ({"VAMP_NAMESPACE_DRIVERS": "team-a"}, "is not <namespace>=<driver>"),
    ({"VAMP_NAMESPACE_DRIVERS": "Team_A=ecs"}, "is not <namespace>=<driver>"),
    ({"VAMP_NAMESPACE_DRIVERS": "a=ecs,a=kubernetes"}, "names 'a' twice"),
    ({"VAMP_ALLOW_LOCAL_DRIVER": "sure"}, "must be true or false"),
    # The old per-namespace variable is refused at start rather than silently ignored.
    ({"VAMP_DRIVER_TEAM_A": "ecs"}, "VAMP_DRIVER_TEAM_A: no longer read"),
    ({"VAMP_KUBE_NAMESPACE_PREFIX": "kube-"}, "VAMP_KUBE_NAMESPACE_PREFIX"),
    ({"VAMP_KUBE_NAMESPACE_PREFIX": "Vamp_"}, "VAMP_KUBE_NAMESPACE_PREFIX"),
    ({"VAMP_KUBE_POD_SECURITY": "lax"}, "VAMP_KUBE_POD_SECURITY must be one of"),
])
def test_a_wrong_driver_setting_fails_at_start(env, message):
    with pytest.raises(ValueError, match=message):
        Settings.from_env(env)


def test_a_namespace_name_picks_no_driver():
    # Before: VAMP_DRIVER_<NS> was looked up from the namespace's name, so `a-b` and `a_b`-style
    # names, or any variable an operator left around, decided the driver. Now only the mapping does.
    s = Settings.from_env({"VAMP_DRIVER": "kubernetes", "VAMP_NAMESPACE_DRIVERS": "dev=ecs"})
    assert s.driver_for("dev", {"VAMP_DRIVER_DEV": "local"}) == "ecs"
    assert s.driver_for("path", {"VAMP_DRIVER_PATH": "local"}) == "kubernetes"


def test_local_is_refused_on_lambda_unless_the_operator_allows_it():
    default = Settings.from_env({})
    with pytest.raises(ValueError, match="refused on Lambda"):
        default.driver_for("x", LAMBDA)
    mapped = Settings.from_env({"VAMP_DRIVER": "kubernetes", "VAMP_NAMESPACE_DRIVERS": "dev=local"})
    assert mapped.driver_for("prod", LAMBDA) == "kubernetes"
    with pytest.raises(ValueError, match="VAMP_ALLOW_LOCAL_DRIVER=true"):
        mapped.driver_for("dev", LAMBDA)
    allowed = Settings.from_env({"VAMP_ALLOW_LOCAL_DRIVER": "true"})
    assert allowed.allow_local_driver is True and allowed.driver_for("x", LAMBDA) == "local"


def test_a_refused_driver_is_a_reason_not_a_crash(monkeypatch):
    from chalicelib.settings import settings

    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "vamp-dev")
    settings.cache_clear()
    try:
        d = drivers.driver_for("team")
        st = d.status("team", ["a/b/c"])["a/b/c"]
        assert st.state == "failed" and "refused on Lambda" in st.reason
        assert d.running("team") is None
        with pytest.raises(drivers.DriverError, match="refused on Lambda"):
            d.deploy("team", None)
    finally:
        monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME")
        settings.cache_clear()


def test_local_is_the_default_and_cached():
    a, b = drivers.driver_for("default"), drivers.driver_for("default")
    assert a.name == "local" and a.driver is b.driver


def test_importing_drivers_is_light():
    code = ("import sys, chalicelib.drivers, chalicelib.drivers.base; "
            "print(any(m in sys.modules for m in ('kubernetes', 'boto3', 'pydantic')))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"
