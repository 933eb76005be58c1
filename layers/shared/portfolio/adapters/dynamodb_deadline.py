"""DynamoDB retries that end before the invocation does.

botocore's standard retries may spend, with the API's settings, 4 attempts of 1 s to connect and
2 s to read plus up to 7 s of backoff on one call: longer than the API function's 10 s. Lambda would
then kill the invocation and API Gateway answer its bare 500, where the client should get 503 with
Retry-After. So a caller may set a deadline (`within`), and the client gets two checks on top of
botocore's own retry rules:

- an attempt is never started once the deadline has passed;
- a retry is only taken when its longest backoff and a whole attempt (connect and read timeouts)
  still end before the deadline.

Either raises DeadlineReached, chained to the last failure. The deadline lives in a context variable,
so the threads of one process (the local stack serves requests on several) keep their own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from typing import Any

from botocore.exceptions import BotoCoreError
from botocore.retries.standard import RetryEventAdapter, StandardRetryConditions

_deadline: ContextVar[float | None] = ContextVar("dynamodb_deadline", default=None)

# What an invocation keeps after its last DynamoDB attempt: time to log and answer the 503 itself.
ANSWER_MARGIN_S = 0.5

# botocore's standard backoff: after the n-th failed attempt at most 2^(n-1) s (throttling scale),
# never more than 20 s.
_BACKOFF_BASE = 2
_BACKOFF_CAP_S = 20.0


class DeadlineReached(BotoCoreError):
    """DynamoDB could not be asked again before the caller's deadline."""

    fmt = "DynamoDB {operation}: no time left for another attempt before the request's deadline ({last_failure})"


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


def longest_backoff_s(failed_attempts: int) -> float:
    return min(_BACKOFF_CAP_S, float(_BACKOFF_BASE ** (failed_attempts - 1)))


class DeadlineChecks:
    """The two checks above, registered on one client's events."""

    def __init__(self, *, attempt_s: float, max_attempts: int) -> None:
        self._attempt_s = attempt_s
        self._retryable = StandardRetryConditions(max_attempts=max_attempts)
        self._events = RetryEventAdapter()

    def install(self, client: Any) -> None:
        # First, so that a refusal is decided before botocore's own handler sleeps its backoff.
        client.meta.events.register_first("needs-retry.dynamodb", self.refuse_retry_past_deadline)
        client.meta.events.register_first("before-send.dynamodb", self.refuse_attempt_past_deadline)

    def refuse_attempt_past_deadline(self, request: Any = None, **_: Any) -> None:
        left = seconds_left()
        if left is not None and left <= 0:
            raise DeadlineReached(operation=_operation_of(request), last_failure="none yet")

    def refuse_retry_past_deadline(self, **kwargs: Any) -> None:
        left = seconds_left()
        if left is None:
            return
        context = self._events.create_retry_context(**kwargs)
        if not self._retryable.is_retryable(context):
            return  # a success, or a failure botocore would not retry: its own answer stands
        if longest_backoff_s(context.attempt_number) + self._attempt_s > left:
            failure = context.caught_exception
            last = type(failure).__name__ if failure is not None else context.get_error_code()
            raise DeadlineReached(operation=context.operation_model.name, last_failure=f"last: {last}") from failure


def _operation_of(request: Any) -> str:
    target = getattr(request, "headers", {}).get("X-Amz-Target", b"")
    text = target.decode() if isinstance(target, bytes) else str(target)
    return text.rpartition(".")[2] or "call"
