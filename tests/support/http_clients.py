"""Clients as an attacker or a careless program drives them, on raw loopback sockets: idle
connections, headers trickled a byte at a time, keep-alive requests, and the watch for the
server closing them."""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import select
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# the common default: the figures were measured with it
SERVICE_DESCRIPTORS = 1024


def allow_test_descriptors(needed: int) -> None:
    """Raise this process's soft descriptor limit to ``needed`` (as far as the hard one goes)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


@contextlib.contextmanager
def service_process(
    args: list[str], env: dict[str, str], log_path: Path, ready: Callable[[], bool]
) -> Iterator[subprocess.Popen[bytes]]:
    """A service in its own session with the common default of 1,024 descriptors, ended
    (with anything it started) when the block is left."""

    def limit_descriptors() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (SERVICE_DESCRIPTORS, SERVICE_DESCRIPTORS))

    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=limit_descriptors,
        )
    try:
        wait_until(lambda: process.poll() is not None or ready(), 30.0, "the service to start")
        assert process.poll() is None, log_path.read_text()
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 15)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def open_descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def request(sock: socket.socket, path: str, extra: bytes = b"") -> tuple[int, bytes]:
    """One keep-alive GET on ``sock``: the status and the body."""
    sock.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nhost: test\r\n" + extra + b"\r\n")
    return read_answer(sock)


def read_answer(sock: socket.socket) -> tuple[int, bytes]:
    """The status and body of the next answer on ``sock`` (sized or chunked)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += _more(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    sizes = [int(line.split(b":", 1)[1]) for line in lines if line.startswith(b"content-length")]
    if sizes:
        while len(body) < sizes[0]:
            body += _more(sock)
    else:  # chunked: its last chunk is empty
        while not body.endswith(b"0\r\n\r\n"):
            body += _more(sock)
    return int(lines[0].split()[1]), body


def _more(sock: socket.socket) -> bytes:
    chunk = sock.recv(65536)
    if not chunk:
        raise ConnectionError("closed before the end of an answer")
    return chunk


def closed(sock: socket.socket) -> bool:
    """The peer has closed (or reset) ``sock``; never blocks (a socket with a timeout would
    wait for data before its recv, whatever the flags)."""
    poll = select.poll()
    poll.register(sock, select.POLLIN)
    if not poll.poll(0):
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError as error:
        return error.errno in (errno.ECONNRESET, errno.EPIPE)


def watch_closes(socks: list[socket.socket], seconds: float) -> dict[socket.socket, float]:
    """Which of ``socks`` the server closes within ``seconds``, and when (monotonic)."""
    found: dict[socket.socket, float] = {}
    with selectors.DefaultSelector() as selector:
        for each in socks:
            selector.register(each, selectors.EVENT_READ, each)
        deadline = time.monotonic() + seconds
        while len(found) < len(socks) and (left := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(min(left, 0.1)):
                sock: socket.socket = key.data
                if closed(sock):
                    found[sock] = time.monotonic()
                    selector.unregister(sock)
    return found


def close_all(socks: list[socket.socket]) -> None:
    for sock in socks:
        sock.close()
