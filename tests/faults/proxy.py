"""A TCP proxy of the test's own: loopback port -> target, with a switch to cut the link.

``cut()`` resets every open connection both ways and resets each new one as soon as it is
accepted, so clients on either side get fast errors rather than hangs; ``restore()`` lets new
connections through again. ``hold()`` keeps the connections open but passes nothing on (what
arrives waits in the proxy) until ``release()``: a request in flight that a slow network
delivers late. Threads only, stdlib only.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable

from services.local.embedded_redis import free_port

ACCEPT_POLL_SECONDS = 0.1
CONNECT_TIMEOUT_SECONDS = 2.0
CHUNK = 65536


def reset(sock: socket.socket) -> None:
    """Close with an RST (SO_LINGER 0): the peer's next read or write fails at once."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


class Link:
    """One proxied connection: client <-> upstream, one pump thread per direction."""

    def __init__(
        self,
        client: socket.socket,
        upstream: socket.socket,
        on_end: Callable[[Link], None],
        flowing: threading.Event | None = None,
    ) -> None:
        self.client = client
        self.upstream = upstream
        self._on_end = on_end
        self._closed = threading.Event()
        self._flowing = flowing

    def start(self) -> None:
        for source, sink in ((self.client, self.upstream), (self.upstream, self.client)):
            threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while not self._closed.is_set():
                data = source.recv(CHUNK)
                if not data:
                    break
                if self._flowing is not None:
                    self._flowing.wait()
                sink.sendall(data)
        except OSError:
            pass
        self.close()

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        reset(self.client)
        reset(self.upstream)
        self._on_end(self)


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, port: int | None = None) -> None:
        self.target = (target_host, target_port)
        self.port = port or free_port()
        self._lock = threading.Lock()
        self._links: set[Link] = set()
        self._is_cut = False
        self._flowing = threading.Event()
        self._flowing.set()
        self._closing = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        self._listener.settimeout(ACCEPT_POLL_SECONDS)
        self._acceptor = threading.Thread(target=self._accept_forever, daemon=True)
        self._acceptor.start()

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._links)

    def cut(self) -> None:
        """Reset every open connection, and every new one until ``restore()``."""
        with self._lock:
            self._is_cut = True
            links = list(self._links)
        for link in links:
            link.close()

    def restore(self) -> None:
        with self._lock:
            self._is_cut = False

    def hold(self) -> None:
        """Pass nothing on, either way, until ``release()`` (connections stay open)."""
        self._flowing.clear()

    def release(self) -> None:
        self._flowing.set()

    def close(self) -> None:
        self._closing.set()
        self.release()
        self.cut()
        self._acceptor.join(timeout=5)
        with contextlib.suppress(OSError):
            self._listener.close()

    def _accept_forever(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._open(client)

    def _open(self, client: socket.socket) -> None:
        if self._is_cut or self._closing.is_set():
            reset(client)
            return
        try:
            upstream = socket.create_connection(self.target, timeout=CONNECT_TIMEOUT_SECONDS)
        except OSError:
            reset(client)
            return
        client.settimeout(None)
        upstream.settimeout(None)
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        link = Link(client, upstream, self._forget, self._flowing)
        with self._lock:
            admitted = not self._is_cut
            if admitted:
                self._links.add(link)
        if not admitted:  # cut while the upstream connection was being made
            link.close()
            return
        link.start()

    def _forget(self, link: Link) -> None:
        with self._lock:
            self._links.discard(link)
