"""The state machine's ARN comes only from settings (VAMP_RELEASE_STATE_MACHINE, set by the
template): on Lambda without it, starting a release is a clear 503, never a guessed name."""
from __future__ import annotations

import pytest

from chalicelib.releases.machine import MachineUnavailable, StepFunctionsMachine
from chalicelib.settings import settings


@pytest.fixture(autouse=True)
def _fresh_settings():
    settings.cache_clear()
    yield
    settings.cache_clear()  # the next test reads its own environment, not this one's


class _NoCalls:
    def __getattr__(self, name):
        raise AssertionError(f"no AWS call expected, got {name}")


def test_without_the_setting_a_release_is_unavailable_and_nothing_is_guessed(monkeypatch):
    monkeypatch.delenv("VAMP_RELEASE_STATE_MACHINE", raising=False)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "vamp-dev-APIHandler-AbC123")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    settings.cache_clear()
    machine = StepFunctionsMachine(client=_NoCalls())
    assert machine.arn is None
    with pytest.raises(MachineUnavailable) as e:
        machine.start("x", {})
    assert e.value.status == 503
    assert "VAMP_RELEASE_STATE_MACHINE" in str(e.value)


def test_the_setting_is_used_as_given():
    arn = "arn:aws-cn:states:cn-north-1:123456789012:stateMachine:vamp-x-release"
    assert StepFunctionsMachine(arn=arn, client=_NoCalls()).arn == arn
