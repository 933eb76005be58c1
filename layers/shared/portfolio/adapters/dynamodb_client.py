"""The low-level DynamoDB client of this container: short timeouts, standard retries, kept-alive sockets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError, ReadTimeoutError
from botocore.exceptions import ConnectionError as ConnectionFailure

from portfolio.adapters.dynamodb_deadline import DeadlineChecks, DeadlineReached
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
        ),
    )
    DeadlineChecks(
        attempt_s=settings.dynamodb_connect_timeout_s + settings.dynamodb_read_timeout_s,
        max_attempts=settings.dynamodb_max_attempts,
    ).install(client)
    return client


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
