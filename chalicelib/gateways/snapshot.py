"""A consistent view of a namespace's gateways for rendering: its generation, then every gateway
and the stored routes, conditions and rewrites they refer to, all with strongly consistent reads.

The generation is read FIRST: everything read after it is at least as new as it, so a text
rendered from this snapshot and labelled with this generation never shows an older state than
its label says (docs/decisions/0009-gateway-generations.md).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from chalicelib.gateways.spec import references
from chalicelib.store.artifact_store import Write

GENERATION_KIND = "gateway-generation"
GENERATION_NAME = "generation"


@dataclass
class Snapshot:
    namespace: str
    generation: int
    gateways: list[dict]
    referenced: dict[tuple[str, str], dict] = field(default_factory=dict)

    def lookup(self, kind: str, name: str) -> dict | None:
        return self.referenced.get((kind, name))


def generation(store, namespace: str) -> int:
    found = store.get(namespace, GENERATION_KIND, GENERATION_NAME)
    return found.version if found else 0


def generation_write(namespace: str, read: int, version: int | None = None) -> Write:
    """The write of the namespace's generation item, conditional on the generation `read` (0:
    none stored), to `version` (None: the next). Every writer of it goes through here: the gateway
    write path's transactions and the publisher's fence (docs/decisions/0019)."""
    return Write(GENERATION_KIND, GENERATION_NAME, {"namespace": namespace}, read or None, version=version)


def read(store, namespace: str) -> Snapshot:
    gen = generation(store, namespace)
    gateways = [a.document for a in store.all_of_kind(namespace, "gateways")]
    referenced: dict[tuple[str, str], dict] = {}
    wanted = references(gateways)
    for _ in range(2):  # gateways -> stored routes -> their conditions and rewrites
        wanted -= set(referenced)
        if not wanted:
            break
        found = store.get_many(namespace, sorted(wanted))
        new = {key: a.document for key, a in found.items()}
        referenced.update(new)
        wanted = references([d for (k, _), d in new.items() if k == "routes"])
    return Snapshot(namespace, gen, gateways, referenced)
