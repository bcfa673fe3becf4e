"""The release state store: one versioned state per (namespace, release name).

Every write is conditional on the version the writer read, and every change is a
read-modify-write that only lands on that version (`transition`), so an API call and a state
machine task racing on one release serialise: the loser re-reads and decides again.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from chalicelib.errors import Conflict, FieldError, NotFound
from chalicelib.retry import STATE_RACE, retry_on


class StoredState(Protocol):
    """What the store needs of a state (the domain's model, releases.model.State: the
    store never imports the domain): its name, the version it was read at, a copy, its JSON."""

    name: str
    version: int

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> Any: ...

    def model_dump(self, *, mode: str) -> dict: ...


State = TypeVar("State", bound=StoredState)
# A state -> the state to store, or None to leave it as it is (raising stops the transition).
Change = Callable[[State], "State | None"]


class StaleWrite(Conflict):
    """A conditional write found another version stored: re-read and decide again."""


class ReleaseStore(Protocol[State]):
    """Backends subclass it for get, put, list and delete; `require` and `transition` are built on those."""

    def get(self, namespace: str, name: str) -> State | None: ...

    def put(self, namespace: str, state: State, expected_version: int | None) -> State:
        """Store `state` if the stored version is still `expected_version` (None: none may be
        stored); returns it as stored (its new version, `updated` set). StaleWrite if not."""
        ...

    def list(self, namespace: str) -> list[State]: ...

    def delete(self, namespace: str, name: str, expected_version: int) -> None:
        """StaleWrite if the stored version is not `expected_version`."""
        ...

    def require(self, namespace: str, name: str) -> State:
        state = self.get(namespace, name)
        if state is None:
            raise NotFound(f"release {name} does not exist", [FieldError("name", "not found")])
        return state

    def transition(self, namespace: str, name: str, change: Change) -> tuple[State, bool]:
        """Apply `change` to the stored state atomically; returns the state now stored and
        whether this call changed it. `change` gets a copy, and may be called more than once."""
        def attempt() -> tuple[State, bool]:
            state = self.require(namespace, name)
            new = change(state.model_copy(deep=True))
            if new is None:
                return state, False
            return self.put(namespace, new, state.version), True

        try:
            return retry_on(StaleWrite, attempt, STATE_RACE)
        except StaleWrite:
            raise Conflict(f"release {name} is changing too often; retry", []) from None
