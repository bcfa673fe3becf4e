"""SLAs and escalations with Vamp's rules (docs/decisions/0040), on moto: metric events as the
agents post them, the deployments' own store and scale operation, a driver that runs what it is
given, and the SLA pass with a clock the test moves."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from chalicelib.deployments import operations, sync
from chalicelib.slas import check
from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore
from chalicelib.store.event_backend import event_store
from chalicelib.store.event_store import EventQuery, new_event
from chalicelib.store.tokens import AGENT
from tests.deployments.helpers import breed
from tests.deployments.test_summaries import Driver

T0 = datetime.now(timezone.utc).replace(microsecond=0)


def rtsw(escalations, upper=200, lower=50, interval=60, cooldown=60) -> dict:
    return {"type": "response_time_sliding_window", "threshold": {"upper": upper, "lower": lower},
            "window": {"interval": interval, "cooldown": cooldown}, "escalations": escalations}


def instances(minimum=1, maximum=4, scale_by=1, **extra) -> dict:
    return {"type": "scale_instances", "minimum": minimum, "maximum": maximum, "scale_by": scale_by, **extra}


def blueprint(sla=None, clusters=("web",), scale=None) -> dict:
    scale = scale or {"cpu": 0.5, "memory": "256MB", "instances": 2}
    out = {"name": "shop", "clusters": {}}
    for c in clusters:
        out["clusters"][c] = {"services": [{"breed": breed(f"{c}:1.0.0"), "scale": dict(scale)}]}
    if sla is not None:
        out["clusters"][clusters[0]]["sla"] = sla
    return out


class Releases:
    """The release store's `list`, as the SLA pass reads it."""

    def __init__(self):
        self.states = []

    def list(self, namespace):
        return self.states


class World:
    def __init__(self, ns: str, driver: Driver):
        self.ns, self.driver, self.store, self.releases = ns, driver, DynamoDBArtifactStore(), Releases()
        self.events = event_store()

    def deploy(self, bp: dict) -> None:
        operations.change(self.store, self.ns, None, bp, "merge", self.events.publish)
        self.settle()

    def settle(self) -> None:
        result = sync.sync_namespace(self.ns, store=self.store, driver=self.driver, publish=self.events.publish)
        assert not result.errors, result

    def response_times(self, values, at: datetime, cluster="web", port="webport") -> None:
        """One agent's windows (10 s apart, ending at `at`) of the internal gateway's mean time."""
        events = [new_event([f"gateways:shop/{cluster}/{port}", "metrics:responseTime"], v, type="metrics",
                            timestamp=at - timedelta(seconds=10 * i), posted_by={"name": "agent", "role": AGENT})
                  for i, v in enumerate(values)]
        self.events.publish(self.ns, events)

    def run(self, at: datetime) -> check.Pass:
        return check.check_namespace(self.ns, store=self.store, events=self.events, releases=self.releases,
                                     driver=self.driver, clock=at)

    def scale(self, cluster="web") -> dict:
        doc = operations.get(self.store, self.ns, "shop").document
        return doc["clusters"][cluster]["services"][0]["scale"]

    def tagged(self, *tags) -> list[dict]:
        return self.events.query(self.ns, EventQuery(tags=list(tags), per_page=100)).items


@pytest.fixture()
def world(aws, monkeypatch):
    driver = Driver()
    monkeypatch.setattr(sync, "driver_for", lambda namespace: driver)
    return World(f"s{uuid.uuid4().hex[:10]}", driver)


