"""Entry points: ``serve`` (consumer and HTTP in one loop) and ``rebuild`` (from the stream)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Iterator

import uvicorn
from litestar import Litestar
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from services.projections import rules
from services.projections.api import create_app
from services.projections.consumer import fold_entries, follow
from services.projections.event_rows import EventRow
from services.projections.live import LiveReadModel
from services.projections.settings import Settings
from services.projections.views import SqlViewStore, full_batch, open_store

log = logging.getLogger(__name__)
REBUILD_CHUNK = 1000


def build_app(live: LiveReadModel, settings: Settings) -> Litestar:
    # audit queries read the event log through a connection of their own, for the process's life
    return create_app(
        live,
        min_position_wait=settings.min_position_wait,
        ready_lag_seconds=settings.ready_lag_seconds,
        event_log=open_store(settings.view_store, settings.view_table_prefix),
    )


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: ``serve`` owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_async(settings: Settings) -> None:
    store = open_store(settings.view_store, settings.view_table_prefix)
    live = LiveReadModel(await asyncio.to_thread(store.load))
    redis = Redis.from_url(settings.redis_url)
    listener = socket.create_server((settings.http_host, settings.http_port))
    host, port = listener.getsockname()[:2]
    config = uvicorn.Config(
        build_app(live, settings), log_level="warning", access_log=False, lifespan="off"
    )
    server = _Server(config)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, lambda: setattr(server, "should_exit", True))
    consumer = asyncio.create_task(
        follow(
            redis,
            settings.events_stream,
            live,
            store,
            count=settings.read_count,
            block_ms=settings.read_block_ms,
        )
    )
    print(f"projections listening on http://{host}:{port} (position {live.position})", flush=True)
    try:
        await server.serve(sockets=[listener])
    finally:
        consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer
        await redis.aclose()
        store.close()
        listener.close()


def serve(settings: Settings) -> None:
    """Run the consumer and the HTTP server until SIGINT or SIGTERM (blocking)."""
    asyncio.run(serve_async(settings))


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
    model = rules.ReadModel()
    rows: list[EventRow] = []
    start = "-"
    with SyncRedis.from_url(settings.redis_url) as redis:
        while True:
            entries = redis.xrange(settings.events_stream, min=start, count=REBUILD_CHUNK)
            fold_entries(model, entries, rows)
            if len(entries) < REBUILD_CHUNK:
                break
            last_id = entries[-1][0]
            start = "(" + (last_id.decode() if isinstance(last_id, bytes) else last_id)
    store.replace(full_batch(model, rows))
    return len(rows)


def main() -> None:
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    serve(Settings.from_env())
