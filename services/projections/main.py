"""Entry points: ``serve`` (consumer and HTTP in one loop) and ``rebuild`` (from the stream)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from typing import Any, TypeVar

import uvicorn
import uvloop
from redis import Redis as SyncRedis

from services.common.http_server import HttpServer
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
from services.projections import collector, rules
from services.projections.api import create_app, query_context, served
from services.projections.consumer import HistoryFold
from services.projections.event_rows import EventRow
from services.projections.follower import StreamFollower
from services.projections.freshness import Freshness
from services.projections.live import LiveReadModel
from services.projections.settings import Settings
from services.projections.views import SqlViewStore, full_batch, open_store

log = logging.getLogger(__name__)
REBUILD_CHUNK = 5000
T = TypeVar("T")


def build_app(live: LiveReadModel, settings: Settings, freshness: Freshness) -> Any:
    """The served app; its audit queries get their store once it is open (``event_log``)."""
    return served(
        create_app(
            live,
            min_position_wait=settings.min_position_wait,
            ready_lag_seconds=settings.ready_lag_seconds,
            freshness=freshness,
            refuse_when_stale=settings.refuse_when_stale,
        )
    )


def server_config(app: Any) -> uvicorn.Config:
    """The HTTP server settings (the check benchmark serves its bare baseline with these too)."""
    # no proxy-header rewriting: nothing reads the client address, and it is a layer per request
    return uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off", proxy_headers=False
    )


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, created as IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets
    that say so, and without it a response's head and body wait ~40 ms on Nagle's algorithm."""
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
    return lambda: asyncio.to_thread(open_store, settings.view_store, settings.view_table_prefix)


async def serve_async(settings: Settings) -> None:
    """Answer /health at once; load the model (waiting out a store outage), then follow the
    stream; SIGINT or SIGTERM stops it all."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    block = settings.read_block_ms / 1000
    freshness = Freshness(settings.ready_lag_seconds, read_block_seconds=block)
    live = LiveReadModel(loaded=False)  # queries answer 503 "starting" meanwhile
    listener = listen(settings.http_host, settings.http_port)
    host, port = listener.getsockname()[:2]
    app = build_app(live, settings, freshness)
    server = HttpServer(server_config(app))
    serving = asyncio.create_task(server.serve(sockets=[listener]), name="http")
    print(f"projections listening on http://{host}:{port}", flush=True)
    running = Running()
    try:
        await running.start(settings, live, freshness, stop)
        if running.follower is not None:
            query_context(app).event_log = running.event_log
            print(f"projections loaded (position {live.position})", flush=True)
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
        self.redis = connect(settings.redis_url, socket_timeout=freshness.read_block_seconds + 2)
        self.follower = StreamFollower(
            self.redis,
            settings.events_stream,
            live,
            store,
            freshness,
            count=settings.read_count,
            block_ms=settings.read_block_ms,
        )
        # /ready must know the store is down even when there is nothing to save
        probe = Probe(
            partial(event_log.query, "SELECT position FROM {p}position WHERE id = 1"),
            freshness.store,
        )
        self.tasks = [
            asyncio.create_task(self.follower.run(), name="follower"),
            asyncio.create_task(probe.forever(), name="store-probe"),
        ]

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
    """Run the consumer and the HTTP server until SIGINT or SIGTERM (blocking)."""
    run_async(serve_async(settings))


def rebuild(settings: Settings) -> int:
    """Rebuild the read model from the whole events stream, replacing the store's content.

    Returns how many events changed the model.
    """
    store = open_store(settings.view_store, settings.view_table_prefix)
    try:
        return rebuild_into(store, settings)
    finally:
        store.close()


def rebuild_into(store: SqlViewStore, settings: Settings) -> int:
    """Fold the whole events stream and replace the store's rows and event log with the result."""
    rows: list[EventRow] = []
    fold = HistoryFold(rules.ReadModel(), rows)
    start = "-"
    # the whole rebuild allocates without reference cycles: no collector passes over the model
    with collector.paused(), SyncRedis.from_url(settings.redis_url) as redis:
        # XRANGE's reply as it comes (entry id, flat field list): no dict per entry
        redis.set_response_callback("XRANGE", _raw_reply)
        while True:
            entries = redis.xrange(settings.events_stream, min=start, count=REBUILD_CHUNK)
            fold.feed(entries)
            if len(entries) < REBUILD_CHUNK:
                break
            last_id = entries[-1][0]
            start = "(" + (last_id.decode() if isinstance(last_id, bytes) else last_id)
        model = fold.finish()
    store.replace(full_batch(model, rows))
    return len(rows)


def _raw_reply(response: Any, **options: Any) -> Any:
    return response


def main() -> None:
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    serve(Settings.from_env())