def test_a_breach_scales_up_to_the_maximum_and_recovery_back_to_the_minimum(world):
    world.deploy(blueprint(rtsw([instances(minimum=1, maximum=3, scale_by=1)], interval=60, cooldown=30)))
    t = T0
    for expected in (3, 3):  # 2 -> 3, then 4 would pass the maximum: stays at 3
        world.response_times([250, 300], t)
        result = world.run(t)
        assert result.escalate == 1, result
        assert world.scale()["instances"] == expected
        world.settle()
        t += timedelta(seconds=91)
    none = world.tagged("escalation:none")
    assert len(none) == 1 and "outside [1, 3]" in none[0]["value"]["why"][0]["why"]
    for expected in (2, 1, 1):  # below lower: down by one to the minimum, never under it
        world.response_times([10, 20], t)
        result = world.run(t)
        assert result.deescalate == 1, result
        assert world.scale()["instances"] == expected
        world.settle()
        t += timedelta(seconds=91)
    assert world.driver.specs  # the driver runs the scaled spec
    assert len(world.tagged("escalation:scale_instances")) == 3


def test_events_carry_the_figures(world):
    world.deploy(blueprint(rtsw([instances()], upper=200, lower=50, interval=60, cooldown=30)))
    world.response_times([240, 260], T0)
    world.run(T0)
    (sla,) = world.tagged("sla:escalate")
    assert {"sla", "deployments:shop", "clusters:web"} <= set(sla["tags"])
    v = sla["value"]
    assert v["response_time"] == 250.0 and v["response_times"] == {"shop/web/webport": 250.0}
    assert v["threshold"] == {"upper": 200, "lower": 50} and v["window"]["interval"] == 60
    assert v["samples"] == {"shop/web/webport": 2}
    (action,) = world.tagged("escalation:scale_instances")
    assert {"escalations", "deployments:shop", "clusters:web"} <= set(action["tags"])
    a = action["value"]
    assert (a["before"], a["after"], a["minimum"], a["maximum"], a["scale_by"]) == (2, 3, 1, 4, 1)
    assert a["sla_event"] == sla["id"] and a["direction"] == "escalate" and a["sla"]["response_time"] == 250.0
    assert (a["cluster"], a["service"], a["field"]) == ("web", "web:1.0.0", "instances")


def test_cooldown_no_second_escalation_within_interval_plus_cooldown(world):
    world.deploy(blueprint(rtsw([instances(maximum=10)], interval=60, cooldown=60)))
    world.response_times([500], T0)
    assert world.run(T0).escalate == 1
    world.settle()
    later = T0 + timedelta(seconds=119)  # the sla event is 119 s old: within 60 + 60
    world.response_times([500], later)
    result = world.run(later)
    assert result.escalate == 0 and result.skipped == {"cooldown": 1}
    assert world.scale()["instances"] == 3
    after = T0 + timedelta(seconds=121)
    world.response_times([500], after)
    assert world.run(after).escalate == 1
    assert world.scale()["instances"] == 4


def test_not_checked_while_services_are_not_done(world):
    world.deploy(blueprint(rtsw([instances()])))
    world.driver.mode = "slow"
    operations.scale(world.store, world.ns, "shop", "web", "web:1.0.0",
                     {"cpu": 0.5, "memory": 256, "instances": 1}, world.events.publish)
    world.settle()  # deploying: phase updating
    world.response_times([900], T0)
    result = world.run(T0)
    assert result.skipped == {"services not done": 1} and result.escalate == 0
    assert world.tagged("sla") == []


def test_skipped_while_a_release_runs_on_a_gateway_routing_to_the_cluster(world):
    world.deploy(blueprint(rtsw([instances()])))
    world.releases.states = [SimpleNamespace(name="canary-1", gateway="shop/web/webport", holds_gateway=True,
                                             stable="shop/web/web:1.0.0/webport", canary="shop/web/web:1.1.0/webport")]
    world.response_times([900], T0)
    result = world.run(T0)
    assert result.skipped == {"release": 1} and world.scale()["instances"] == 2
    (skip,) = world.tagged("slas:skipped")
    assert skip["value"]["release"] == "canary-1" and "partial traffic" in skip["value"]["reason"]
    world.releases.states = [SimpleNamespace(name="canary-1", gateway="shop/web/webport", holds_gateway=False,
                                             stable="x", canary="y")]  # finished: checked again
    assert world.run(T0).escalate == 1


