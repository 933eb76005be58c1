"""The Redis the local stack uses, and the one way anything here starts a redis-server.

`start_redis` returns the Redis in REDIS_URL when it is set (checked to be a cluster exactly when
cluster mode is asked); otherwise it starts `redis-server` on a free loopback port when the binary
is installed, and else fakeredis' TCP server, which speaks the same protocol from inside this
process. In cluster mode without REDIS_URL it starts a three-master cluster (`RedisClusterServers`).

`RedisServer` is that process: throwaway (no persistence, a temporary directory), on a port of its
own, and restartable on the same port after `kill()` (a crashed node coming back).
`RedisClusterNode` is one cluster-mode node owning every slot: it refuses multi-key commands across
slots, as ElastiCache Serverless does. `RedisClusterServers` is a real cluster: three such
processes, created with `redis-cli --cluster create`, so a key also gets MOVED to the node serving
its slot.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import redis
from redis.connection import parse_url

from local_stack.ports import free_port, is_free

STARTUP_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
CLUSTER_BUS_OFFSET = 10000  # a cluster node also listens on port + 10000
SLOTS = 16384
CLUSTER_MASTERS = 3
CLUSTER_CREATE_TIMEOUT_S = 30.0


class RedisKind(StrEnum):
    CONFIGURED = "configured"  # REDIS_URL: someone else runs it
    REDIS_SERVER = "redis-server"  # a process started here
    REDIS_CLUSTER = "redis-cluster"  # three redis-server processes started here, one cluster
    FAKEREDIS = "fakeredis"  # fakeredis.TcpFakeServer inside this process


class RedisModeError(Exception):
    """REDIS_CLUSTER_MODE does not fit the Redis there is; the message says what to change."""


def find_redis_server() -> str | None:
    return shutil.which("redis-server")


def find_redis_cli() -> str | None:
    return shutil.which("redis-cli")


def wait_until_answering(url: str, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
    """Return once the Redis at `url` answers PING; its last error after `timeout_s`."""
    client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                client.ping()
                return
            except redis.ResponseError:
                raise  # it answers, with a refusal: waiting changes nothing
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    finally:
        client.close()


@dataclass
class RedisServer:
    """A throwaway redis-server on a loopback port; `kill()` then `start()` brings it back on the same port."""

    port: int = field(default_factory=free_port)
    executable: str | None = None  # None: redis-server from PATH
    process: subprocess.Popen[bytes] | None = None
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="local-redis-")))

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def arguments(self) -> list[str]:
        return [
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
        ]

    def start(self) -> RedisServer:
        executable = self.executable or find_redis_server()
        if executable is None:
            raise RuntimeError("redis-server is not installed; install it or set REDIS_URL")
        self.process = subprocess.Popen(  # noqa: S603 - a fixed argument list, no shell
            [executable, *self.arguments()],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Its own session: Ctrl-C reaches the local stack, which stops Redis after the functions.
            start_new_session=True,
        )
        try:
            wait_until_answering(f"redis://127.0.0.1:{self.port}")
        except BaseException:
            self.kill()
            raise
        return self

    def kill(self) -> None:
        """Stop it hard, as a crashed node would."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT_S)
            self.process = None

    def stop(self) -> None:
        """Stop it for good: SIGTERM (SIGKILL if it lingers), then remove its directory."""
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT_S)
            self.process = None
        shutil.rmtree(self.workdir, ignore_errors=True)


