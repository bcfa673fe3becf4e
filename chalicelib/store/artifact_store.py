"""The artifact store interface: versioned documents by (namespace, kind, name).

Every write is conditional on the version the writer last saw, so two writers racing can
never silently overwrite each other: the loser gets `Conflict` with the version now stored.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class StoredArtifact:
    kind: str
    name: str
    version: int
    document: dict
    updated: str  # ISO-8601 UTC


@dataclass(frozen=True)
class ArtifactPage:
    items: list[StoredArtifact]
    total: int


@dataclass(frozen=True)
class Write:
    """One change of a batch. `expected_version`: None = must not exist, 0 = any, n = exactly n.
    `version`: the version to store, past the stored one (None: one past it); only the gateway
    generation jumps, past a generation etcd already holds (docs/decisions/0019).
    `summary`: for a summarised kind (table.SUMMARISED_KINDS), the document in brief, stored in
    the same transaction; None removes the stored one, so a writer that knows no summary leaves
    none that could disagree (docs/decisions/0034)."""

    kind: str
    name: str
    document: dict | None  # None deletes
    expected_version: int | None = 0
    meta: dict = field(default_factory=dict)
    version: int | None = None
    summary: dict | None = None


@dataclass(frozen=True)
class Summaries:
    """The summaries of a kind's artifacts (name -> (the artifact's version, summary)) and how many
    artifacts the kind has: `complete` when every one of them has its summary."""

    items: dict[str, tuple[int, dict]]
    total: int

    @property
    def complete(self) -> bool:
        return len(self.items) == self.total


class ArtifactStore(Protocol):
    def get(self, namespace: str, kind: str, name: str) -> StoredArtifact | None: ...

    def get_many(self, namespace: str, keys: list[tuple[str, str]]) -> dict[tuple[str, str], StoredArtifact]: ...

    def list(self, namespace: str, kind: str, page: int, per_page: int) -> ArtifactPage: ...

    def all_of_kind(self, namespace: str, kind: str) -> list[StoredArtifact]:
        """Every artifact of a kind, by name, strongly consistent (a render or a pass sees every
        write acknowledged before it started)."""
        ...

    def apply(self, namespace: str, writes: list[Write]) -> list[StoredArtifact | None]:
        """Apply all writes atomically (all or none); returns what each write left stored."""
        ...

    def summaries(self, namespace: str, kind: str) -> Summaries:
        """Every summary of a summarised kind, strongly consistent, with the kind's count."""
        ...

    def put_summary(self, namespace: str, kind: str, name: str, version: int, summary: dict) -> bool:
        """Store an artifact's summary if the artifact is still at `version` (False: it is not;
        its writer stored the summary of what it wrote)."""
        ...
