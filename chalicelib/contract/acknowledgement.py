"""What a gateway agent reports about itself: the agent PUTs one to
`[/<ns>]/api/v1/vga/nodes/<node>` after every apply and as a heartbeat every few seconds; the
control plane keeps the latest per node and judges releases on it (docs/decisions/0018).

    {"node": "ip-10-0-1-7", "namespace": "default", "generation": 42,
     "checksum": "sha256:...", "status": "applied", "message": null,
     "sent": 1764662400.125, "interval": 5.0}

- generation: the namespace generation etcd held with the configuration the node serves (a later
  generation with the same text counts as applied, with no reload); None before the first apply.
- status: "applied" (serving `generation`), "rejected" (the node refused the newest configuration:
  `rejected_generation` and `message` say which and why; the node still serves `generation`),
  "pending" (nothing from etcd applied yet).
- stage (rejected only): what refused it: "signature" (unsigned, or not signed for this
  namespace and generation), "generation" (older than the one served: a replay), "allowlist" (a
  section or directive the control plane never renders), "haproxy -c", or "reload" (HAProxy
  refused to run what `-c` passed, e.g. a port the node already uses).
- rejected_gateways (rejected only): the gateways the refusal names, decoded from the proxy
  names in HAProxy's message or the lines refused (contract/log_format.proxy_gateway); empty
  when it names none (a bad signature concerns the whole namespace).
- sent: the agent's clock, epoch seconds: an older report never replaces a newer one.
- interval: the agent's heartbeat period, so the control plane can tell silence from slowness.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

STATUSES = ("applied", "rejected", "pending")
STAGES = ("signature", "generation", "allowlist", "haproxy -c", "reload")
GATEWAYS_MAX = 50
NODE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
MESSAGE_MAX = 2000


class InvalidAcknowledgement(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


@dataclass(frozen=True)
class Acknowledgement:
    node: str
    namespace: str
    generation: int | None
    checksum: str | None
    status: str
    sent: float
    interval: float
    message: str | None = None
    rejected_generation: int | None = None
    stage: str | None = None
    rejected_gateways: tuple[str, ...] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def node_path(namespace: str, node: str) -> str:
    """The path an agent PUTs its acknowledgement to (non-default namespaces by a path prefix)."""
    prefix = "" if namespace == "default" else f"/{namespace}"
    return f"{prefix}/api/v1/vga/nodes/{node}"


def _int_or_none(data: dict, field: str) -> int | None:
    value = data.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidAcknowledgement(field, "a generation: an integer >= 0, or null")
    return value


def _number(data: dict, field: str, default: float | None = None) -> float:
    value = data.get(field, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise InvalidAcknowledgement(field, "a number >= 0")
    return float(value)


def parse(data: Any, namespace: str, node: str) -> Acknowledgement:
    """An acknowledgement from a request body; the path names the node and the namespace (a body
    naming others is refused). InvalidAcknowledgement(field, reason) on anything else."""
    if not isinstance(data, dict):
        raise InvalidAcknowledgement("body", "an acknowledgement is a map")
    if not NODE_ID.match(node):
        raise InvalidAcknowledgement("node", "1-128 characters: letters, digits, _ . : -, starting with a letter or digit")
    for field, expected in (("node", node), ("namespace", namespace)):
        if data.get(field, expected) != expected:
            raise InvalidAcknowledgement(field, f"must be {expected!r} (the path's)")
    status = data.get("status")
    if status not in STATUSES:
        raise InvalidAcknowledgement("status", f"one of {', '.join(STATUSES)}")
    checksum = data.get("checksum")
    if checksum is not None and (not isinstance(checksum, str) or not checksum.startswith("sha256:") or len(checksum) > 80):
        raise InvalidAcknowledgement("checksum", "sha256:<hex>, or null")
    message = data.get("message")
    if message is not None and not isinstance(message, str):
        raise InvalidAcknowledgement("message", "a string, or null")
    stage = data.get("stage")
    if stage is not None and stage not in STAGES:
        raise InvalidAcknowledgement("stage", f"one of {', '.join(STAGES)}, or null")
    gateways = data.get("rejected_gateways")
    if gateways is not None and (not isinstance(gateways, (list, tuple)) or len(gateways) > GATEWAYS_MAX
                                 or not all(isinstance(g, str) and 0 < len(g) <= 512 for g in gateways)):
        raise InvalidAcknowledgement("rejected_gateways", f"a list of at most {GATEWAYS_MAX} gateway names, or null")
    interval = _number(data, "interval", 5.0)
    if not 0.1 <= interval <= 3600:
        raise InvalidAcknowledgement("interval", "seconds, from 0.1 to 3600")
    return Acknowledgement(
        node=node, namespace=namespace, generation=_int_or_none(data, "generation"), checksum=checksum,
        status=status, sent=_number(data, "sent"), interval=interval,
        message=message[:MESSAGE_MAX] if message else None,
        rejected_generation=_int_or_none(data, "rejected_generation"),
        stage=stage if status == "rejected" else None,
        rejected_gateways=tuple(gateways) if gateways is not None and status == "rejected" else None)
