"""The relay: publishes the event feed (stored events as contract events) to the events
stream, in position order, exactly once per position.

Each event is added with the explicit entry id ``<position>-1`` inside MULTI/EXEC: Redis
refuses an id at or below the stream's top, so a re-publish after a crash changes nothing,
and the stream's last id is where the relay resumes.

The stream's top is read under WATCH before each MULTI/EXEC: if it is below what this relay
has published, the stream lost its tail (a Redis primary failed over before replicating it,
or a server restarted from an older append-only file), and the relay goes back to the top and
publishes the lost events again from the store instead of leaving a hole. A failover can
happen inside the client's own retries without an error reaching the relay, so the check is
made every time, not only after an error. The events stream is one key, so this transaction
keeps to one hash slot on a Redis Cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import WatchError

from contracts.streams import DATA_FIELD, entry_id_to_position, position_to_entry_id
from services.common.resilience import Backoff, Outage, is_transient
from services.keys.settings import DEFAULT_CACHE_SIZE
from services.keys.store import ApiKeysApplication
from services.keys.streams.feed import EventFeed

log = logging.getLogger(__name__)


async def stream_top_position(redis: Redis, stream: str) -> int:
    """The position of the events stream's last entry (0 when there is none)."""
    last: Any = await redis.xrevrange(stream, count=1)
    return entry_id_to_position(last[0][0]) if last else 0


class TailLost(Exception):
    """The events stream ends below what this relay has published."""


class EventRelay:
    def __init__(
        self,
        app: ApiKeysApplication,
        redis: Redis,
        stream: str,
        *,
        batch_size: int = 1000,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ):
        self.feed = EventFeed(app, batch_size=batch_size, cache_size=cache_size)
        self.redis = redis
        self.stream = stream
        self.wake = asyncio.Event()
        self.published = 0  # the highest position this relay knows the stream holds

    async def start_position(self) -> int:
        top = await stream_top_position(self.redis, self.stream)
        self.feed.restart_at(top)
        self.published = top
        return top

    async def publish(self, items: list[tuple[int, bytes]]) -> None:
        if not items:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            await pipe.watch(self.stream)
            top = await stream_top_position(pipe, self.stream)
            if top < self.published:
                raise TailLost(f"{self.stream} ends at {top}, {self.published} was published")
            pipe.multi()
            for position, data in items:
                pipe.xadd(self.stream, {DATA_FIELD: data}, id=position_to_entry_id(position))
            replies = await pipe.execute(raise_on_error=False)
        for reply in replies:
            if isinstance(reply, Exception) and "equal or smaller" not in str(reply):
                raise reply
        self.published = max(self.published, items[-1][0])

    async def relay_once(self) -> int:
        """Publish what is stored and not yet published; return how many events went out."""
        total = 0
        while True:
            before = self.feed.read_up_to
            items = await asyncio.to_thread(self.feed.read_batch)
            await self.publish(items)
            total += len(items)
            if self.feed.read_up_to == before:
                return total

    async def run(
        self, poll_seconds: float = 1.0, alive: Callable[[], bool] = lambda: True
    ) -> None:
        """Publish until ``alive()`` is false: woken after each stored batch (``wake``), and
        every ``poll_seconds`` in case another process stored events. An outage of Redis or
        of the store is waited out with backoff; publishing resumes at the stream's top."""
        outage, backoff = Outage("relay", log), Backoff(cap=2.0)
        started = failing = False
        while alive():
            self.wake.clear()
            try:
                if not started:
                    await self.start_position()
                    started = True
                published = await self.relay_once()
                outage.succeeded()
                backoff.reset()
                failing = False
            except (TailLost, WatchError) as error:
                # lost tail, or another relay wrote meanwhile: go on from the stream's top
                if isinstance(error, TailLost):
                    log.warning("%s: publishing again from the event store", error)
                self.feed.aggregates.clear()
                started = False
                continue
            except Exception as error:
                if is_transient(error):
                    outage.failed(error)
                elif not failing:  # the traceback once, not once per retry
                    failing = True
                    log.exception("relay failed; retrying with backoff")
                self.feed.aggregates.clear()
                started = False  # resume from what the stream holds
                await asyncio.sleep(backoff.next_delay())
                continue
            if published:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), poll_seconds)
