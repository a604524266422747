"""The service composed, then run: ``serve`` puts the follower and the HTTP app in one loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from typing import Any, TypeVar

import uvicorn
import uvloop

from services.common import logs, metrics
from services.common.http_limits import HttpLimits
from services.common.http_server import HttpServer, http_config
from services.common.redis_client import connect
from services.common.resilience import (
    Backoff,
    Outage,
    Probe,
    Stopping,
    cancel_all,
    finish_threads,
    keep_trying,
)
from services.projections import workers
from services.projections.feed.catchup import Replayer
from services.projections.feed.follower import StreamFollower
from services.projections.http.app import create_app, query_context, served
from services.projections.runtime.access import StartRefused, who_may_ask
from services.projections.runtime.callers import Callers
from services.projections.runtime.freshness import Freshness
from services.projections.runtime.live import LiveReadModel
from services.projections.runtime.settings import Settings, TlsFiles
from services.projections.store import open_store
from services.projections.store.schema import READ_POSITION
from services.projections.store.sql import SqlViewStore

log = logging.getLogger(__name__)
T = TypeVar("T")


def build_app(
    live: LiveReadModel, settings: Settings, freshness: Freshness, callers: Callers | None = None
) -> Any:
    """The served app; its audit queries get their store once it is open (``event_log``)."""
    return served(
        create_app(
            live,
            min_position_wait=settings.min_position_wait,
            ready_lag_seconds=settings.ready_lag_seconds,
            freshness=freshness,
            refuse_when_stale=settings.refuse_when_stale,
            callers=callers,
        )
    )


def server_config(app: Any, limits: HttpLimits, tls: TlsFiles | None = None) -> uvicorn.Config:
    """The HTTP server settings (the check benchmark serves its bare baseline with these too);
    with ``tls`` (certificate and key files) it answers HTTPS only."""
    # no proxy-header rewriting: nothing reads the client address, and it is a layer per request
    options: dict[str, Any] = {"proxy_headers": False}
    if tls is not None:
        options.update(ssl_certfile=tls[0], ssl_keyfile=tls[1])
    return http_config(app, limits, **options)


def listening_socket(settings: Settings) -> socket.socket:
    """The socket inherited from the parent of the workers, or a new one on the address."""
    if settings.worker_socket_fd is not None:
        # family, type and protocol (IPPROTO_TCP: see ``listen``) are read from the descriptor
        return socket.socket(fileno=settings.worker_socket_fd)
    return listen(settings.http_host, settings.http_port)


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, created as IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets
    that say so, and without it the write of a response's body waits for the peer to
    acknowledge its head (Nagle's algorithm meeting delayed acknowledgements)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def run_async(main: Coroutine[Any, Any, None]) -> None:
    """Run the service's event loop (uvloop) until ``main`` returns."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


async def when_available(
    call: Callable[[], Awaitable[T]], what: str, stop: asyncio.Event
) -> T | None:
    """``call()`` once the view store answers (waiting out an outage at start-up); None if
    asked to stop meanwhile."""
    try:
        return await keep_trying(call, Outage(what, log), stop.is_set, Backoff(cap=5.0))
    except Stopping:
        return None


def _open(settings: Settings) -> Callable[[], Awaitable[SqlViewStore]]:
    return lambda: asyncio.to_thread(_opened, settings)


def _opened(settings: Settings, attempts: int = 3) -> SqlViewStore:
    """The view store. Workers starting together create its schema concurrently, and on
    PostgreSQL one of two simultaneous CREATE TABLE IF NOT EXISTS can fail: a worker tries
    again."""
    if settings.worker_socket_fd is not None:
        for attempt in range(1, attempts):
            try:
                return open_store(settings.view_store, settings.view_table_prefix)
            except Exception:
                time.sleep(0.2 * attempt)
    return open_store(settings.view_store, settings.view_table_prefix)