def free_cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is a valid, free port too."""
    while True:
        port = free_port()
        if port + CLUSTER_BUS_OFFSET <= 65535 and is_free(port + CLUSTER_BUS_OFFSET):
            return port


@dataclass
class ClusterEnabledServer(RedisServer):
    """A redis-server with cluster support on, owning no slot until one is given to it."""

    port: int = field(default_factory=free_cluster_port)

    @property
    def url(self) -> str:
        # No database: a cluster has only database 0.
        return f"redis://127.0.0.1:{self.port}"

    def arguments(self) -> list[str]:
        return [
            *super().arguments(),
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            str(self.workdir / "nodes.conf"),
        ]


@dataclass
class RedisClusterNode(ClusterEnabledServer):
    """One cluster-mode node owning all 16384 slots."""

    def start(self) -> RedisClusterNode:
        super().start()
        admin = redis.Redis(port=self.port, socket_timeout=1)
        try:
            admin.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, SLOTS - 1)
        finally:
            admin.close()
        wait_until_cluster_ok([self.port])
        return self


@dataclass
class RedisClusterServers:
    """A Redis Cluster of `masters` redis-server processes on free loopback ports, no replicas, no
    persistence: created with `redis-cli --cluster create`, ready once every node says cluster_state:ok."""

    masters: int = CLUSTER_MASTERS
    executable: str | None = None  # None: redis-server from PATH
    cli: str | None = None  # None: redis-cli from PATH
    nodes: list[ClusterEnabledServer] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The first node's URL: a cluster client reads the slot map there and finds the others."""
        return self.nodes[0].url

    @property
    def ports(self) -> list[int]:
        return [node.port for node in self.nodes]

    def start(self) -> RedisClusterServers:
        cli = self.cli or find_redis_cli()
        if cli is None:
            raise RuntimeError("redis-cli is not installed; it creates the cluster (it comes with redis-server)")
        try:
            for port in _distinct_cluster_ports(self.masters):
                node = ClusterEnabledServer(port=port, executable=self.executable)
                self.nodes.append(node)
                node.start()
            created = subprocess.run(  # noqa: S603 - a fixed argument list, no shell
                [
                    cli,
                    "--cluster",
                    "create",
                    *(f"127.0.0.1:{port}" for port in self.ports),
                    "--cluster-replicas",
                    "0",
                    "--cluster-yes",
                ],
                capture_output=True,
                text=True,
                timeout=CLUSTER_CREATE_TIMEOUT_S,
                check=False,
            )
            if created.returncode != 0:
                output = (created.stdout + created.stderr)[-500:]
                raise RuntimeError(f"redis-cli --cluster create failed ({created.returncode}): {output}")
            wait_until_cluster_ok(self.ports)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        self.nodes.clear()


def _distinct_cluster_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_cluster_port()
        if port not in ports and port + CLUSTER_BUS_OFFSET not in ports:
            ports.append(port)
    return ports


def wait_until_cluster_ok(ports: list[int], timeout_s: float = CLUSTER_CREATE_TIMEOUT_S) -> None:
    """Return once every node says cluster_state:ok, knows all the others and sees every slot served."""
    deadline = time.monotonic() + timeout_s
    for port in ports:
        admin = redis.Redis(port=port, socket_timeout=1, decode_responses=True)
        try:
            while True:
                info: dict[str, Any] = admin.cluster("info")  # type: ignore[assignment]  # a sync client
                if (
                    info["cluster_state"] == "ok"
                    and int(info["cluster_known_nodes"]) == len(ports)
                    and int(info["cluster_slots_ok"]) == SLOTS
                ):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the cluster node on port {port} did not reach state ok: {info}")
                time.sleep(0.02)
        finally:
            admin.close()


@dataclass
class LocalRedis:
    """The Redis the local stack runs with, and how to stop it (a configured one is left alone)."""

    url: str
    kind: RedisKind
    cluster_mode: bool = False  # what the functions are told (REDIS_CLUSTER_MODE)
    _server: RedisServer | RedisClusterServers | None = None
    _fake_server: object | None = None
    _fake_thread: threading.Thread | None = None
    _stopped: bool = field(default=False)

    @property
    def embedded(self) -> bool:
        return self.kind is not RedisKind.CONFIGURED

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._server is not None:
            self._server.stop()
        if self._fake_server is not None:
            self._fake_server.shutdown()  # type: ignore[attr-defined]
            self._fake_server.server_close()  # type: ignore[attr-defined]
            if self._fake_thread is not None:
                self._fake_thread.join(timeout=STOP_TIMEOUT_S)


