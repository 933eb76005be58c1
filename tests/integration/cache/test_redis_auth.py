"""Redis with a user and a password, as an ElastiCache user group gives it: the password is read from
Secrets Manager (moto's, over HTTP) when a connection authenticates, never taken from the environment."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
import redis
from portfolio import wiring
from portfolio.adapters.portfolio_cache import CacheKind
from portfolio.adapters.redis_connection import SecretCredentialProvider
from portfolio.settings import Settings

from local_stack.embedded_redis import find_redis_server
from local_stack.ports import free_port

USERNAME = "portfolio-app"


@pytest.fixture
def guarded_redis() -> Iterator[tuple[int, str]]:
    """A redis-server whose default user is off: only USERNAME with its password gets in."""
    password = uuid.uuid4().hex
    port = free_port()
    executable = find_redis_server()
    assert executable is not None
    process = subprocess.Popen(
        [
            executable,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--user",
            "default",
            "off",
            "--user",
            USERNAME,
            "on",
            f">{password}",
            "~*",
            "&*",
            "+@all",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, username=USERNAME, password=password)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    try:
        yield port, password
    finally:
        process.terminate()
        process.wait(timeout=10)


def secret_holding(settings: Settings, value: str) -> str:
    secrets = boto3.client("secretsmanager", endpoint_url=settings.aws_endpoint_url, region_name=settings.aws_region)
    return secrets.create_secret(Name=f"redis-{uuid.uuid4().hex[:8]}", SecretString=value)["ARN"]


def test_given_the_password_in_a_secret_when_the_cache_is_used_then_it_authenticates_as_the_user(
    function_environment: Callable[..., Settings], guarded_redis: tuple[int, str], user_id: str
) -> None:
    # Given a Redis that admits only the app's user, and its password in Secrets Manager
    port, password = guarded_redis
    arn = secret_holding(function_environment(), password)
    settings = function_environment(
        REDIS_URL=f"redis://127.0.0.1:{port}/0", REDIS_USERNAME=USERNAME, REDIS_PASSWORD_SECRET_ARN=arn
    )

    # When the container's cache writes and reads
    cache = wiring.portfolio_cache()
    assert cache.set_many(user_id, {(CacheKind.PORTFOLIO, ""): b"p"})

    # Then it got in as that user, and the password is in neither the environment nor the settings
    assert cache.get(CacheKind.PORTFOLIO, user_id) == b"p"
    assert cache.stats().errors == 0
    assert settings.redis_password is None
    assert password not in repr(settings) and password not in repr(wiring.redis_client())


def test_given_a_wrong_password_in_the_secret_when_the_cache_is_used_then_reads_still_answer_uncached(
    function_environment: Callable[..., Settings], guarded_redis: tuple[int, str], user_id: str
) -> None:
    port, _password = guarded_redis
    arn = secret_holding(function_environment(), "not-the-password")
    function_environment(
        REDIS_URL=f"redis://127.0.0.1:{port}/0", REDIS_USERNAME=USERNAME, REDIS_PASSWORD_SECRET_ARN=arn
    )

    cache = wiring.portfolio_cache()

    assert cache.get_or_load(CacheKind.PORTFOLIO, user_id, lambda: b"from the table") == b"from the table"
    assert cache.stats().errors >= 1


def test_given_a_rotated_secret_then_the_next_connection_authenticates_with_the_new_password() -> None:
    # Given a provider whose secret changes between two connections
    values = iter(["first", "second"])
    asked: list[dict[str, Any]] = []

    def read_secret(arn: str, **options: Any) -> str:
        asked.append({"arn": arn, **options})
        return next(values)

    provider = SecretCredentialProvider(USERNAME, "arn:secret", read_secret=read_secret)

    # When two connections authenticate, Then each reads the secret (cached for at most 5 minutes)
    assert provider.get_credentials() == (USERNAME, "first")
    assert provider.get_credentials() == (USERNAME, "second")
    assert asked == [{"arn": "arn:secret", "max_age": 300}] * 2
