"""The deadline of the DynamoDB calls a caller makes, kept apart from botocore.

botocore's standard retries may spend, with the API's settings, 4 attempts of 1 s to connect and
2 s to read plus up to 7 s of backoff on one call: longer than the API function's 10 s. Lambda would
then kill the invocation and API Gateway answer its bare 500, where the client should get 503 with
Retry-After. So a caller may set a deadline (`within`), which the client's checks
(`dynamodb_client.DeadlineChecks`) hold its attempts and retries to.

Setting it is on every API request, cached reads included, which never need botocore: this module
imports nothing of it. The deadline lives in a context variable, so the threads of one process (the
local stack serves requests on several) keep their own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar

_deadline: ContextVar[float | None] = ContextVar("dynamodb_deadline", default=None)

# What an invocation keeps after its last DynamoDB attempt: time to log and answer the 503 itself.
ANSWER_MARGIN_S = 0.5


@contextmanager
def within(seconds: float) -> Iterator[None]:
    """Calls made in this block (by this thread) end within `seconds` from now, retries included."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def within_invocation(remaining_ms: int) -> AbstractContextManager[None]:
    """Calls made in this block end in time for the invocation (Lambda's remaining time) to answer."""
    return within(remaining_ms / 1000 - ANSWER_MARGIN_S)


def seconds_left() -> float | None:
    """Until the current deadline; None when no deadline is set."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()
