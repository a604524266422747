"""``APIKEYS_HTTP_WORKERS=N`` (N > 1): N projection processes serve one address, under a parent
that does nothing else.

Sockets: the parent binds N listening sockets to the address with SO_REUSEPORT, one per worker,
and each worker inherits its own. The kernel spreads new connections evenly over them (one
shared socket goes mostly to whichever worker wakes first). The parent keeps every socket open,
so while a worker is replaced the connections for its socket wait in its queue instead of
being refused, and the address stays taken by this service for as long as it runs.

Roles: each worker holds the whole model and follows the events stream; worker 0 alone writes
the view store, the others keep memory only (they start from what the store holds and read the
rest from the stream, as any restarted follower does). Worker 0 is replaced only once it has
exited, so exactly one process writes at any time.

Metrics: the workers share a prometheus-client multiprocess directory that the parent makes and
removes; the gauges of a worker that ended are dropped, its counts stay in the sums.

Lifetime: SIGTERM or SIGINT stops every worker (the persisting one saves what it applied); a
worker that exits is restarted (with backoff; after repeated quick exits the parent stops them
all and exits 1); the kernel signals every worker when the parent dies, even by SIGKILL.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from functools import partial

from services.common import logs, metrics
from services.local.supervisor import Child, Supervisor, spawn
from services.projections.runtime.access import StartRefused, who_may_ask
from services.projections.runtime.settings import (
    WORKER_MEMORY_ONLY,
    WORKER_SOCKET_FD,
    Settings,
)

POLL_SECONDS = 0.2


class Workers(Supervisor):
    """The supervisor of the workers, which also forgets the gauges of one that exited."""

    def __init__(self, metrics_dir: str) -> None:
        super().__init__()
        self.metrics_dir = metrics_dir

    def look_after(self, child: Child) -> bool:
        process = child.process
        if process is not None and process.poll() is not None and hasattr(process, "pid"):
            metrics.process_ended(process.pid, self.metrics_dir)
        return super().look_after(child)


def serve(settings: Settings) -> int | str:
    """Run the workers until SIGTERM or SIGINT (0), or until one keeps failing (1); a reason
    (str) when the service must not start as configured."""
    logs.configure()
    try:
        who_may_ask(settings)  # refused before anything listens, as a single process is
        sockets = listeners(settings.http_host, settings.http_port, settings.http_workers)
    except (StartRefused, OSError) as refused:
        return f"projections: {refused}"
    metrics_dir = tempfile.mkdtemp(prefix="apikeys-projection-metrics-")
    supervisor = Workers(metrics_dir)
    supervisor.install_signal_handlers()
    try:
        for index, listener in enumerate(sockets):
            start = partial(start_worker, listener, index == 0, metrics_dir)
            supervisor.add(Child(f"projection worker {index}", start))
        host, port = sockets[0].getsockname()[:2]
        print(
            f"projections: {len(sockets)} HTTP workers on {host}:{port} (parent {os.getpid()})",
            flush=True,
        )
        return supervisor.watch(POLL_SECONDS)
    finally:
        supervisor.stop_all()
        for listener in sockets:
            listener.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)


def start_worker(
    listener: socket.socket, persists: bool, metrics_dir: str
) -> subprocess.Popen[bytes]:
    fd = listener.fileno()
    env = dict(os.environ)
    env[WORKER_SOCKET_FD] = str(fd)
    env[WORKER_MEMORY_ONLY] = "false" if persists else "true"
    env[metrics.MULTIPROCESS_DIR] = metrics_dir
    return spawn([sys.executable, "-m", "services.projections"], env, pass_fds=(fd,))


def listeners(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` listening sockets on one address, as IPPROTO_TCP (see ``main.listen``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    port = _free(family, host, port)
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]
            sock.listen(2048)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _free(family: socket.AddressFamily, host: str, port: int) -> int:
    """The port, checked free by a bind without SO_REUSEPORT: otherwise another process of
    this user that listens with SO_REUSEPORT (another instance) would silently share it."""
    with socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
        chosen: int = probe.getsockname()[1]
        return chosen
