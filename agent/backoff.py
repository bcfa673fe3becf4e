"""The agent's one retry policy: capped exponential backoff, reset by a success.

Every loop of the agent that waits after a failure (the etcd watch, HAProxy's supervisor, the log
shipper) takes its pauses from here, so a reader finds every retry constant in one place. The
Lambda side has its own (chalicelib/retry.py); the agent depends on nothing of chalicelib but the
contract.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

CAP = 30.0  # seconds; the default of --backoff-max, the longest pause of any loop


@dataclass(frozen=True)
class Policy:
    first: float  # seconds; each failure in a row doubles the pause, up to the cap
    jitter: bool  # draw each pause from the upper half of its length


# Services every node shares: jittered, so the agents of all nodes do not retry in lockstep.
ETCD = Policy(first=0.1, jitter=True)  # the watch reconnecting
OPENSEARCH = Policy(first=0.2, jitter=True)  # shipping logs, draining the spool
# A HAProxy master that died, restarted: a local process, nothing to spread.
HAPROXY = Policy(first=0.1, jitter=False)


class Backoff:
    """The pauses of one loop under a policy; `reset()` after a success."""

    def __init__(self, policy: Policy, cap: float = CAP) -> None:
        self.policy, self.cap = policy, cap
        self._next = policy.first

    def reset(self) -> None:
        self._next = self.policy.first

    def pause(self) -> float:
        """The pause before the next try; the one after it is twice as long, up to the cap."""
        delay, self._next = self._next, min(self._next * 2, self.cap)
        return random.uniform(delay / 2, delay) if self.policy.jitter else delay
