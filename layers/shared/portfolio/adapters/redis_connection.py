"""The Redis client of a container: short timeouts, one quick retry, TLS for rediss://, cluster mode on demand.

Build it once per container (module scope or a cached factory) and share it: the client keeps a
connection pool and reconnects by itself after Redis comes back. Every behaviour that matters on the
request path is set here explicitly instead of trusting the library's defaults, which change between
majors (redis-py 6 retries three times with exponential backoff of up to seconds by default).
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import redis
from redis._parsers.encoders import Encoder
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.credentials import CredentialProvider
from redis.exceptions import RedisClusterException, RedisError
from redis.retry import Retry

from portfolio.observability import logger
from portfolio.settings import Settings

# One immediate retry: enough to replace a pooled connection that Redis (or a NAT) closed while the
# container was frozen, without ever turning a dead Redis into a multi-second stall.
RETRIES = 1
# Seconds a pooled connection may sit idle before it is PINGed ahead of its next command.
HEALTH_CHECK_INTERVAL_S = 30

RedisClient = redis.Redis | RedisCluster
# A cluster client raises RedisClusterException (not a RedisError) when it cannot reach or map the cluster.
REDIS_FAILURES = (RedisError, RedisClusterException)


def make_redis_client(settings: Settings) -> RedisClient | None:
    """A client for settings.redis_url, or None when no URL is configured (the cache is then off).

    Standalone clients connect lazily, so a Redis that is down at cold start costs nothing here.
    A cluster client has to read the slot map when it is built: it is built on first use, and built
    again, with backoff, for as long as the cluster cannot be reached; meanwhile every command fails
    as Redis being down does, so the container runs without its cache until the cluster answers,
    never for its whole life.
    """
    if not settings.redis_url:
        return None
    options = _connection_options(settings)
    if not settings.redis_cluster_mode:
        return redis.Redis.from_url(settings.redis_url, retry=_retry(), **options)
    url = settings.redis_url

    def build() -> RedisCluster:
        return RedisCluster.from_url(
            url,
            retry=_retry(),
            require_full_coverage=True,
            # Reads go to primaries: a replica may lag behind an invalidation and serve a retired view.
            load_balancing_strategy=None,
            **options,
        )

    return ReconnectingCluster(build)  # type: ignore[return-value]  # a RedisCluster in every use


# Waits between attempts to build a cluster client that could not reach the cluster.
RECONNECT_FIRST_WAIT_S = 1.0
RECONNECT_LONGEST_WAIT_S = 30.0


class ReconnectingCluster:
    """A RedisCluster built on first use, and again after a failed build once its backoff has passed
    (1 s, doubling to 30 s). Until then each command raises redis.ConnectionError, which every caller
    already treats as Redis being down."""

    def __init__(self, build: Callable[[], RedisCluster], *, clock: Callable[[], float] = time.monotonic) -> None:
        self._build = build
        self._clock = clock
        self._client: RedisCluster | None = None
        self._lock = threading.Lock()
        self._next_attempt = 0.0
        self._wait = RECONNECT_FIRST_WAIT_S

    def client(self) -> RedisCluster:
        built = self._client
        if built is not None:
            return built
        with self._lock:
            if self._client is not None:
                return self._client
            now = self._clock()
            if now < self._next_attempt:
                raise redis.ConnectionError("Redis cluster unreachable; not tried again yet")
            try:
                self._client = self._build()
            except (RedisError, RedisClusterException, OSError) as error:
                self._next_attempt = now + self._wait
                logger.warning(
                    "Redis cluster unreachable; running without the cache until it answers",
                    extra={"error_type": type(error).__name__, "retry_in_s": self._wait},
                )
                self._wait = min(self._wait * 2, RECONNECT_LONGEST_WAIT_S)
                raise redis.ConnectionError("Redis cluster unreachable") from error
            self._wait = RECONNECT_FIRST_WAIT_S
            return self._client

    def register_script(self, script: str) -> Script:
        # Bound to this wrapper, not to a client: it runs on whichever client is built when it is called.
        return Script(self, script)  # type: ignore[arg-type]

    def get_encoder(self) -> Encoder:
        """What the scripts' SHA is computed with, known without reaching the cluster: bytes in, bytes out."""
        return Encoder(encoding="utf-8", encoding_errors="strict", decode_responses=False)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client(), name)


def _retry() -> Retry:
    return Retry(NoBackoff(), RETRIES, supported_errors=(redis.ConnectionError, redis.TimeoutError, socket.timeout))


def _connection_options(settings: Settings) -> dict[str, Any]:
    options: dict[str, Any] = {
        "socket_timeout": settings.redis_socket_timeout_ms / 1000,
        "socket_connect_timeout": settings.redis_connect_timeout_ms / 1000,
        "socket_keepalive": True,
        "health_check_interval": HEALTH_CHECK_INTERVAL_S,
        # Cached values are response bodies: bytes in, the same bytes out.
        "decode_responses": False,
        "protocol": 2,
    }
    if settings.redis_password_secret_arn:
        options["credential_provider"] = SecretCredentialProvider(
            settings.redis_username or "default", settings.redis_password_secret_arn
        )
    else:
        if settings.redis_username:
            options["username"] = settings.redis_username
        if settings.redis_password is not None:
            options["password"] = settings.redis_password.get_secret_value()
    if _uses_tls(settings.redis_url or ""):
        # ElastiCache Serverless only speaks TLS; its certificates chain to public roots.
        options.update(
            ssl_cert_reqs="required",
            ssl_check_hostname=True,
            ssl_min_version=ssl.TLSVersion.TLSv1_2,
        )
    return options


# How long a password read from Secrets Manager is reused before it is read again (a rotated one is
# picked up within this, by the next connection).
PASSWORD_MAX_AGE_S = 300


class SecretCredentialProvider(CredentialProvider):
    """The ElastiCache user's name and its password, read from Secrets Manager (Powertools parameters,
    cached PASSWORD_MAX_AGE_S) whenever a connection authenticates."""

    def __init__(self, username: str, secret_arn: str, *, read_secret: Callable[..., Any] | None = None) -> None:
        self._username = username
        self._secret_arn = secret_arn
        self._read_secret = read_secret

    def get_credentials(self) -> tuple[str, str]:
        read = self._read_secret
        if read is None:
            from aws_lambda_powertools.utilities import parameters

            read = parameters.get_secret
        return self._username, str(read(self._secret_arn, max_age=PASSWORD_MAX_AGE_S))

    def __repr__(self) -> str:
        return f"SecretCredentialProvider(username={self._username!r})"


def _uses_tls(url: str) -> bool:
    return urlsplit(url).scheme == "rediss"
