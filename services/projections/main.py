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
from services.common.resilience import Backoff, Outage, Probe, Stopping, keep_trying
from services.projections import collector, rules
from services.projections.api import create_app, served
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


def build_app(
    live: LiveReadModel, settings: Settings, freshness: Freshness, event_log: SqlViewStore
) -> Any:
    # audit queries read the event log through connections of their own
    return served(create_app(
        live,
        min_position_wait=settings.min_position_wait,
        ready_lag_seconds=settings.ready_lag_seconds,
        event_log=event_log,
        freshness=freshness,
        refuse_when_stale=settings.refuse_when_stale,
    ))


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
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    store = await when_available(_open(settings), "view store (start-up)", stop)
    event_log = await when_available(_open(settings), "view store (start-up)", stop)
    model = None
    if store is not None:
        model = await when_available(
            lambda: asyncio.to_thread(store.load), "view store (loading)", stop
        )
    if store is None or event_log is None or model is None:
        return
    live = LiveReadModel(model)
    live.settle()
    block = settings.read_block_ms / 1000
    freshness = Freshness(settings.ready_lag_seconds, read_block_seconds=block)
    # a silent connection is given up soon after the longest wait a read asks for
    redis = connect(settings.redis_url, socket_timeout=block + 2.0)
    listener = listen(settings.http_host, settings.http_port)
    host, port = listener.getsockname()[:2]
    server = HttpServer(server_config(build_app(live, settings, freshness, event_log)))
    follower = StreamFollower(
        redis, settings.events_stream, live, store, freshness,
        count=settings.read_count, block_ms=settings.read_block_ms,
    )
    following = asyncio.create_task(follower.run(), name="follower")
    # /ready must know the store is down even when there is nothing to save
    store_probe = Probe(partial(event_log.query, "SELECT position FROM {p}position WHERE id = 1"),
                        freshness.store)
    probing = asyncio.create_task(store_probe.forever(), name="store-probe")
    serving = asyncio.create_task(server.serve(sockets=[listener]), name="http")
    print(f"projections listening on http://{host}:{port} (position {live.position})", flush=True)
    try:
        await asyncio.wait([asyncio.ensure_future(stop.wait()), serving],
                           return_when=asyncio.FIRST_COMPLETED)
    finally:
        probing.cancel()
        following.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await following
        with contextlib.suppress(Exception):
            await asyncio.wait_for(follower.flush(3.0), 4.0)
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(serving, 3.0)
        await redis.aclose()
        for each in (store, event_log):
            with contextlib.suppress(Exception):
                each.close()
        listener.close()


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