def start_redis(
    configured_url: str | None,
    *,
    cluster_mode: bool = False,
    find_executable: Callable[[], str | None] = find_redis_server,
    find_cli: Callable[[], str | None] = find_redis_cli,
) -> LocalRedis:
    """The configured Redis (checked to answer, and to be a cluster exactly when `cluster_mode`), or an
    embedded one: in cluster mode a three-master cluster (redis-server and redis-cli needed), else
    redis-server if installed, else fakeredis."""
    if configured_url:
        if cluster_mode and int(parse_url(configured_url).get("db") or 0) != 0:
            raise RedisModeError("a Redis Cluster has database 0 only: drop the database from REDIS_URL")
        try:
            wait_until_answering(configured_url, timeout_s=3.0)
        except redis.ResponseError as error:
            raise RedisModeError(f"it refuses the connection's setup: {error}") from error
        check_cluster_mode(configured_url, cluster_mode)
        return LocalRedis(configured_url, RedisKind.CONFIGURED, cluster_mode=cluster_mode)
    executable = find_executable()
    if cluster_mode:
        cli = find_cli()
        if not executable or not cli:
            needed = (("redis-server", executable), ("redis-cli", cli))
            missing = " and ".join(name for name, found in needed if not found)
            raise RedisModeError(
                f"REDIS_CLUSTER_MODE=true without REDIS_URL starts a local three-master cluster, which needs "
                f"{missing} (not found): install it, set REDIS_URL to a cluster, or unset REDIS_CLUSTER_MODE"
            )
        cluster = RedisClusterServers(executable=executable, cli=cli).start()
        return LocalRedis(cluster.url, RedisKind.REDIS_CLUSTER, cluster_mode=True, _server=cluster)
    if executable:
        server = RedisServer(executable=executable)
        try:
            server.start()
        except BaseException:
            server.stop()
            raise
        return LocalRedis(server.url, RedisKind.REDIS_SERVER, _server=server)
    return _start_fakeredis()


def check_cluster_mode(url: str, cluster_mode: bool) -> None:
    """RedisModeError unless the Redis at `url` is a cluster exactly when `cluster_mode` (a cluster client
    cannot talk to a single Redis; a single-Redis client gets MOVED from a cluster and runs uncached)."""
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1, decode_responses=True)
    try:
        try:
            cluster_info: dict[str, Any] = client.info("cluster")  # type: ignore[assignment]  # a sync client
            enabled = bool(int(cluster_info.get("cluster_enabled", 0)))
        except redis.ResponseError:
            return  # INFO refused (a managed Redis): REDIS_CLUSTER_MODE is taken as it is
        if enabled and not cluster_mode:
            raise RedisModeError(
                "it is a Redis Cluster: set REDIS_CLUSTER_MODE=true (a single-Redis client gets MOVED there "
                "and runs without its cache)"
            )
        if not enabled and cluster_mode:
            raise RedisModeError(
                "REDIS_CLUSTER_MODE=true but it is a single Redis (cluster support disabled): "
                "unset REDIS_CLUSTER_MODE or point REDIS_URL at a cluster"
            )
        if not cluster_mode:
            return
        state = client.cluster("info")["cluster_state"]  # type: ignore[index]  # a sync client
        if state != "ok":
            raise RedisModeError(f"the cluster's state is {state}, not ok: some slot is not served")
    finally:
        client.close()


def _start_fakeredis() -> LocalRedis:
    from fakeredis import TcpFakeServer

    server = TcpFakeServer(("127.0.0.1", 0))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), name="fakeredis", daemon=True)
    thread.start()
    port = server.server_address[1]
    local = LocalRedis(f"redis://127.0.0.1:{port}/0", RedisKind.FAKEREDIS, _fake_server=server, _fake_thread=thread)
    wait_until_answering(local.url)
    return local