def test_a_release_on_an_external_gateway_routing_to_the_cluster_holds_it_too(world):
    world.deploy(blueprint(rtsw([instances()])))
    world.releases.states = [SimpleNamespace(name="r", gateway="edge", holds_gateway=True,
                                             stable="shop/web/webport", canary="other/web/webport")]
    world.response_times([900], T0)
    assert world.run(T0).skipped == {"release": 1}


def test_a_release_elsewhere_does_not_hold_the_cluster(world):
    world.deploy(blueprint(rtsw([instances()])))
    world.releases.states = [SimpleNamespace(name="r", gateway="other/web/webport", holds_gateway=True,
                                             stable="other/web/web:1.0.0/webport", canary="other/web/web:2/webport")]
    world.response_times([900], T0)
    assert world.run(T0).escalate == 1 and world.scale()["instances"] == 3


def test_to_one_from_the_head_on_escalate_from_the_tail_on_deescalate(world):
    sla = rtsw([{"type": "to_one", "escalations": [
        instances(minimum=1, maximum=5, scale_by=1),
        {"type": "scale_cpu", "minimum": 0.5, "maximum": 2, "scale_by": 0.5}]}], interval=60, cooldown=0)
    world.deploy(blueprint(sla))
    world.response_times([900], T0)
    world.run(T0)
    assert world.scale()["instances"] == 3 and world.scale()["cpu"] == 0.5  # the head
    world.settle()
    t = T0 + timedelta(seconds=61)
    world.response_times([1], t)
    world.run(t)
    # the tail first: cpu 0.5 - 0.5 = 0 is under its minimum, so the next from the tail acts
    assert world.scale()["instances"] == 2 and world.scale()["cpu"] == 0.5
    world.settle()
    operations.scale(world.store, world.ns, "shop", "web", "web:1.0.0",
                     {"cpu": 1.5, "memory": 256, "instances": 2}, world.events.publish)
    world.settle()
    t += timedelta(seconds=61)
    world.response_times([1], t)
    world.run(t)
    assert world.scale()["cpu"] == 1.0 and world.scale()["instances"] == 2  # the tail


def test_to_all_scale_memory_and_a_target_cluster(world):
    sla = rtsw([instances(minimum=1, maximum=5, scale_by=2),
                {"type": "scale_memory", "minimum": "128MB", "maximum": "1GB", "scale_by": "128MB"},
                {"type": "scale_cpu", "minimum": 0.25, "maximum": 4, "scale_by": 0.25, "target": "db"}])
    world.deploy(blueprint(sla, clusters=("web", "db")))
    world.response_times([900], T0)
    result = world.run(T0)
    assert result.actions == 3
    web, db = world.scale("web"), world.scale("db")
    assert web["instances"] == 4 and web["memory"] in ("384MB", "384.00MB") and web["cpu"] == 0.5
    assert db["cpu"] == 0.75 and db["instances"] == 2
    kinds = sorted(e["value"]["type"] for e in world.tagged("escalations", "deployments:shop"))
    assert kinds == ["scale_cpu", "scale_instances", "scale_memory"]
    (cpu,) = world.tagged("escalation:scale_cpu")
    assert cpu["value"]["cluster"] == "db" and (cpu["value"]["before"], cpu["value"]["after"]) == (0.5, 0.75)


def test_no_metrics_takes_no_decision(world):
    world.deploy(blueprint(rtsw([instances()], lower=50)))
    result = world.run(T0)  # no traffic: no figure, so not below lower
    assert result.skipped == {"no metrics": 1} and result.deescalate == 0
    assert world.tagged("sla") == [] and world.scale()["instances"] == 2


