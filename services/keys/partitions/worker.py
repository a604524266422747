"""One partition held by this replica: a new epoch taken in the event store, the partition's
unanswered entries finished in order (those of the replica that held it before first), then
its commands stream read through FastStream until the partition is given back, lost, or
fenced, or until its reader stops reading (``streams.watchdog``): the worker then ends, and
the partition is given back and taken again with a new reader."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from faststream.redis import RedisBroker

from services.common.resilience import Backoff, Outage, cancel_all, keep_trying
from services.keys.health import Readiness
from services.keys.processor import CommandProcessor
from services.keys.settings import KeysSettings
from services.keys.store import ApiKeysApplication, Fence, Fenced
from services.keys.streams import watchdog
from services.keys.streams.broker import GRACEFUL_SECONDS, build_broker, start_broker
from services.keys.streams.consumer import CommandConsumer
from services.keys.streams.upkeep import look_after_pending

log = logging.getLogger(__name__)


class PartitionWorker:
    def __init__(
        self,
        stream: str,
        settings: KeysSettings,
        app: ApiKeysApplication,
        redis: Any,
        readiness: Readiness,
        wake: Callable[[], None],
    ) -> None:
        self.stream = stream
        self.settings = replace(settings, commands_stream=stream)
        self.app = app
        self.redis = redis  # without automatic retries (see CommandConsumer)
        self.readiness = readiness
        self.wake = wake
        # set when this worker cannot go on: the store refused a batch (another holder took
        # the partition), or its reader stopped reading
        self.ended = asyncio.Event()
        self.consumer: CommandConsumer | None = None
        self.broker: RedisBroker | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.stopping = False
        self.outage = Outage(f"partition {stream}", log)

    async def start(self) -> None:
        """Take an epoch, finish what is pending, then read: each step retried through
        outages until it succeeds or ``stop`` is called."""
        epoch = await self._retry(lambda: asyncio.to_thread(self.app.take_epoch, self.stream))
        settings = self.settings
        processor = CommandProcessor(
            self.app,
            cache_size=settings.cache_size,
            snapshot_interval=settings.snapshot_interval,
            fence=Fence(self.stream, epoch),
            exclusive=settings.partitions > 1,
        )
        consumer = CommandConsumer(
            settings,
            processor,
            self.redis,
            on_stored=self.wake,
            on_fenced=self._fenced,
        )
        self.consumer = consumer
        self.readiness.store_users.append(consumer.store_outage)
        self.readiness.redis_users.append(consumer.redis_outage)
        recovered = await consumer.recover_own_pending()
        if recovered:
            log.warning("partition %s: finished %d pending entries first", self.stream, recovered)
        if consumer.stopping:
            return
        reader_outage = Outage(f"Redis (commands reader, {self.stream})", log)
        broker = build_broker(settings, consumer, reader_outage)
        self.broker = broker
        await self._retry(lambda: start_broker(broker))
        upkeep = look_after_pending(consumer, reader_outage, self._stalled)
        self.tasks.append(asyncio.create_task(upkeep, name=f"upkeep {self.stream}"))
        log.info("partition %s: consuming with epoch %d", self.stream, epoch)

    def stop_reading(self) -> None:
        """New batches are left pending (for whoever holds the partition next)."""
        self.stopping = True
        if self.consumer is not None:
            self.consumer.stop()

    async def stop(self) -> None:
        """Finish the batch in hand, stop reading, let go of everything."""
        self.stop_reading()
        if self.broker is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.broker.stop(), GRACEFUL_SECONDS + 0.5)
        consumer = self.consumer
        if consumer is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(consumer.lock.acquire(), 1.0)
            for users, outage in (
                (self.readiness.store_users, consumer.store_outage),
                (self.readiness.redis_users, consumer.redis_outage),
            ):
                with contextlib.suppress(ValueError):
                    users.remove(outage)
        await cancel_all(self.tasks)

    def _fenced(self, error: Fenced) -> None:
        self.stopping = True
        self.ended.set()

    def _stalled(self) -> None:
        log.warning(
            "partition %s: its reader delivered nothing for %.0f s while entries wait; "
            "restarting it",
            self.stream,
            watchdog.STALL_SECONDS,
        )
        self.ended.set()

    async def _retry(self, call: Callable[[], Any]) -> Any:
        """Raises ``Stopping`` when stopped meanwhile."""
        return await keep_trying(call, self.outage, lambda: self.stopping, Backoff(cap=2.0))
