"""What one replica at a time does for all of them, under the relay's lease: publish the
stored events (the relay, as a child process or inline) and trim the streams. Publication is
exactly once per position whoever publishes (explicit entry ids in MULTI/EXEC), so an overlap
while a lease changes hands publishes nothing twice; the lease only keeps one relay busy."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from services.common.redis_client import connect
from services.common.resilience import Outage, cancel_all
from services.keys.settings import KeysSettings
from services.keys.store import ApiKeysApplication
from services.keys.streams.relay import EventRelay
from services.keys.streams.relay_process import RelayProcess
from services.keys.streams.trimming import StreamTrimmer

log = logging.getLogger(__name__)


def relay_lease_name(events_stream: str) -> str:
    return f"{events_stream}.relay"


class RelayDuty:
    def __init__(self, settings: KeysSettings, app: ApiKeysApplication, redis: object) -> None:
        self.settings = settings
        self.app = app
        self.trim_redis = redis
        self.process: RelayProcess | None = None
        self.inline: EventRelay | None = None
        self.tasks: list[asyncio.Task[None]] = []

    @property
    def running(self) -> bool:
        return bool(self.tasks)

    def start(self) -> None:
        settings = self.settings
        if settings.relay_in_process:
            relay = EventRelay(
                self.app,
                connect(settings.redis_url, cluster=settings.redis_cluster),
                settings.events_stream,
                cache_size=settings.cache_size,
            )
            self.inline = relay
            self.tasks.append(asyncio.create_task(relay.run(), name="relay"))
        else:
            process = RelayProcess(settings)
            process.start()
            self.process = process
            self.tasks.append(asyncio.create_task(process.supervise(), name="relay-supervisor"))
        if settings.trim_streams:
            trimmer = StreamTrimmer(settings, self.trim_redis)  # type: ignore[arg-type]
            trimming = trimmer.run(Outage("Redis (trimming the streams)", log))
            self.tasks.append(asyncio.create_task(trimming, name="trimming"))

    def wake(self) -> None:
        """Events were stored: publish them now (if this replica publishes)."""
        if self.inline is not None:
            self.inline.wake.set()
        elif self.process is not None:
            self.process.wake()

    async def stop(self) -> None:
        await cancel_all(self.tasks)
        self.tasks = []
        if self.process is not None:
            await self.process.stop()
            self.process = None
        if self.inline is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.inline.relay_once(), 1.0)
            await self.inline.redis.aclose()
            self.inline = None
