"""The control plane's one retry policy: capped exponential backoff with full jitter.

Lambda-side loops that retry (a conditional write that lost a race, a throttled batch) take
their attempt count and delays from here, so a reader finds every retry constant in one place.
Standard library only: this module is on the cold-start path.
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    attempts: int
    base: float  # seconds before the second attempt (at most; full jitter draws from [0, delay])
    cap: float
    jitter: bool = True

    def delay(self, attempt: int) -> float:
        """The pause after failed attempt number `attempt` (0-based)."""
        ceiling = min(self.cap, self.base * 2 ** attempt)
        return random.uniform(0, ceiling) if self.jitter else ceiling

    def attempts_iter(self, sleep: Callable[[float], None] | None = None) -> Iterator[int]:
        """Yields attempt numbers 0..attempts-1, sleeping between them (never after the last)."""
        for attempt in range(self.attempts):
            if attempt:
                (sleep or time.sleep)(self.delay(attempt - 1))
            yield attempt


# A transaction that lost a race on a contended item (a namespace's gateway generation, a port
# claim: every gateway write of the namespace takes them) plans again after a growing pause.
# Each round of n writers on one namespace commits at least one, so a writer may need as many
# attempts as there are writers at once: 16 covers a burst of 16 Lambdas (with 8, the twelve
# separate writers of tests/gateways/test_ports.py sometimes saw a 409 on a loaded machine),
# at worst ~10 s of pauses, inside API Gateway's 29 s.
WRITE_RACE = Backoff(attempts=16, base=0.01, cap=1.0)
# A read-modify-write of one release's state or gateway that lost to its one other writer (the
# API or a state machine task): the winner has committed, so re-read at once, barely pausing.
STATE_RACE = Backoff(attempts=8, base=0.002, cap=0.02)
# A DynamoDB batch with unprocessed (throttled) items: back off before sending the leftovers.
THROTTLED = Backoff(attempts=8, base=0.05, cap=1.0, jitter=False)
# Schedules, not loops (`delay` only): a deployment whose synchronisation failed is due again
# after SYNC_FAILURE.delay(failures - 1); a local process that died is started again after
# PROCESS_RESTART.delay(failures - 1).
SYNC_FAILURE = Backoff(attempts=0, base=5.0, cap=300.0, jitter=False)
PROCESS_RESTART = Backoff(attempts=0, base=0.25, cap=10.0, jitter=False)


def retry_on(errors: type[BaseException] | tuple[type[BaseException], ...], call: Callable[[], T],
             policy: Backoff = WRITE_RACE) -> T:
    """Call `call` until it returns without raising one of `errors`; the last error propagates."""
    for attempt in policy.attempts_iter():
        try:
            return call()
        except errors:
            if attempt == policy.attempts - 1:
                raise
    raise AssertionError("unreachable")  # attempts >= 1
