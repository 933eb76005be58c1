"""The container's Redis client is configured for short, bounded calls (no connection is opened here)."""

from __future__ import annotations

import redis
from portfolio.adapters.redis_connection import make_redis_client
from portfolio.settings import Settings


def _connection_kwargs(client: redis.Redis) -> dict:
    return client.connection_pool.connection_kwargs


def test_given_no_redis_url_when_making_the_client_then_the_cache_is_off() -> None:
    assert make_redis_client(Settings(REDIS_URL="")) is None


def test_given_a_plain_url_when_making_the_client_then_timeouts_retries_and_health_checks_are_explicit() -> None:
    # Given
    settings = Settings(
        REDIS_URL="redis://cache.internal:6379/0", REDIS_SOCKET_TIMEOUT_MS=40, REDIS_CONNECT_TIMEOUT_MS=80
    )

    # When
    client = make_redis_client(settings)

    # Then
    assert isinstance(client, redis.Redis)
    kwargs = _connection_kwargs(client)
    assert kwargs["socket_timeout"] == 0.04
    assert kwargs["socket_connect_timeout"] == 0.08
    assert kwargs["retry"].get_retries() == 1
    assert kwargs["health_check_interval"] > 0
    assert client.connection_pool.connection_class is redis.Connection


def test_given_a_rediss_url_with_credentials_when_making_the_client_then_tls_is_verified_and_auth_is_sent() -> None:
    # Given
    settings = Settings(
        REDIS_URL="rediss://cache.serverless.amazonaws.com:6379", REDIS_USERNAME="app", REDIS_PASSWORD="s3cret"
    )

    # When
    client = make_redis_client(settings)

    # Then
    assert isinstance(client, redis.Redis)
    assert client.connection_pool.connection_class is redis.SSLConnection
    kwargs = _connection_kwargs(client)
    assert kwargs["ssl_cert_reqs"] == "required"
    assert kwargs["ssl_check_hostname"] is True
    assert (kwargs["username"], kwargs["password"]) == ("app", "s3cret")
