"""The one retry policy of the Lambda side."""
from __future__ import annotations

import pytest

from chalicelib.retry import PROCESS_RESTART, SYNC_FAILURE, Backoff, retry_on


def test_retries_until_success_and_sleeps_only_between_attempts():
    calls, sleeps = [], []
    policy = Backoff(attempts=5, base=0.01, cap=0.05)

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise KeyError("lost a race")
        return "done"

    assert list(policy.attempts_iter(sleep=sleeps.append)) == [0, 1, 2, 3, 4]
    assert len(sleeps) == 4 and all(0 <= s <= 0.05 for s in sleeps)
    assert retry_on(KeyError, flaky, Backoff(attempts=5, base=0.0, cap=0.0)) == "done" and len(calls) == 3


def test_the_last_error_propagates_and_others_are_not_retried():
    calls = []

    def always(exc):
        calls.append(exc)
        raise exc("no")

    with pytest.raises(KeyError):
        retry_on(KeyError, lambda: always(KeyError), Backoff(attempts=3, base=0.0, cap=0.0))
    assert len(calls) == 3
    with pytest.raises(ValueError):
        retry_on(KeyError, lambda: always(ValueError), Backoff(attempts=3, base=0.0, cap=0.0))
    assert len(calls) == 4


def test_schedules_double_up_to_their_cap():
    assert [SYNC_FAILURE.delay(n) for n in range(8)] == [5, 10, 20, 40, 80, 160, 300, 300]
    assert PROCESS_RESTART.delay(0) == 0.25 and PROCESS_RESTART.delay(10) == 10.0
