"""The Redis a cache test runs against, a single node or a real cluster, and where a key lives in the cluster.

The cluster is the local stack's `RedisClusterServers` (three redis-server masters with
`--cluster-enabled yes`, joined by `redis-cli --cluster create`); the session fixture `redis_cluster`
of tests/conftest.py starts one per test process, so each pytest-xdist worker has its own on free
ports. On it a key-slot mistake fails as it would on ElastiCache: a multi-key command or script over
keys of different slots (CROSSSLOT), a script touching a key it was not handed, a plain client sent
to a node that does not serve the key (MOVED).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis
from portfolio.settings import Settings
from redis.cluster import RedisCluster

SINGLE_NODE = "single-node"
CLUSTER = "three-master-cluster"


@dataclass(frozen=True)
class RedisTarget:
    """One Redis of the parametrized cache tests: its URL and whether the app talks to it in cluster mode."""

    name: str
    url: str
    cluster_mode: bool

    def settings(self, **overrides: Any) -> Settings:
        """The app's settings for this Redis (REDIS_URL, REDIS_CLUSTER_MODE), plus `overrides`."""
        return Settings(REDIS_URL=self.url, REDIS_CLUSTER_MODE=self.cluster_mode, **overrides)

    def client(self, **options: Any) -> redis.Redis | RedisCluster:
        """A client for the test's own look at what is stored: a cluster client on the cluster."""
        options.setdefault("socket_timeout", 1)
        if self.cluster_mode:
            return RedisCluster.from_url(self.url, **options)
        return redis.Redis.from_url(self.url, **options)


def serving_port(cluster: RedisCluster, key: str) -> int:
    """The port of the master serving `key`'s slot."""
    return int(cluster.get_node_from_key(key).port)


def user_served_elsewhere(cluster_url: str, prefix: str = "user") -> str:
    """A fresh user id whose keys (`...{<user id>}...`) live on another master than the one `cluster_url`
    names: a plain client pointed at that URL gets MOVED for every key of this user."""
    named_port = urlsplit(cluster_url).port
    cluster = RedisCluster.from_url(cluster_url, socket_timeout=1)
    try:
        while True:
            user_id = f"{prefix}-{uuid.uuid4().hex[:12]}"
            if serving_port(cluster, f"{{{user_id}}}") != named_port:
                return user_id
    finally:
        cluster.close()