async def serve_async(settings: Settings) -> None:
    """Answer /health at once; load the model (waiting out a store outage), then follow the
    stream; SIGINT or SIGTERM stops it all."""
    access = who_may_ask(settings)  # before anything listens
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    block = settings.read_block_ms / 1000
    freshness = Freshness(settings.ready_lag_seconds, read_block_seconds=block)
    live = LiveReadModel(loaded=False)  # queries answer 503 "starting" meanwhile
    listener = listening_socket(settings)
    host, port = listener.getsockname()[:2]
    app = build_app(live, settings, freshness, None if access is None else access.callers)
    metrics.projection_worker_persists.set(1 if settings.persists else 0)
    if settings.worker_socket_fd is not None:
        query_context(app).worker = str(os.getpid())
    tls = settings.tls_files
    server = HttpServer(server_config(app, settings.http_limits, tls))
    serving = asyncio.create_task(server.serve(sockets=[listener]), name="http")
    scheme = "http" if tls is None else "https"
    print(f"projections {role(settings)}listening on {scheme}://{host}:{port}", flush=True)
    running = Running()
    if access is not None:
        running.tasks.append(asyncio.create_task(access.watch(), name="callers-file"))
    if settings.worker_socket_fd is not None:  # the others' scrapes read this worker's gauges
        running.tasks.append(asyncio.create_task(gauges(live, freshness), name="gauges"))
    try:
        await running.start(settings, live, freshness, stop)
        if running.follower is not None:
            query_context(app).event_log = running.event_log
            print(f"projections {role(settings)}loaded (position {live.position})", flush=True)
        await asyncio.wait(
            [asyncio.ensure_future(stop.wait()), serving], return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        await running.stop()
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(serving, 2.0)
        listener.close()
        await finish_threads(1.0, log)
        running.close()
        metrics.PENDING_CHECKS.flush()  # a worker's last counts, for the others' scrapes


def role(settings: Settings) -> str:
    """How a worker introduces itself in its lines ("" for the only process)."""
    if settings.worker_socket_fd is None:
        return ""
    kind = "persisting" if settings.persists else "memory-only"
    return f"worker {os.getpid()} ({kind}) "


async def gauges(live: LiveReadModel, freshness: Freshness, every: float = 1.0) -> None:
    """Keep this worker's counts, position and lag current in the shared metrics (a scrape
    is answered by one worker, which can only refresh its own)."""
    while True:
        metrics.PENDING_CHECKS.flush()
        position = live.position
        metrics.projection_position.set(position)
        metrics.projection_lag.set(freshness.lag_seconds(position) or 0.0)
        await asyncio.sleep(every)


class Running:
    """The parts that need the view store: its connections, the follower, the store probe."""

    def __init__(self) -> None:
        self.store: SqlViewStore | None = None
        self.event_log: SqlViewStore | None = None
        self.redis: Any = None
        self.follower: StreamFollower | None = None
        self.tasks: list[asyncio.Task[None]] = []

    async def start(
        self, settings: Settings, live: LiveReadModel, freshness: Freshness, stop: asyncio.Event
    ) -> None:
        self.store = await when_available(_open(settings), "view store (start-up)", stop)
        self.event_log = await when_available(_open(settings), "view store (start-up)", stop)
        store, event_log = self.store, self.event_log
        if store is None or event_log is None:
            return
        model = await when_available(
            lambda: asyncio.to_thread(store.load), "view store (loading)", stop
        )
        if model is None:
            return
        live.load(model)
        # a silent connection is given up soon after the longest wait a read asks for
        self.redis = connect(
            settings.redis_url,
            cluster=settings.redis_cluster,
            socket_timeout=freshness.read_block_seconds + 2,
        )
        self.follower = self._follower(settings, live, store, freshness)
        # /ready must know the store is down even when there is nothing to save
        probe = Probe(
            partial(event_log.query, READ_POSITION),
            freshness.store,
        )
        self.tasks += [
            asyncio.create_task(self.follower.run(), name="follower"),
            asyncio.create_task(probe.forever(), name="store-probe"),
        ]

    def _follower(
        self, settings: Settings, live: LiveReadModel, store: SqlViewStore, freshness: Freshness
    ) -> StreamFollower:
        """The stream follower, with the wire replay for what the stream no longer holds."""
        replayer = Replayer(
            self.redis,
            settings.replay_requests_stream,
            timeout_seconds=settings.replay_timeout_seconds,
            count=settings.read_count,
            block_ms=settings.read_block_ms,
        )
        return StreamFollower(
            self.redis,
            settings.events_stream,
            live,
            store,
            freshness,
            count=settings.read_count,
            block_ms=settings.read_block_ms,
            replayer=replayer,
            persists=settings.persists,
        )

    async def stop(self) -> None:
        await cancel_all(self.tasks)
        if self.follower is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.follower.flush(3.0), 4.0)
        if self.redis is not None:
            await self.redis.aclose()

    def close(self) -> None:
        for each in (self.store, self.event_log):
            if each is not None:
                with contextlib.suppress(Exception):
                    each.close()


def serve(settings: Settings) -> None:
    """Run the consumer and the HTTP server until SIGINT or SIGTERM (blocking); exit with the
    reason if it must not start as configured. With several HTTP workers this process is
    their parent (``workers``)."""
    if settings.http_workers > 1 and settings.worker_socket_fd is None:
        raise SystemExit(workers.serve(settings))
    configure_logging()
    try:
        run_async(serve_async(settings))
    except StartRefused as refused:
        raise SystemExit(f"projections: {refused}") from None


def configure_logging() -> None:
    """Warnings and errors (APIKEYS_LOG_FORMAT); the callers file's and the audit queries'
    lines too."""
    logs.configure()
    for name in ("apikeys.callers", "apikeys.queries"):
        logging.getLogger(name).setLevel(logging.INFO)


def main() -> None:
    serve(Settings.from_env())
