"""The Redis client of a container: short timeouts, one quick retry, TLS for rediss://, cluster mode on demand.

Build it once per container (module scope or a cached factory) and share it: the client keeps a
connection pool and reconnects by itself after Redis comes back. Every behaviour that matters on the
request path is set here explicitly instead of trusting the library's defaults, which change between
majors (redis-py 6 retries three times with exponential backoff of up to seconds by default).
"""

from __future__ import annotations

import socket
import ssl
from typing import Any
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
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
    A cluster client has to read the slot map when it is built; if the cluster cannot be reached
    the container runs without a cache rather than failing every request.
    """
    if not settings.redis_url:
        return None
    options = _connection_options(settings)
    if not settings.redis_cluster_mode:
        return redis.Redis.from_url(settings.redis_url, retry=_retry(), **options)
    try:
        return RedisCluster.from_url(
            settings.redis_url,
            retry=_retry(),
            require_full_coverage=True,
            # Reads go to primaries: a replica may lag behind an invalidation and serve a retired view.
            load_balancing_strategy=None,
            **options,
        )
    except (RedisError, RedisClusterException, OSError) as error:
        logger.warning(
            "Redis cluster unreachable at start-up; running without the cache",
            extra={"error_type": type(error).__name__},
        )
        return None


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


def _uses_tls(url: str) -> bool:
    return urlsplit(url).scheme == "rediss"
