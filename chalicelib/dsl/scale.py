"""Scale: cpu (cores) and memory (MB) required, instances default 1."""
from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from .base import Artifact, Ref, ref_or
from .units import Cpu, Memory

MAX_INSTANCES = 10_000  # of one service; no cluster runs more (docs/decisions/0024)


class Scale(Artifact):
    kind: ClassVar[str] = "scales"
    cpu: Cpu
    memory: Memory
    instances: int = Field(1, ge=0, le=MAX_INSTANCES)


class ScaleRef(Ref):
    kind: ClassVar[str] = "scales"


ScaleOrRef = ref_or(ScaleRef, Scale)


def default_scale() -> Scale:
    """What a service deployed without a scale gets (Vamp's default): cpu 1, memory 1GB, 1 instance."""
    return Scale(cpu=1, memory="1GB", instances=1)
