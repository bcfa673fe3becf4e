"""A CloudWatch alarm going to ALARM aborts the releases of the gateways it names (decision 0041).

An alarm names a gateway `<namespace>/<gateway>` (namespaces have no `/`; gateway names may):
- in its tags: key `vamp:gateway`, or `vamp:gateway:<anything>` for more than one, value
  `<namespace>/<gateway>`. Read from the event's `alarmTags` when the alarm propagates its
  tags, else with cloudwatch:ListTagsForResource on the alarm (the event's resource);
- in its description: `vamp:gateway=<namespace>/<gateway>`, any number, separated by blanks.
The release holding each gateway is aborted through the API's abort (releases/operations.act);
every outcome is an event naming the alarm (`alarm:aborted`, `alarm:refused`, `alarm:idle`).
"""
from __future__ import annotations

import logging
import re

from chalicelib import aws
from chalicelib.automations.events import note
from chalicelib.errors import Conflict, NotFound

log = logging.getLogger(__name__)

PATTERN = {"source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"],
           "detail": {"state": {"value": ["ALARM"]}}}
TAG = "vamp:gateway"
DESCRIBED = TAG + "="  # a word of the description: vamp:gateway=<namespace>/<gateway>
_NAMED = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]{0,62})/(\S{1,255})$")


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


def on_alarm(event: dict, d=None, client=None) -> list[dict]:
    detail = event.get("detail") if isinstance(event, dict) else None
    if not isinstance(detail, dict) or (detail.get("state") or {}).get("value") != "ALARM":
        return []
    alarm = str(detail.get("alarmName") or "")
    description = (detail.get("configuration") or {}).get("description")
    gateways = named_gateways(alarm_tags(event, client), description if isinstance(description, str) else None)
    if not gateways:
        log.info("alarm %s names no gateway", alarm)
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
