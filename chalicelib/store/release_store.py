"""The release state store: one versioned state per (namespace, release name).

Every write is conditional on the version the writer read, and every change is a
read-modify-write that only lands on that version (`transition`), so an API call and a state
machine task racing on one release serialise: the loser re-reads and decides again.

One release per gateway: a state that holds its gateway (not finished) is stored only together
with the gateway's lock naming it, and a finished one gives the lock up in the same write, so
two starts racing on one gateway cannot both land (docs/decisions/0019-no-lost-generation.md).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from chalicelib.errors import Conflict, FieldError, NotFound
from chalicelib.retry import STATE_RACE, retry_on


class StoredState(Protocol):
    """What the store needs of a state (the domain's model, releases.model.State: the
    store never imports the domain): its name, the version it was read at, a copy, its JSON."""

    id: str
    name: str
    gateway: str
    version: int

    @property
    def holds_gateway(self) -> bool:
        """While True the release keeps every other release off its gateway (until it finishes)."""
        ...

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> Any: ...

    def model_dump(self, *, mode: str) -> dict: ...


State = TypeVar("State", bound=StoredState)
# A state -> the state to store, or None to leave it as it is (raising stops the transition).
Change = Callable[[State], "State | None"]


class StaleWrite(Conflict):
    """A conditional write found another version stored: re-read and decide again."""


class GatewayHeld(Conflict):
    """Another release, still running, holds the gateway (`holder` is its name)."""

    def __init__(self, gateway: str, holder: str):
        super().__init__(f"release {holder} is already running on gateway {gateway}",
                         [FieldError("gateway", f"one release per gateway at a time: held by release {holder}")])
        self.holder = holder


class ReleaseStore(Protocol[State]):
    """Backends subclass it for get, put, list, delete and holder; `require` and `transition`
    are built on those."""

    def get(self, namespace: str, name: str) -> State | None: ...

    def put(self, namespace: str, state: State, expected_version: int | None) -> State:
        """Store `state` if the stored version is still `expected_version` (None: none may be
        stored); returns it as stored (its new version, `updated` set). StaleWrite if not.
        A state that holds its gateway takes the gateway's lock in the same write (GatewayHeld if
        another running release has it); one that does not gives the lock up if it had it."""
        ...

    def holder(self, namespace: str, gateway: str) -> str | None:
        """The name of the running release holding the gateway, or None."""
        ...

    def list(self, namespace: str) -> list[State]: ...

    def delete(self, namespace: str, name: str, expected_version: int) -> None:
        """StaleWrite if the stored version is not `expected_version`; the release's gateway
        lock goes with it."""
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
