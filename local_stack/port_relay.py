"""Offers services that listen on 127.0.0.1 at another address of this machine too (LOCAL_BIND_HOST).

A Lambda container of `sam local` on Linux's Docker Engine reaches this machine at the docker0 bridge
(`--add-host host.docker.internal:host-gateway`, usually 172.17.0.1), never at its loopback. Each
`PortRelay` listens on `bind_host:port` and pipes every connection, byte for byte, to
`127.0.0.1:port`: the services keep their loopback addresses, and nothing is exposed unless asked.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable

LOOPBACK = "127.0.0.1"
CHUNK_BYTES = 65536
CONNECT_TIMEOUT_S = 5.0


class PortRelay:
    """`bind_host:port` -> `127.0.0.1:port`; start() once, stop() closes the listener and every open pipe."""

    def __init__(self, bind_host: str, port: int) -> None:
        self.bind_host = bind_host
        self.port = port
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> PortRelay:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self.bind_host, self.port))
        except OSError:
            listener.close()
            raise
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, name=f"relay-{self.port}", daemon=True).start()
        return self

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            sockets, self._open = self._open, set()
        for connection in sockets:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()

    def _accept(self) -> None:
        listener = self._listener
        while listener is not None:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # stopped
            try:
                service = socket.create_connection((LOOPBACK, self.port), timeout=CONNECT_TIMEOUT_S)
            except OSError:
                client.close()  # the service is gone: the caller sees its connection end, as it would
                continue
            service.settimeout(None)
            with self._lock:
                self._open.update((client, service))
            connection = _Connection(client, service, self._closed)
            for source, target in ((client, service), (service, client)):
                threading.Thread(target=connection.pipe, args=(source, target), daemon=True).start()

    def _closed(self, *sockets: socket.socket) -> None:
        with self._lock:
            self._open.difference_update(sockets)


class _Connection:
    """One relayed connection: two pipes, one each way; the sockets close when both have ended."""

    def __init__(self, client: socket.socket, service: socket.socket, on_closed: Callable[..., None]) -> None:
        self._sockets = (client, service)
        self._on_closed = on_closed
        self._pipes_left = 2
        self._lock = threading.Lock()

    def pipe(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while chunk := source.recv(CHUNK_BYTES):
                target.sendall(chunk)
        except OSError:
            pass
        # This side said all it had: the other learns it, and may still answer.
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)
        with self._lock:
            self._pipes_left -= 1
            last = self._pipes_left == 0
        if last:
            for connection in self._sockets:
                connection.close()
            self._on_closed(*self._sockets)
