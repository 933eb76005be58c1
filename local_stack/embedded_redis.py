"""The Redis the local stack uses, and the one way anything here starts a redis-server.

`start_redis` returns the Redis in REDIS_URL when it is set; otherwise it starts `redis-server` on a
free loopback port when the binary is installed, and else fakeredis' TCP server, which speaks the
same protocol from inside this process.

`RedisServer` is that process: throwaway (no persistence, a temporary directory), on a port of its
own, and restartable on the same port after `kill()` (a crashed node coming back).
`RedisClusterNode` is one cluster-mode node owning every slot: it refuses multi-key commands across
slots, as ElastiCache Serverless does.
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

import redis

from local_stack.ports import free_port, is_free

STARTUP_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
CLUSTER_BUS_OFFSET = 10000  # a cluster node also listens on port + 10000
SLOTS = 16384


class RedisKind(StrEnum):
    CONFIGURED = "configured"  # REDIS_URL: someone else runs it
    REDIS_SERVER = "redis-server"  # a process started here
    FAKEREDIS = "fakeredis"  # fakeredis.TcpFakeServer inside this process


def find_redis_server() -> str | None:
    return shutil.which("redis-server")


def wait_until_answering(url: str, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
    """Return once the Redis at `url` answers PING; its last error after `timeout_s`."""
    client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                client.ping()
                return
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
class RedisClusterNode(RedisServer):
    """One cluster-mode node owning all 16384 slots."""

    port: int = field(default_factory=free_cluster_port)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def arguments(self) -> list[str]:
        return [
            *super().arguments(),
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            str(self.workdir / "nodes.conf"),
        ]

    def start(self) -> RedisClusterNode:
        super().start()
        admin = redis.Redis(port=self.port, socket_timeout=1)
        try:
            admin.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, SLOTS - 1)
            deadline = time.monotonic() + 30
            while admin.cluster("info")["cluster_state"] != "ok":
                if time.monotonic() > deadline:
                    raise TimeoutError("the cluster node did not reach state ok")
                time.sleep(0.05)
        finally:
            admin.close()
        return self


@dataclass
class LocalRedis:
    """The Redis the local stack runs with, and how to stop it (a configured one is left alone)."""

    url: str
    kind: RedisKind
    _server: RedisServer | None = None
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
    configured_url: str | None, *, find_executable: Callable[[], str | None] = find_redis_server
) -> LocalRedis:
    """The configured Redis (checked to answer), or an embedded one: redis-server if installed, else fakeredis."""
    if configured_url:
        wait_until_answering(configured_url, timeout_s=3.0)
        return LocalRedis(configured_url, RedisKind.CONFIGURED)
    executable = find_executable()
    if executable:
        server = RedisServer(executable=executable)
        try:
            server.start()
        except BaseException:
            server.stop()
            raise
        return LocalRedis(server.url, RedisKind.REDIS_SERVER, _server=server)
    return _start_fakeredis()


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
