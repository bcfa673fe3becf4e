"""A consistent view of a namespace's gateways for rendering: its generation, then every gateway
and the stored routes, conditions and rewrites they refer to, all with strongly consistent reads.

The generation is read FIRST: everything read after it is at least as new as it, so a text
rendered from this snapshot and labelled with this generation never shows an older state than
its label says (docs/decisions/0009-gateway-generations.md).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from chalicelib.gateways.spec import references

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
