"""The low-level DynamoDB client of this container: short timeouts, standard retries, kept-alive sockets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError
from botocore.exceptions import ConnectionError as ConnectionFailure
from botocore.retries.standard import RetryEventAdapter, StandardRetryConditions

from portfolio.adapters.dynamodb_deadline import seconds_left
from portfolio.services.ports import StoreBusyError, StoreUnavailableError

if TYPE_CHECKING:
    from portfolio.settings import Settings


def make_dynamodb_client(settings: Settings) -> Any:
    """Build once per container and reuse: creating a client costs far more than a call.

    Standard retry mode retries throttling (ProvisionedThroughputExceeded, ThrottlingException),
    5xx answers and connection errors with jittered backoff, up to `dynamodb_max_attempts`
    attempts in all; whatever still fails propagates to the caller as a botocore error.
    (botocore's `max_attempts` key counts retries after the first request; `total_max_attempts`
    counts every request, which is what the setting means.) Within a deadline (dynamodb_deadline),
    no attempt or retry is started that could not end before it.
    """
    # boto3 is imported with the first client, not with this module (a cached read never needs
    # boto3): see wiring.preload_for_snapshot.
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "dynamodb",
        region_name=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        config=Config(
            connect_timeout=settings.dynamodb_connect_timeout_s,
            read_timeout=settings.dynamodb_read_timeout_s,
            retries={"mode": "standard", "total_max_attempts": settings.dynamodb_max_attempts},
            tcp_keepalive=True,
            # Requests are built by this code only, from typed values, and DynamoDB checks them anyway;
            # checking each against the model first costs a refresh more than parsing the answers.
            parameter_validation=False,
        ),
    )
    DeadlineChecks(
        attempt_s=settings.dynamodb_connect_timeout_s + settings.dynamodb_read_timeout_s,
        max_attempts=settings.dynamodb_max_attempts,
    ).install(client)
    return client


# botocore's standard backoff: after the n-th failed attempt at most 2^(n-1) s (throttling scale),
# never more than 20 s.
_BACKOFF_BASE = 2
_BACKOFF_CAP_S = 20.0


class DeadlineReached(BotoCoreError):
    """DynamoDB could not be asked again before the caller's deadline (dynamodb_deadline.within)."""

    fmt = "DynamoDB {operation}: no time left for another attempt before the request's deadline ({last_failure})"


def longest_backoff_s(failed_attempts: int) -> float:
    return min(_BACKOFF_CAP_S, float(_BACKOFF_BASE ** (failed_attempts - 1)))


class DeadlineChecks:
    """Two checks on top of botocore's own retry rules, registered on one client's events, while a
    deadline is set: an attempt is never started once it has passed, and a retry is only taken when
    its longest backoff and a whole attempt (connect and read timeouts) still end before it. Either
    raises DeadlineReached, chained to the last failure."""

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


# What DynamoDB answers when a table or account is over its capacity for a moment.
_THROTTLING_CODES = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded", "LimitExceededException"}
)


def is_throttled(error: BaseException) -> bool:
    """True for a throttling answer that outlasted the client's retries: worth trying again shortly."""
    return isinstance(error, ClientError) and error.response.get("Error", {}).get("Code") in _THROTTLING_CODES


class StoreErrorsTranslated:
    """A DynamoDB client whose failures to answer, once its own retries are spent, come out as the
    services' errors: throttling as StoreBusyError; no answer in time (timeouts, refused connections,
    the request's deadline) as StoreUnavailableError. Every other answer and error is the client's own."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return attribute(*args, **kwargs)
            except ClientError as error:
                if is_throttled(error):
                    raise StoreBusyError(f"DynamoDB throttled {name} past its retries") from error
                raise
            except (DeadlineReached, ReadTimeoutError, ConnectionFailure) as error:
                raise StoreUnavailableError(f"DynamoDB did not answer {name} in time") from error

        return call
