"""A TCP proxy on loopback that a test controls, to cause network faults between a client and a server.

with TcpProxy(target_port=redis_port) as proxy:
    client = redis.Redis(port=proxy.port)
    proxy.cut()       # drop every live connection and reset new ones, as a failed network path does
    proxy.stall()     # accept new connections but never answer, as a black-holed route does
    proxy.resume()    # forward again
"""

from __future__ import annotations

import contextlib
import enum
import socket
import struct
import threading
from types import TracebackType

_CHUNK = 65536


class Mode(enum.Enum):
    FORWARD = "forward"
    REFUSE = "refuse"
    STALL = "stall"


class TcpProxy:
    """Forwards 127.0.0.1:<port> to target_host:target_port, one pair of threads per connection."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._mode = Mode.FORWARD
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.accepted = 0

    @property
    def port(self) -> int:
        if self._listener is None:
            raise RuntimeError("the proxy is not started")
        return self._listener.getsockname()[1]

    @property
    def mode(self) -> Mode:
        return self._mode

    def start(self) -> TcpProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        listener.settimeout(0.05)
        self._listener = listener
        self._accept_thread = threading.Thread(target=self._accept_loop, name="tcp-proxy-accept", daemon=True)
        self._accept_thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._accept_thread is not None:
            self._accept_thread.join(timeout=5)
        if self._listener is not None:
            self._listener.close()
        self._close_all()

    def cut(self) -> None:
        """Reset every live connection and every new one until resume()."""
        self._mode = Mode.REFUSE
        self._close_all()

    def refuse(self) -> None:
        """Reset new connections at once; live ones keep working until cut()."""
        self._mode = Mode.REFUSE

    def stall(self) -> None:
        """Drop live connections; accept new ones but never forward a byte (clients time out)."""
        self._mode = Mode.STALL
        self._close_all()

    def resume(self) -> None:
        """Forward again; connections left hanging by stall() are closed."""
        self._mode = Mode.FORWARD
        self._close_all()

    @property
    def live_connections(self) -> int:
        with self._lock:
            return len(self._sockets)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                downstream, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            downstream.settimeout(None)
            mode = self._mode
            if mode is Mode.REFUSE:
                _reset(downstream)
            elif mode is Mode.STALL:
                self._track(downstream)
            else:
                self._connect(downstream)

    def _connect(self, downstream: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=2)
        except OSError:
            _reset(downstream)
            return
        upstream.settimeout(None)
        self._track(downstream, upstream)
        for source, sink in ((downstream, upstream), (upstream, downstream)):
            threading.Thread(target=self._pump, args=(source, sink), name="tcp-proxy-pump", daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(_CHUNK):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            # One side finished: close both so the peer sees the end too.
            for sock in (source, sink):
                self._untrack(sock)
                _reset(sock)

    def _track(self, *socks: socket.socket) -> None:
        with self._lock:
            self._sockets.update(socks)

    def _untrack(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)

    def _close_all(self) -> None:
        with self._lock:
            socks, self._sockets = self._sockets, set()
        for sock in socks:
            _reset(sock)


def _reset(sock: socket.socket) -> None:
    """Close with RST rather than FIN, so the peer fails at once instead of reading a clean end."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
