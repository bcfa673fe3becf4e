"""The stage configuration names a real driver (issue 10, finding 1; docs/decisions/0026): on
Lambda, every deployed stage serves every namespace with kubernetes or ecs, and no stage turns
the local driver on."""
from __future__ import annotations

import json

import pytest

from chalicelib.settings import Settings, namespace_drivers
from tests.infra.templates import ROOT

CONFIG = json.loads((ROOT / ".chalice" / "config.json").read_text())
# `local` is the local stack's (local/stack.py starts the API with it, off Lambda); never packaged.
DEPLOYED = sorted(s for s in CONFIG["stages"] if s != "local")


def stage_env(stage: str) -> dict[str, str]:
    return {**CONFIG.get("environment_variables", {}), **CONFIG["stages"][stage].get("environment_variables", {})}


def test_there_is_a_deployed_stage():
    assert DEPLOYED


@pytest.mark.parametrize("stage", DEPLOYED)
def test_a_deployed_stage_names_a_real_driver(stage):
    # The stack's Driver parameter reaches every function but the publisher (infra/resources.yaml's
    # Globals); the stage's own variables must not override it.
    from infra.template import functions, packaged

    template = packaged(stage)
    allowed = template["Parameters"]["Driver"]["AllowedValues"]
    assert allowed and set(allowed) <= {"kubernetes", "ecs"}
    assert "VAMP_DRIVER" not in stage_env(stage)
    for name, function in functions(template).items():
        env = function["Properties"]["Environment"]["Variables"]
        assert env.get("VAMP_DRIVER") == ({"Ref": "Driver"} if name != "GatewayPublish" else None), name
    for driver in allowed:
        env = {**stage_env(stage), "VAMP_DRIVER": driver}
        assert "VAMP_ALLOW_LOCAL_DRIVER" not in env
        on_lambda = {**env, "AWS_LAMBDA_FUNCTION_NAME": f"vamp-{stage}"}
        s = Settings.from_env(on_lambda)
        for namespace in ["default", "team-a", *namespace_drivers(s.namespace_drivers)]:
            assert s.driver_for(namespace, on_lambda) in ("kubernetes", "ecs")


@pytest.mark.parametrize("stage", sorted(CONFIG["stages"]))
def test_no_stage_runs_the_local_driver_on_lambda(stage):
    # Even the local stack's stage, were it ever deployed: the local driver is refused there.
    env = {**stage_env(stage), "AWS_LAMBDA_FUNCTION_NAME": f"vamp-{stage}"}
    s = Settings.from_env(env)
    for namespace in ["default", "kube-system"]:
        try:
            kind = s.driver_for(namespace, env)
        except ValueError as e:
            assert "refused on Lambda" in str(e)
        else:
            assert kind != "local"
