"""A CloudWatch alarm going to ALARM aborts the releases of the gateways it names (decision 0041)
and escalates the SLAs of the deployment clusters it names; back to OK from ALARM it de-escalates
them (decision 0044).

An alarm names a gateway `<namespace>/<gateway>` (namespaces have no `/`; gateway names may):
- in its tags: key `vamp:gateway`, or `vamp:gateway:<anything>` for more than one, value
  `<namespace>/<gateway>`. Read from the event's `alarmTags` when the alarm propagates its
  tags, else with cloudwatch:ListTagsForResource on the alarm (the event's resource);
- in its description: `vamp:gateway=<namespace>/<gateway>`, any number, separated by blanks.
The release holding each gateway is aborted through the API's abort (releases/operations.act);
every outcome is an event naming the alarm (`alarm:aborted`, `alarm:refused`, `alarm:idle`).

An alarm names a cluster `<namespace>/<deployment>/<cluster>` the same ways: tag `vamp:cluster`
(or `vamp:cluster:<anything>`), or `vamp:cluster=<namespace>/<deployment>/<cluster>` in its
description. Its SLA is escalated as an `sla:escalate` of the SLA check would be, by the SLA pass's
own code and rules (slas/check.escalate: interval + cooldown, bounds, `to_one` order, nothing
while a release holds a gateway routing there); the SLA event and each escalation carry the
alarm's figures (name, state reason and its data, metric). Outcomes: `alarm:escalated`,
`alarm:deescalated`, `alarm:refused` (why), `alarm:waiting` (a release runs there).
"""
from __future__ import annotations

import logging
import re

from chalicelib import aws
from chalicelib.automations.events import current_writers, note, triggering
from chalicelib.errors import Conflict, NotFound

log = logging.getLogger(__name__)

PATTERN = {"source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"],
           "detail": {"state": {"value": ["ALARM", "OK"]}}}
TAG = "vamp:gateway"
DESCRIBED = TAG + "="  # a word of the description: vamp:gateway=<namespace>/<gateway>
_NAMED = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]{0,62})/(\S{1,255})$")
CLUSTER_TAG = "vamp:cluster"
CLUSTER_DESCRIBED = CLUSTER_TAG + "="  # vamp:cluster=<namespace>/<deployment>/<cluster>
_CLUSTER = re.compile(r"^([a-z0-9][a-z0-9-]{0,62})/([^/\s]{1,255})/([^/\s]{1,255})$")
MAX_FIGURES = 2048  # characters of the alarm's reason data carried in the events


def named_gateways(tags: dict[str, str], description: str | None) -> list[tuple[str, str]]:
    """(namespace, gateway) pairs an alarm names, in order, once each."""
    found: dict[tuple[str, str], None] = {}
    values = [v for k, v in sorted(tags.items()) if k == TAG or k.startswith(TAG + ":")]
    values += [word[len(DESCRIBED):] for word in (description or "").split() if word.startswith(DESCRIBED)]
    for value in values:
        m = _NAMED.fullmatch(value.strip())
        if m:
            found.setdefault((m.group(1), m.group(2)), None)
        else:
            log.info("alarm names %r: not <namespace>/<gateway>", value)
    return list(found)


def named_clusters(tags: dict[str, str], description: str | None) -> list[tuple[str, str, str]]:
    """(namespace, deployment, cluster) triples an alarm names, in order, once each."""
    found: dict[tuple[str, str, str], None] = {}
    values = [v for k, v in sorted(tags.items()) if k == CLUSTER_TAG or k.startswith(CLUSTER_TAG + ":")]
    values += [word[len(CLUSTER_DESCRIBED):] for word in (description or "").split()
               if word.startswith(CLUSTER_DESCRIBED)]
    for value in values:
        m = _CLUSTER.fullmatch(value.strip())
        if m:
            found.setdefault((m.group(1), m.group(2), m.group(3)), None)
        else:
            log.info("alarm names %r: not <namespace>/<deployment>/<cluster>", value)
    return list(found)


def figures_of(event: dict) -> dict:
    """What the alarm said: its name, ARN, state and reason (with CloudWatch's reason data, the
    datapoints and threshold, when it is JSON of bounded size), the previous state, the metric."""
    import json

    detail = event.get("detail") or {}
    state, previous = detail.get("state") or {}, detail.get("previousState") or {}
    reason_data = state.get("reasonData")
    if isinstance(reason_data, str) and len(reason_data) <= MAX_FIGURES:
        try:
            reason_data = json.loads(reason_data)
        except ValueError:
            pass
    elif reason_data is not None:
        reason_data = None  # too big to carry: the alarm's history has it
    metrics = []
    for m in (detail.get("configuration") or {}).get("metrics") or []:
        stat = (m or {}).get("metricStat") or {}
        metric = stat.get("metric") or {}
        metrics.append({k: v for k, v in {"namespace": metric.get("namespace"), "name": metric.get("name"),
                                          "dimensions": metric.get("dimensions"), "stat": stat.get("stat"),
                                          "period": stat.get("period"), "expression": (m or {}).get("expression")
                                          }.items() if v is not None})
    return {"alarm": str(detail.get("alarmName") or ""), "arn": next(iter(event.get("resources") or []), None),
            "state": state.get("value"), "previous_state": previous.get("value"), "reason": state.get("reason"),
            "reason_data": reason_data, "since": state.get("timestamp"), "metrics": metrics[:10],
            "event": event.get("id")}