def test_metrics_not_posted_by_agents_are_not_counted(world):
    world.deploy(blueprint(rtsw([instances()])))
    world.events.publish(world.ns, [new_event(["gateways:shop/web/webport", "metrics:responseTime"], 900,
                                              type="metrics", timestamp=T0, posted_by={"name": "u", "role": "admin"})])
    assert world.run(T0).skipped == {"no metrics": 1}


def test_escalation_only_acts_on_posted_sla_events_once(world):
    world.deploy(blueprint({"type": "escalation_only", "escalations": [instances(maximum=6)]}))
    world.events.publish(world.ns, [new_event(["sla:escalate", "sla", "deployments:shop", "clusters:web"],
                                              {"by": "a workflow"}, timestamp=T0)])
    world.run(T0)
    assert world.scale()["instances"] == 3
    world.settle()
    world.run(T0 + timedelta(seconds=60))  # already handled
    assert world.scale()["instances"] == 3


def test_generic_sla_and_escalations_are_events_for_workflows(world):
    world.deploy(blueprint({"type": "escalation_only", "escalations": [{"type": "notify", "channel": "ops"}]}))
    world.events.publish(world.ns, [new_event(["sla:escalate", "deployments:shop", "clusters:web"], {},
                                              timestamp=T0)])
    world.run(T0)
    (generic,) = world.tagged("escalation:notify")
    assert generic["value"]["generic"]["parameters"] == {"channel": "ops"}
    assert world.scale()["instances"] == 2


def test_a_generic_sla_type_is_published_each_pass(world):
    world.deploy(blueprint({"type": "queue_depth", "maximum": 10}))
    world.run(T0)
    (event,) = world.tagged("sla:queue_depth")
    assert event["value"]["parameters"] == {"maximum": 10}


def test_a_referenced_sla_and_escalation_are_resolved(world):
    from chalicelib import artifacts
    from chalicelib.deployments import route_targets

    for kind, doc in (("escalations", {"name": "up", **instances(maximum=9)}),
                      ("slas", {"name": "fast", **rtsw([])})):
        artifacts.change(world.store, world.events.publish, world.ns, [artifacts.Document(kind, doc)], "create",
                         targets=route_targets.source)
    world.deploy(blueprint({"reference": "fast", "escalations": ["up"]}))
    world.response_times([900], T0)
    world.run(T0)
    assert world.scale()["instances"] == 3


def test_the_idle_pass_reads_no_deployment_without_an_sla(world):
    from tests.deployments.test_summaries import Reads

    world.deploy(blueprint())
    with Reads(world.ns) as reads:
        result = world.run(T0)
    assert reads.documents == [] and result.summary()["checked"] == 0
    assert sorted(set(reads.calls)) == ["GetItem", "Query"]  # the summaries, and the kind's count


BAD = {
    "target": (rtsw([instances(target="nope")]), "sla.escalations[0].target"),
    "reference": ({"reference": "nosuch"}, "sla.reference"),
    "threshold": ({"type": "response_time_sliding_window", "window": {"interval": 60, "cooldown": 60}},
                  "sla.threshold"),
    "lower over upper": (rtsw([instances()], upper=10, lower=20), "sla.threshold.lower"),
    "interval": (rtsw([instances()], interval=0), "sla.window.interval"),
    "scale_by": (rtsw([instances(scale_by=0)]), "sla.escalations[0].scale_by"),
    "whole instances": (rtsw([instances(scale_by=1.5)]), "sla.escalations[0].scale_by"),
    "minimum over maximum": (rtsw([instances(minimum=5, maximum=2)]), "sla.escalations[0].minimum"),
    "empty group": (rtsw([{"type": "to_one", "escalations": []}]), "sla.escalations[0].escalations"),
    "nested target": (rtsw([{"to_all": [instances(), instances(target="db2")]}]),
                      "sla.escalations[0].escalations[1].target"),
}


