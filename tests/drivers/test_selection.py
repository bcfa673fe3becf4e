"""Which driver a namespace gets, and that nothing heavy is imported to find out."""
from __future__ import annotations

import subprocess
import sys

import pytest

from chalicelib import drivers
from chalicelib.settings import Settings


def test_driver_per_namespace_from_the_environment():
    s = Settings.from_env({"VAMP_DRIVER": "kubernetes"})
    assert s.driver == "kubernetes"
    env = {"VAMP_DRIVER_TEAM_A": "ecs"}
    assert s.driver_for("team-a", env) == "ecs" and s.driver_for("other", env) == "kubernetes"
    assert Settings.from_env({}).driver_for("x", {}) == "local"
    with pytest.raises(ValueError, match="VAMP_DRIVER"):
        Settings.from_env({"VAMP_DRIVER": "nomad"})
    with pytest.raises(ValueError, match="VAMP_DRIVER_X"):
        s.driver_for("x", {"VAMP_DRIVER_X": "swarm"})


def test_a_broken_configuration_is_a_reason_not_a_crash(monkeypatch):
    from chalicelib.settings import settings

    monkeypatch.setenv("VAMP_DRIVER_BROKEN", "swarm")
    settings.cache_clear()
    try:
        d = drivers.driver_for("broken")
        st = d.status("broken", ["a/b/c"])["a/b/c"]
        assert st.state == "failed" and "swarm" in st.reason
        assert d.running("broken") is None
        with pytest.raises(drivers.DriverError, match="swarm"):
            d.deploy("broken", None)
    finally:
        settings.cache_clear()


def test_local_is_the_default_and_cached():
    a, b = drivers.driver_for("default"), drivers.driver_for("default")
    assert a.name == "local" and a.driver is b.driver


def test_importing_drivers_is_light():
    code = ("import sys, chalicelib.drivers, chalicelib.drivers.base; "
            "print(any(m in sys.modules for m in ('kubernetes', 'boto3', 'pydantic')))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"
