"""Polls ``/health`` and ``/ready`` of each service every interval and writes one JSON line per
answer: ``{"at", "service", "path", "status", "latency", "error"}`` (``at`` is
``time.monotonic()``, the same clock as the test's).

Run as a process of its own (``python -P health_probe.py OUT INTERVAL name=url ...``), so the
latency it measures is the service's, not the test process's threads waiting for the GIL.
Stdlib only: it runs by path, without the project on ``sys.path``.

It also polls a trivial server of its own, as service ``control``: when the machine is so busy
that the probe itself waits for a core, the control's latency shows it.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import IO

CLIENT_TIMEOUT_SECONDS = 2.0  # generous: the latency is measured and asserted separately
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def ask(url: str) -> tuple[int | None, str]:
    try:
        with _opener.open(url, timeout=CLIENT_TIMEOUT_SECONDS) as response:
            response.read()
            return response.status, ""
    except urllib.error.HTTPError as error:
        error.read()
        return error.code, ""
    except (OSError, ValueError) as error:
        return None, repr(error)[:200]


def poll(
    service: str,
    base: str,
    interval: float,
    out: IO[str],
    lock: threading.Lock,
    stop: threading.Event,
) -> None:
    next_tick = time.monotonic()
    while not stop.is_set():
        for path in ("/health", "/ready"):
            at = time.monotonic()
            started = time.perf_counter()
            status, error = ask(base + path)
            latency = time.perf_counter() - started
            line = json.dumps(
                {
                    "at": at,
                    "service": service,
                    "path": path,
                    "status": status,
                    "latency": latency,
                    "error": error,
                }
            )
            with lock:
                out.write(line + "\n")
                out.flush()
        next_tick = max(next_tick + interval, time.monotonic())
        stop.wait(next_tick - time.monotonic())


def serve_control(listener: socket.socket) -> None:
    """Answer every request at once with a 200, in one write."""
    while True:
        connection, _ = listener.accept()
        with connection, contextlib.suppress(OSError):
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = connection.recv(4096)
                if not chunk:
                    break
                request += chunk
            connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")


def main(argv: list[str]) -> None:
    out_path, interval, targets = argv[0], float(argv[1]), argv[2:]
    listener = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=serve_control, args=(listener,), daemon=True).start()
    targets.append(f"control=http://127.0.0.1:{listener.getsockname()[1]}")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    lock = threading.Lock()
    with open(out_path, "a") as out:
        threads = [
            threading.Thread(target=poll, args=(*target.split("=", 1), interval, out, lock, stop))
            for target in targets
        ]
        for thread in threads:
            thread.start()
        while not stop.wait(0.2):
            pass
        for thread in threads:
            thread.join()


if __name__ == "__main__":
    main(sys.argv[1:])