@pytest.fixture()
def quiet_driver(monkeypatch):
    """The API's synchronisation after a change runs this driver, not local processes."""
    driver = Driver()
    monkeypatch.setattr(sync, "driver_for", lambda namespace: driver)
    return driver


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_sla_is_a_400_with_the_field_and_nothing_written(api, quiet_driver, case):
    body, path = BAD[case]
    assert api.post("/api/v1/deployments", blueprint(rtsw([instances()]))).status_code == 202
    before = api.get("/api/v1/deployments/shop/clusters/web/sla").json
    r = api.put("/api/v1/deployments/shop/clusters/web/sla", body)
    assert r.status_code == 400, r.body
    assert path in [e["path"] for e in r.json["errors"]], r.json
    assert api.get("/api/v1/deployments/shop/clusters/web/sla").json == before


def test_a_blueprint_sla_reference_with_escalations_to_an_unknown_cluster_is_a_400(api, quiet_driver):
    r = api.post("/api/v1/deployments", blueprint({"reference": "fast", "escalations": [instances(target="nope")]}))
    assert r.status_code == 400
    assert [e["path"] for e in r.json["errors"]] == ["clusters.web.sla.escalations[0].target"]


def test_the_scheduled_pass_runs_the_sla_check(world):
    from chalicelib import jobs
    from chalicelib.store import namespaces as registry

    world.deploy(blueprint(rtsw([instances()])))
    registry.register("deployments", world.ns)
    world.response_times([900], datetime.now(timezone.utc))
    out = jobs.check_slas()
    assert out[world.ns]["escalate"] == 1 and out[world.ns]["actions"] == 1
    assert world.scale()["instances"] == 3


def test_through_the_api_a_breach_scales_and_the_events_say_why(api, quiet_driver):
    """A platform engineer's sentence: keep this cluster under 200 ms between 2 and 10 instances."""
    from chalicelib import jobs

    sla = rtsw([instances(minimum=2, maximum=10, scale_by=1)], upper=200, lower=20, interval=30, cooldown=30)
    assert api.post("/api/v1/deployments", blueprint(sla)).status_code == 202
    assert api.get("/api/v1/deployments/shop/clusters/web/sla").json["threshold"] == {"upper": 200, "lower": 20}
    window = [{"tags": ["gateways:shop/web/webport", "metrics:responseTime"], "type": "metrics", "value": v}
              for v in (310, 290)]
    assert api.post("/api/v1/events", window, token=api.token_of("agent")).status_code == 201
    jobs.check_slas()
    scale = api.get("/api/v1/deployments/shop/clusters/web/services/web:1.0.0/scale").json
    assert scale["instances"] == 3
    (why,) = api.get("/api/v1/events?tag=sla:escalate&tag=deployments:shop").json
    assert why["value"]["response_time"] == 300.0
    (action,) = api.get("/api/v1/events?tag=escalation:scale_instances").json
    assert (action["value"]["before"], action["value"]["after"], action["value"]["sla_event"]) == (2, 3, why["id"])
    services = api.get("/api/v1/deployments/shop").json["clusters"]["web"]["services"]
    assert services[0]["status"]["phase"]["name"] == "done"  # synchronised at once, as an API scale is


def test_a_summary_from_before_the_flag_is_read_once_then_carries_it(world):
    from chalicelib.deployments.operations import KIND
    from tests.deployments.test_summaries import Reads

    world.deploy(blueprint())
    version, summary = world.store.summaries(world.ns, KIND).items["shop"]
    old = {k: v for k, v in summary.items() if k != "sla"}
    assert world.store.put_summary(world.ns, KIND, "shop", version, old)
    with Reads(world.ns) as reads:
        world.run(T0)
    assert reads.documents == ["BatchGetItem:shop"]
    assert world.store.summaries(world.ns, KIND).items["shop"] == (version, {**old, "sla": False})
    with Reads(world.ns) as reads:
        world.run(T0)
    assert reads.documents == []
