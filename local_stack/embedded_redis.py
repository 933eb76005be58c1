"""The Redis the local stack uses: the one in REDIS_URL, else one it starts for itself.

Without REDIS_URL it starts `redis-server` on a free loopback port when the binary is installed,
and otherwise fakeredis' TCP server, which speaks the same protocol from inside this process.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import redis

STARTUP_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0


class RedisKind(StrEnum):
    CONFIGURED = "configured"  # REDIS_URL: someone else runs it
    REDIS_SERVER = "redis-server"  # a process started here
    FAKEREDIS = "fakeredis"  # fakeredis.TcpFakeServer inside this process


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_answering(url: str, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
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
class LocalRedis:
    url: str
    kind: RedisKind
    _process: subprocess.Popen[bytes] | None = None
    _fake_server: object | None = None
    _fake_thread: threading.Thread | None = None
    _workdir: Path | None = None
    _stopped: bool = field(default=False)

    @property
    def embedded(self) -> bool:
        return self.kind is not RedisKind.CONFIGURED

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=STOP_TIMEOUT_S)
        if self._fake_server is not None:
            self._fake_server.shutdown()  # type: ignore[attr-defined]
            self._fake_server.server_close()  # type: ignore[attr-defined]
            if self._fake_thread is not None:
                self._fake_thread.join(timeout=STOP_TIMEOUT_S)
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)


def find_redis_server() -> str | None:
    return shutil.which("redis-server")


def start_redis(
    configured_url: str | None, *, find_executable: Callable[[], str | None] = find_redis_server
) -> LocalRedis:
    """The configured Redis (checked to answer), or an embedded one: redis-server if installed, else fakeredis."""
    if configured_url:
        _wait_until_answering(configured_url, timeout_s=3.0)
        return LocalRedis(configured_url, RedisKind.CONFIGURED)
    executable = find_executable()
    if executable:
        return _start_redis_server(executable)
    return _start_fakeredis()


def _start_redis_server(executable: str) -> LocalRedis:
    port = _free_port()
    workdir = Path(tempfile.mkdtemp(prefix="local-stack-redis-"))
    process = subprocess.Popen(  # noqa: S603 - a fixed argument list, no shell
        [executable, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # Its own session: Ctrl-C reaches the stack, which then stops Redis after the functions.
        start_new_session=True,
    )
    local = LocalRedis(f"redis://127.0.0.1:{port}/0", RedisKind.REDIS_SERVER, _process=process, _workdir=workdir)
    try:
        _wait_until_answering(local.url)
    except BaseException:
        local.stop()
        raise
    return local


def _start_fakeredis() -> LocalRedis:
    from fakeredis import TcpFakeServer

    server = TcpFakeServer(("127.0.0.1", 0))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), name="fakeredis", daemon=True)
    thread.start()
    port = server.server_address[1]
    local = LocalRedis(f"redis://127.0.0.1:{port}/0", RedisKind.FAKEREDIS, _fake_server=server, _fake_thread=thread)
    _wait_until_answering(local.url)
    return local
