"""What the SLA pass publishes triggers the workflows listening for it (docs/decisions/0044), as
POST /events does, with the same loop guard: escalations, generic SLA types and generic
escalations reach the workflows Vamp passed them to."""
from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib.store.event_store import new_event
from chalicelib.store.tokens import WORKFLOW
from tests.slas.test_slas import T0, blueprint, instances, rtsw, world  # noqa: F401 - the fixture


@pytest.fixture()
def listen(api, world):  # noqa: F811
    def listen(name, tags, breed="allocation"):
        r = api.post(f"/{world.ns}/api/v1/workflows", {"name": name, "breed": breed, "schedule": {"event": tags}})
        assert r.status_code == 202, r.body
    return listen


def _runs(world, name):  # noqa: F811
    return world.tagged(f"workflows:{name}", "started")


def test_a_workflow_listening_for_sla_escalate_of_a_deployment_runs_when_the_pass_escalates(world, listen):  # noqa: F811
    world.deploy(blueprint(rtsw([instances(minimum=1, maximum=3)], interval=60, cooldown=30)))
    listen("on-escalate", ["sla:escalate", "deployments:shop"])
    listen("on-scaled", ["escalation:scale_instances", "clusters:web"])
    listen("elsewhere", ["sla:escalate", "deployments:other"])
    world.run(T0)  # no metrics: nothing decided, nothing runs
    assert _runs(world, "on-escalate") == []
    world.response_times([250, 300], T0)
    world.run(T0)
    [sla] = world.tagged("sla:escalate")
    [run] = _runs(world, "on-escalate")
    assert run["value"]["trigger"]["id"] == sla["id"]
    assert run["value"]["trigger"]["value"]["response_time"] == sla["value"]["response_time"]
    [mark] = world.tagged("escalation:scale_instances")
    [scaled] = _runs(world, "on-scaled")
    assert scaled["value"]["trigger"]["id"] == mark["id"] and mark["value"]["after"] == 3
    assert _runs(world, "elsewhere") == []
    assert len(world.tagged("workflows:on-escalate", "finished")) == 1  # the run itself went through
    world.run(T0 + timedelta(seconds=10))  # within the cooldown: no new decision, no new run
    assert len(_runs(world, "on-escalate")) == 1 and len(_runs(world, "on-scaled")) == 1


def test_a_generic_sla_is_passed_to_its_workflow_whose_escalate_event_the_pass_applies(world, listen):  # noqa: F811
    """Vamp's generic SLA types: the pass publishes `sla:<type>` with the SLA's parameters each
    pass; the workflow listening decides and posts `sla:escalate`; the pass applies the SLA's
    escalations, within their bounds."""
    world.deploy(blueprint({"type": "queue_depth", "queue": "orders", "maximum_depth": 100,
                            "escalations": [instances(minimum=1, maximum=3)]}))
    listen("queue-check", ["sla:queue_depth", "deployments:shop", "clusters:web"])
    world.run(T0)
    [generic] = world.tagged("sla:queue_depth")
    assert generic["value"]["parameters"] == {"queue": "orders", "maximum_depth": 100}
    [run] = _runs(world, "queue-check")
    assert run["value"]["trigger"]["value"]["parameters"]["queue"] == "orders"
    assert world.scale()["instances"] == 2  # a generic type decides nothing by itself
    # what the workflow's script posts (its run's token: posted_by carries its chain)
    world.events.publish(world.ns, [new_event(["sla:escalate", "sla", "deployments:shop", "clusters:web"],
                                              {"queue": "orders", "depth": 250}, timestamp=T0 + timedelta(seconds=5),
                                              posted_by={"name": "workflow@x", "role": WORKFLOW,
                                                         "workflow": "queue-check", "chain": ["queue-check"]})])
    world.run(T0 + timedelta(seconds=61))
    assert world.scale()["instances"] == 3
    [mark] = world.tagged("escalation:scale_instances")
    assert mark["value"]["sla"] == {"queue": "orders", "depth": 250}


def test_a_generic_escalation_reaches_the_workflows_listening_for_it(world, listen):  # noqa: F811
    world.deploy(blueprint(rtsw([{"type": "page_someone", "team": "shop"}], interval=60, cooldown=30)))
    listen("pager", ["escalation:page_someone", "deployments:shop"])
    world.response_times([250, 300], T0)
    world.run(T0)
    [mark] = world.tagged("escalation:page_someone")
    assert mark["value"]["generic"]["parameters"] == {"team": "shop"}
    [run] = _runs(world, "pager")
    assert run["value"]["trigger"]["id"] == mark["id"]


def test_the_marks_of_a_runs_sla_event_never_trigger_a_workflow_of_its_chain(world, listen):  # noqa: F811
    """A workflow that posts `sla:escalate` and listens for the escalation it causes would loop
    through the pass (post, escalate, run, post...): the marks carry its run's chain."""
    world.deploy(blueprint({"type": "escalation_only", "escalations": [instances(minimum=1, maximum=9)]}))
    listen("self", ["escalation:scale_instances", "deployments:shop"])
    listen("other", ["escalation:scale_instances", "deployments:shop"])
    world.events.publish(world.ns, [new_event(["sla:escalate", "sla", "deployments:shop", "clusters:web"], {},
                                              timestamp=T0, posted_by={"name": "workflow@x", "role": WORKFLOW,
                                                                       "workflow": "self", "chain": ["self"]})])
    world.run(T0 + timedelta(seconds=1))
    assert world.scale()["instances"] == 3
    assert _runs(world, "self") == []
    [run] = _runs(world, "other")
    assert run["value"]["trigger"]["origin"] == ["self"]


def test_a_skip_during_a_release_reaches_its_listeners(world, listen):  # noqa: F811
    from types import SimpleNamespace

    world.deploy(blueprint(rtsw([instances()], interval=60, cooldown=30)))
    listen("held", ["slas:skipped", "deployments:shop"])
    world.releases.states = [SimpleNamespace(name="r1", gateway="shop/web/webport", stable="shop/web/web:1.0.0/webport",
                                             canary="shop/web/web:2.0.0/webport", holds_gateway=True)]
    world.response_times([250, 300], T0)
    world.run(T0)
    [run] = _runs(world, "held")
    assert run["value"]["trigger"]["value"]["release"] == "r1"


def test_the_apps_scheduled_pass_runs_the_listening_workflows_with_the_api_writers(world, listen, monkeypatch):  # noqa: F811
    """app.py's scheduled_pass hands the built-ins' writers in (the canary's gateway writes,
    autoscale's scale): the domain never imports the API layer."""
    from datetime import datetime, timezone

    import app
    from chalicelib.deployments import sync as deployments_sync
    from chalicelib.store import namespaces as registry
    from chalicelib.workflows import builtin_runs

    world.deploy(blueprint(rtsw([instances(minimum=1, maximum=3)])))
    registry.register("deployments", world.ns)
    listen("on-escalate", ["sla:escalate", "deployments:shop"])
    handed = []
    real = builtin_runs.RUNS["allocation"]
    monkeypatch.setitem(builtin_runs.RUNS, "allocation", lambda run: handed.append(run.writers) or real(run))
    monkeypatch.setattr(deployments_sync, "run_all", lambda: {})  # the other parts of the pass: their own tests
    world.response_times([900], datetime.now(timezone.utc))
    from local.schedules import _event

    out = app.scheduled_pass(_event("scheduled_pass"), None)  # as the local stack and EventBridge call it
    assert out["slas"][world.ns]["escalate"] == 1
    [writers] = handed
    assert writers.write_gateway is not None and writers.scale_service is not None
    assert len(_runs(world, "on-escalate")) == 1
