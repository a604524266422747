"""The keys service process: answer /health at once, then (retrying through outages) recover,
consume commands, relay events and keep /ready true to what it can do. SIGTERM or SIGINT
finishes the batch in hand, stops the relay and exits."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from faststream.redis import RedisBroker

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
from services.keys.processor import CommandProcessor
from services.keys.settings import KeysSettings
from services.keys.store import ApiKeysApplication
from services.keys.streams.broker import GRACEFUL_SECONDS, build_broker
from services.keys.streams.consumer import CommandConsumer, ensure_group
from services.keys.streams.mapping import PUBLISHED_TOPICS
from services.keys.streams.relay import EventRelay
from services.keys.streams.relay_process import RelayProcess
from services.keys.streams.replay import ReplayResponder
from services.keys.streams.trimming import StreamTrimmer
from services.keys.streams.upkeep import look_after_pending

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
        self.redis = connect(settings.redis_url, retries=0)  # consumer: checks lost replies
        self.probe_redis = connect(settings.redis_url)
        self.replay_redis: Any = None
        self.relay_process: RelayProcess | None = None
        self.inline_relay: EventRelay | None = None
        self.consumer: CommandConsumer | None = None
        self.broker: RedisBroker | None = None
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
        """Open the store, recover, then consume; each step retried through outages."""
        app = await self._open_store()
        await self._retry(
            lambda: ensure_group(self.redis, self.settings.commands_stream, self.settings.group)
        )
        await self._retry(self._raise_watermark_from_store)
        consumer = self._wire_consumer(app)
        recovered = await consumer.recover_own_pending()
        if recovered:
            log.warning("recovered %d pending command entries", recovered)
        await self._start_reading(consumer)
        # what start-up allocated (imports, the library's registries) lives as long as the
        # process: out of the collector's full passes, which otherwise stall the event loop
        gc.collect()
        gc.freeze()
        self.readiness.started = True
        settings = self.settings
        print(
            f"keys service: consuming {settings.commands_stream} as {settings.consumer} "
            f"(group {settings.group}); health on http://{settings.health_addr}/health",
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
        self.replay_redis = connect(settings.redis_url)
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

    def _wire_consumer(self, app: ApiKeysApplication) -> CommandConsumer:
        """The processor, the relay it wakes, and the consumer that feeds it."""
        settings = self.settings
        processor = CommandProcessor(
            app, cache_size=settings.cache_size, snapshot_interval=settings.snapshot_interval
        )
        wake = self._start_relay(app)
        consumer = CommandConsumer(settings, processor, self.redis, on_stored=wake)
        self.consumer = consumer
        if self.stop_requested.is_set():
            raise ServiceStopped
        self.readiness.store_users.append(consumer.store_outage)
        self.readiness.redis_users.append(consumer.redis_outage)
        return consumer

    async def _start_reading(self, consumer: CommandConsumer) -> None:
        # the reader's errors are logged once per outage; the upkeep loop's calls tell when
        # Redis answers again (readiness has its own probe)
        reader_outage = Outage("Redis (commands reader)", log)
        broker = build_broker(self.settings, consumer, reader_outage)
        await self._retry(broker.start)
        self.broker = broker
        upkeep = look_after_pending(consumer, reader_outage)
        self.tasks.append(asyncio.create_task(upkeep, name="upkeep"))
        if self.settings.trim_streams:
            trimmer = StreamTrimmer(self.settings, self.probe_redis)
            trimming = trimmer.run(Outage("Redis (trimming the streams)", log))
            self.tasks.append(asyncio.create_task(trimming, name="trimming"))

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

    def _start_relay(self, app: ApiKeysApplication) -> Callable[[], None]:
        settings = self.settings
        if settings.relay_in_process:
            relay = EventRelay(
                app,
                connect(settings.redis_url),
                settings.events_stream,
                cache_size=settings.cache_size,
            )
            self.inline_relay = relay
            self.tasks.append(asyncio.create_task(relay.run(), name="relay"))
            return relay.wake.set
        process = RelayProcess(settings)
        process.start()
        self.relay_process = process
        self.tasks.append(asyncio.create_task(process.supervise(), name="relay-supervisor"))
        return process.wake

    async def stop(self) -> None:
        """Finish the batch in hand, stop reading, stop the relay, close: within
        STOP_SECONDS of the signal, abandoning a call blocked on a silent connection."""
        started = time.monotonic()
        self.readiness.started = False
        if self.consumer is not None:
            self.consumer.stop()
        if self.broker is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.broker.stop(), GRACEFUL_SECONDS + 0.5)
        if self.consumer is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.consumer.lock.acquire(), 1.0)
        await cancel_all(self.tasks)
        if self.relay_process is not None:
            await self.relay_process.stop()
        if self.inline_relay is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.inline_relay.relay_once(), 1.0)
            await self.inline_relay.redis.aclose()
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
        if service.consumer is not None:  # new batches are left for the next start
            service.consumer.stop()

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
    asyncio.run(run_keys_service(settings or KeysSettings.from_env()))


if __name__ == "__main__":
    serve()
