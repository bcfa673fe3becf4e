"""What the gateway nodes of a namespace serve, from their acknowledgements (chalicelib/contract/
acknowledgement.py; kept by store/node_store.py). Pure but for `read`, the one read of the
stores; the caller passes the clock.

- silent: no report within `silent_after` seconds (the agent, its API calls or its node are gone);
- stale: reporting, but serving a generation older than the namespace's (the newest committed
  gateway state: what every node should serve);
- a generation is live when every node that reports (not silent) has applied it or a later one;
  with no node reporting nothing is live (docs/decisions/0018);
- rejections: on a gateway, the nodes whose newest configuration was refused naming that gateway
  (HAProxy's message or the agent's allowlist), or naming none (a bad signature: the whole
  namespace), with the message and what refused it (docs/decisions/0023).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from chalicelib.contract.acknowledgement import Acknowledgement
from chalicelib.gateways import snapshot


@dataclass(frozen=True)
class NodeView:
    node: str
    generation: int | None
    checksum: str | None
    status: str
    stale: bool
    silent: bool
    last_seen: str
    message: str | None = None
    rejected_generation: int | None = None
    stage: str | None = None
    rejected_gateways: tuple[str, ...] | None = None

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None or k in ("generation", "checksum")}


@dataclass(frozen=True)
class Liveness:
    """How far a generation got: `applied` of the `reporting` nodes run it or a later one."""

    generation: int
    reporting: int
    applied: int
    waiting: tuple[str, ...]  # reporting nodes not there yet
    silent: tuple[str, ...]

    @property
    def live(self) -> bool:
        return self.reporting > 0 and self.applied == self.reporting

    @property
    def not_applied(self) -> int:
        return self.reporting - self.applied

    def describe(self) -> str:
        """"not applied on N of M nodes (who)": the words a release's reason uses."""
        if self.reporting == 0:
            silent = f"; silent: {', '.join(self.silent)}" if self.silent else ""
            return f"not applied on 0 of 0 known nodes (no gateway node reports for the namespace{silent})"
        return f"not applied on {self.not_applied} of {self.reporting} nodes ({', '.join(self.waiting)})"

    def waiting_for(self) -> str:
        """"waiting for N nodes", for a phase that is not done until the nodes applied it."""
        if self.reporting == 0:
            return "waiting for a gateway node to report"
        return f"waiting for {self.not_applied} node{'s' if self.not_applied != 1 else ''}"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def views(reports: list[tuple[Acknowledgement, float]], generation: int, now: float,
          silent_after: float) -> list[NodeView]:
    out = []
    for ack, received in reports:
        silent = now - received > max(silent_after, 2 * ack.interval)
        served = ack.generation if ack.generation is not None else -1
        out.append(NodeView(node=ack.node, generation=ack.generation, checksum=ack.checksum, status=ack.status,
                            stale=not silent and served < generation, silent=silent, last_seen=_iso(received),
                            message=ack.message, rejected_generation=ack.rejected_generation,
                            stage=ack.stage,
                            rejected_gateways=tuple(ack.rejected_gateways) if ack.rejected_gateways is not None else None))
    return out


def liveness(nodes: list[NodeView], generation: int) -> Liveness:
    reporting = [n for n in nodes if not n.silent]
    waiting = tuple(n.node for n in reporting if n.generation is None or n.generation < generation)
    return Liveness(generation=generation, reporting=len(reporting), applied=len(reporting) - len(waiting),
                    waiting=waiting, silent=tuple(n.node for n in nodes if n.silent))


def rejections(nodes: list[NodeView], gateway: str) -> list[dict]:
    """The refusals that concern `gateway`: naming it, or naming no gateway at all."""
    return [{"node": n.node, "generation": n.rejected_generation, "stage": n.stage, "message": n.message}
            for n in nodes if n.status == "rejected" and not n.silent
            and (not n.rejected_gateways or gateway in n.rejected_gateways)]


def summary(nodes: list[NodeView], generation: int, gateway: str | None = None) -> dict:
    """The read-only `nodes` section of a gateway (with its `rejected`), and of GET /vga/nodes."""
    live = liveness(nodes, generation)
    out = {"generation": generation, "reporting": live.reporting, "applied": live.applied,
           "stale": [n.node for n in nodes if n.stale], "silent": list(live.silent),
           "nodes": [n.as_dict() for n in nodes]}
    if gateway is not None:
        out["rejected"] = rejections(nodes, gateway)
    return out


def read(node_store, artifact_store, namespace: str, now: float, silent_after: float) -> tuple[list[NodeView], int]:
    """(the namespace's nodes as views, its generation): the one read the API and releases make."""
    generation = snapshot.generation(artifact_store, namespace)
    return views(node_store.nodes(namespace), generation, now, silent_after), generation


def live(node_store, namespace: str, generation: int, now: float, silent_after: float) -> Liveness:
    """How far `generation` got on the namespace's nodes (what a release waits on)."""
    return liveness(views(node_store.nodes(namespace), generation, now, silent_after), generation)
