"""The one retry policy of the adapters: capped exponential backoff with full jitter.

After the n-th failed attempt the wait is uniform in [0, min(cap, base * 2^(n-1))]: callers that
failed together (throttled by the same table, rate-limited by the same API) spread their retries
apart instead of retrying in step. So the first retry waits at most `base_s`, and no wait exceeds
`cap_s`.

A policy never sleeps past a deadline on the time.monotonic() clock: when the wait would reach it,
it gives up instead. A server's Retry-After is honoured: the wait is at least that long, and a
server asking for more than the cap is given up on, so that one answer cannot stall the caller.

Typical use, where a batch call returns what it could not process:

    for _ in policy.attempts():
        pending = call(pending)
        if not pending:
            return
    raise StillPending(pending)
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many attempts, and how long to wait between them. Safe to share across threads."""

    max_attempts: int
    base_s: float
    cap_s: float
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    # Uniform in [0, 1): the jitter. The module's generator, reseeded after a SnapStart restore.
    rng: Callable[[], float] = field(default=random.random, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_s < 0 or self.cap_s < 0:
            raise ValueError("backoff times must not be negative")

    def backoff(self, failures: int) -> float:
        """The jittered wait after `failures` failed attempts (1 or more), ignoring every limit but the cap."""
        if failures < 1:
            raise ValueError("backoff follows at least one failed attempt")
        return self.rng() * min(self.cap_s, self.base_s * 2 ** (failures - 1))

    def delay(self, failures: int, *, retry_after: float | None = None, deadline: float | None = None) -> float | None:
        """Seconds to wait before the next attempt, or None to give up.

        Gives up when `failures` attempts were all there is, when the server's `retry_after` exceeds
        the cap, or when the wait would reach `deadline` (a time.monotonic() value, or the clock's).
        """
        if failures >= self.max_attempts:
            return None
        wait = self.backoff(failures)
        if retry_after is not None:
            if retry_after > self.cap_s:
                return None
            wait = max(wait, retry_after)
        if deadline is not None and self.clock() + wait >= deadline:
            return None
        return wait

    def attempts(self, *, deadline: float | None = None) -> Iterator[int]:
        """Attempt numbers 1, 2, ...: asking for the next one sleeps the backoff first; the iteration
        ends, without sleeping, when the policy gives up. Leave the loop on success."""
        attempt = 1
        while True:
            yield attempt
            wait = self.delay(attempt, deadline=deadline)
            if wait is None:
                return
            self.sleep(wait)
            attempt += 1
