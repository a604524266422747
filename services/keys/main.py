"""The keys service process: answer /health at once, then (retrying through outages) open the
store, agree on the number of partitions, and take its share of the partitions and, when its
turn comes, of the relay (``partitions``); keep /ready true to what it can do. SIGTERM or
SIGINT finishes the batches in hand, gives the leases back, stops the relay and exits."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

from services.common import logs
from services.common.http_server import HttpServer, http_config
from services.common.lag import RAISE_WATERMARK, watermark_key
from services.common.redis_client import connect
from services.common.resilience import (
    Backoff,
    Outage,
    Stopping,
    cancel_all,
    finish_threads,
    keep_trying,
)
from services.keys.health import Readiness, health_app, monitor
from services.keys.partitions.coordinator import Coordinator
from services.keys.partitions.count import PartitionsMismatch, agree_on_partitions
from services.keys.settings import KeysSettings
from services.keys.store import ApiKeysApplication
from services.keys.streams.broker import GRACEFUL_SECONDS
from services.keys.streams.consumer import ensure_group
from services.keys.streams.mapping import PUBLISHED_TOPICS
from services.keys.streams.replay import ReplayResponder

log = logging.getLogger("apikeys.keys")
T = TypeVar("T")
STOP_SECONDS = 8.5  # from the signal to the exit, under the 10 s a process manager allows


class ServiceStopped(Exception):
    """A stop was asked for while the service was still starting."""


class KeysService:
    def __init__(self, settings: KeysSettings, readiness: Readiness, stop: asyncio.Event):
        self.settings = settings
        self.readiness = readiness
        self.stop_requested = stop
        self.app: ApiKeysApplication | None = None
        cluster = settings.redis_cluster
        # the consumers' client checks lost replies itself
        self.redis = connect(settings.redis_url, cluster=cluster, retries=0)
        self.probe_redis = connect(settings.redis_url, cluster=cluster)
        self.replay_redis: Any = None
        self.coordinator: Coordinator | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.startup = Outage("keys service start-up", log)

    async def _retry(self, what: Callable[[], Awaitable[T]]) -> T:
        try:
            return await keep_trying(
                what,
                self.startup,
                self.stop_requested.is_set,
                Backoff(cap=5.0),
                stop=self.stop_requested,
            )
        except Stopping:
            raise ServiceStopped from None

    async def start(self) -> None:
        """Open the store, agree on the partitions, then take a share of them; each step
        retried through outages (a disagreement on the partitions is not retried)."""
        settings = self.settings
        app = await self._open_store()
        await self._retry(
            lambda: agree_on_partitions(
                self.probe_redis, settings.partitions_key, settings.partitions
            )
        )
        for stream in settings.partition_streams():
            await self._retry(partial(ensure_group, self.redis, stream, settings.group))
        await self._retry(self._raise_watermark_from_store)
        if self.stop_requested.is_set():
            raise ServiceStopped
        coordinator = Coordinator(settings, app, self.redis, self.probe_redis, self.readiness)
        self.coordinator = coordinator
        coordinator.start()
        # what start-up allocated (imports, the library's registries) lives as long as the
        # process: out of the collector's full passes, which otherwise stall the event loop
        gc.collect()
        gc.freeze()
        self.readiness.started = True
        print(
            f"keys service: {settings.partitions} partition(s) of {settings.commands_stream} "
            f"shared as {settings.consumer} (group {settings.group}); "
            f"health on http://{settings.health_addr}/health",
            flush=True,
        )

    async def _open_store(self) -> ApiKeysApplication:
        settings = self.settings
        app = await self._retry(lambda: asyncio.to_thread(ApiKeysApplication, settings.event_store))
        self.app = app
        monitoring = monitor(self.readiness, app, self.probe_redis, settings.events_stream)
        self.tasks.append(asyncio.create_task(monitoring, name="monitor"))
        self._start_replay(app)
        return app

    def _start_replay(self, app: ApiKeysApplication) -> None:
        """Answer replay requests from readers behind the events stream's window."""
        settings = self.settings
        self.replay_redis = connect(settings.redis_url, cluster=settings.redis_cluster)
        responder = ReplayResponder(
            app,
            self.replay_redis,
            settings.replay_requests_stream,
            group=settings.group,
            consumer=settings.consumer,
            max_events=settings.replay_max_events,
            ttl_seconds=settings.replay_ttl_seconds,
        )
        self.tasks.append(asyncio.create_task(responder.run(), name="replay"))

    async def _raise_watermark_from_store(self) -> None:
        """Events stored before this start count as stored now (for the relay's lag)."""
        assert self.app is not None
        position = await asyncio.to_thread(self.app.last_position, PUBLISHED_TOPICS)
        if position:
            await self.probe_redis.eval(
                RAISE_WATERMARK,
                1,
                watermark_key(self.settings.events_stream),
                position,
                f"{time.time():.6f}",
            )

    def stop_reading(self) -> None:
        """New batches are left for the next holder of each partition."""
        if self.coordinator is not None:
            self.coordinator.stop_reading()

    async def stop(self) -> None:
        """Finish the batches in hand, stop reading, give the leases back, stop the relay,
        close: within STOP_SECONDS of the signal, abandoning a call blocked on a silent
        connection."""
        started = time.monotonic()
        self.readiness.started = False
        if self.coordinator is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.coordinator.stop(), GRACEFUL_SECONDS + 2.5)
        await cancel_all(self.tasks)
        for client in (self.redis, self.probe_redis, self.replay_redis):
            with contextlib.suppress(Exception):
                if client is not None:
                    await client.aclose()
        await finish_threads(max(0.5, STOP_SECONDS - (time.monotonic() - started)), log)
        if self.app is not None:
            self.app.close()


def health_server(settings: KeysSettings, readiness: Readiness) -> HttpServer:
    host, _, port = settings.health_addr.rpartition(":")
    return HttpServer(
        http_config(
            health_app(readiness),
            settings.http_limits,
            host=host.strip("[]"),
            port=int(port),
            timeout_graceful_shutdown=1,
        )
    )


async def run_keys_service(settings: KeysSettings) -> None:
    readiness = Readiness(max_relay_lag_seconds=settings.max_relay_lag_seconds)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    server = health_server(settings, readiness)
    serving = asyncio.create_task(server.serve(), name="health")
    service = KeysService(settings, readiness, stop)

    def request_stop() -> None:
        stop.set()
        service.stop_reading()  # new batches are left for the next start

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, request_stop)
    try:
        with contextlib.suppress(ServiceStopped):
            await service.start()
        await _first(stop.wait(), serving)
    finally:
        await service.stop()
        server.should_exit = True
        with contextlib.suppress(Exception):
            await serving


async def _first(*awaitables: Awaitable[Any]) -> None:
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        if not isinstance(task, asyncio.Task) or task.get_name() != "health":
            task.cancel()


# Batches are applied in a worker thread that holds the GIL while it computes; the event loop
# (health, replies, reads) gets it back after at most this long instead of 5 ms.
GIL_SWITCH_SECONDS = 0.001


def serve(settings: KeysSettings | None = None) -> None:
    logs.configure()
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    try:
        asyncio.run(run_keys_service(settings or KeysSettings.from_env()))
    except PartitionsMismatch as error:
        sys.exit(f"keys service: {error}")


if __name__ == "__main__":
    serve()