def alarm_tags(event: dict, client=None) -> dict[str, str]:
    detail = event.get("detail") or {}
    propagated = detail.get("alarmTags")
    if isinstance(propagated, dict):
        return {str(k): str(v) for k, v in propagated.items()}
    arns = [r for r in event.get("resources") or [] if isinstance(r, str) and ":alarm:" in r]
    if not arns:
        return {}
    try:
        answer = (client or aws.client("cloudwatch")).list_tags_for_resource(ResourceARN=arns[0])
    except Exception as e:  # noqa: BLE001 - the description may still name gateways
        log.warning("tags of alarm %s not read: %s", arns[0], e)
        return {}
    return {t["Key"]: t["Value"] for t in answer.get("Tags", [])}


def on_alarm(event: dict, d=None, client=None, writers=None, escalations=None) -> list[dict]:
    """One alarm state change: ALARM aborts the named gateways' releases and escalates the named
    clusters; OK after ALARM de-escalates them. Returns the automation events it published (they
    trigger the workflows listening; `writers`: the handler layer's, for the built-ins)."""
    detail = event.get("detail") if isinstance(event, dict) else None
    state = (detail.get("state") or {}).get("value") if isinstance(detail, dict) else None
    if state not in ("ALARM", "OK"):
        return []
    description = (detail.get("configuration") or {}).get("description")
    description = description if isinstance(description, str) else None
    tags = alarm_tags(event, client)
    with triggering(writers):
        out = _abort(event, detail, named_gateways(tags, description), d) if state == "ALARM" else []
        out += _escalate(event, named_clusters(tags, description), escalations or {})
    if not out:
        log.info("alarm %s names no gateway or cluster", detail.get("alarmName"))
    return out


def _escalate(event: dict, clusters: list[tuple[str, str, str]], escalations: dict) -> list[dict]:
    """The named clusters' SLAs: escalated on ALARM, de-escalated on OK after ALARM (an OK from
    INSUFFICIENT_DATA recovers from nothing)."""
    if not clusters:
        return []
    from chalicelib.slas import check, rules  # the domain's models: loaded by this function only

    figures = figures_of(event)
    if figures["state"] == "OK" and figures["previous_state"] != "ALARM":
        return []
    direction = rules.ESCALATE if figures["state"] == "ALARM" else rules.DEESCALATE
    alarm = figures["alarm"]
    source = f"alarm:{alarm}:{figures['event']}"
    out = []
    for namespace, deployment, cluster in clusters:
        tags = [f"alarms:{alarm}", f"deployments:{deployment}", f"clusters:{cluster}"]
        try:
            done = check.escalate(namespace, deployment, cluster, direction, {"alarm": figures}, source=source,
                                  extra_tags=(f"alarms:{alarm}",), writers=current_writers(), **escalations)
        except Exception as e:  # noqa: BLE001 - one cluster never stops the others
            log.exception("alarm %s: escalation of %s/%s/%s failed", alarm, namespace, deployment, cluster)
            done = {"outcome": "refused", "reason": f"{type(e).__name__}: {e}"[:500]}
        if done["outcome"] == "duplicate":
            continue  # a redelivery: its first delivery said what happened
        kind = {"applied": f"alarm:{direction}d", "waiting": "alarm:waiting"}.get(done["outcome"], "alarm:refused")
        out.append(note(namespace, [kind, *tags], {**figures, "deployment": deployment, "cluster": cluster,
                                                    "direction": direction, "escalation": done}))
    return out


def _abort(event: dict, detail: dict, gateways: list[tuple[str, str]], d) -> list[dict]:
    alarm = str(detail.get("alarmName") or "")
    if not gateways:
        return []
    from chalicelib.releases import operations as releases  # pydantic models: loaded by this function only

    d = d or releases.deps()
    state = detail.get("state") or {}
    value = {"alarm": alarm, "arn": next(iter(event.get("resources") or []), None), "reason": state.get("reason"),
             "since": state.get("timestamp"), "event": event.get("id")}
    out = []
    for namespace, gateway in gateways:
        tags = [f"alarms:{alarm}", f"gateways:{gateway}"]
        holder = d.store.holder(namespace, gateway)
        if holder is None:
            out.append(note(namespace, ["alarm:idle", *tags], {**value, "gateway": gateway,
                                                                "outcome": "no release is running on the gateway"}))
            continue
        try:
            aborted = releases.act(d, namespace, holder, "abort")
        except (Conflict, NotFound) as e:
            out.append(note(namespace, ["alarm:refused", *tags, f"releases:{holder}"],
                            {**value, "gateway": gateway, "release": holder, "outcome": str(e)}))
            continue
        log.info("alarm %s aborted release %s/%s", alarm, namespace, holder)
        out.append(note(namespace, ["alarm:aborted", *tags, f"releases:{holder}"],
                        {**value, "gateway": gateway, "release": holder, "phase": aborted["phase"],
                         "outcome": f"release {holder} aborted by alarm {alarm}"}))
    return out
