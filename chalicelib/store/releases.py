"""The release state store: one versioned state per (namespace, release name).

Every write is conditional on the version the writer read, and every change is a
read-modify-write that only lands on that version (`transition`), so an API call and a state
machine task racing on one release serialise: the loser re-reads and decides again.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from chalicelib.errors import Conflict, FieldError, NotFound
from chalicelib.releases.model import ReleaseState
from chalicelib.retry import WRITE_RACE, retry_on

# A state -> the state to store, or None to leave it as it is (raising stops the transition).
Change = Callable[[ReleaseState], ReleaseState | None]


class StaleWrite(Conflict):
    """A conditional write found another version stored: re-read and decide again."""


class ReleaseStore(Protocol):
    """Backends subclass it for get, put, list and delete; `require` and `transition` are built on those."""

    def get(self, namespace: str, name: str) -> ReleaseState | None: ...

    def put(self, namespace: str, state: ReleaseState, expected_version: int | None) -> ReleaseState:
        """Store `state` if the stored version is still `expected_version` (None: none may be
        stored); returns it as stored (its new version, `updated` set). StaleWrite if not."""
        ...

    def list(self, namespace: str) -> list[ReleaseState]: ...

    def delete(self, namespace: str, name: str, expected_version: int) -> None:
        """StaleWrite if the stored version is not `expected_version`."""
        ...

    def require(self, namespace: str, name: str) -> ReleaseState:
        state = self.get(namespace, name)
        if state is None:
            raise NotFound(f"release {name} does not exist", [FieldError("name", "not found")])
        return state

    def transition(self, namespace: str, name: str, change: Change) -> tuple[ReleaseState, bool]:
        """Apply `change` to the stored state atomically; returns the state now stored and
        whether this call changed it. `change` gets a copy, and may be called more than once."""
        def attempt() -> tuple[ReleaseState, bool]:
            state = self.require(namespace, name)
            new = change(state.model_copy(deep=True))
            if new is None:
                return state, False
            return self.put(namespace, new, state.version), True

        try:
            return retry_on(StaleWrite, attempt, WRITE_RACE)
        except StaleWrite:
            raise Conflict(f"release {name} is changing too often; retry", []) from None
