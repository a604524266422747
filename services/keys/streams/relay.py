"""The relay: publishes the event feed (stored events as contract events) to the events
stream, in position order, exactly once per position.

Each event is added with the explicit entry id ``<position>-1``, a batch in one script call
(atomic, as MULTI/EXEC would be): Redis refuses an id at or below the stream's top, so a
re-publish after a crash changes nothing, and the stream's last id is where the relay resumes.

The same script first reads the stream's top: if it is below what this relay has published,
the stream lost its tail (a Redis primary failed over before replicating it, or a server
restarted from an older append-only file), nothing is added, and the relay goes back to the
top and publishes the lost events again from the store instead of leaving a hole. A failover
can happen inside the client's own retries without an error reaching the relay, so the check
is made on every call, not only after an error. The events stream is one key, so the script
keeps to one hash slot on a Redis Cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis

from contracts.streams import DATA_FIELD, entry_id_to_position, position_to_entry_id
from services.common import collector
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


# KEYS[1]: the events stream; ARGV: the field name, the highest position published so far,
# then entry id and data of each event. An id at or below the top is passed over.
_PUBLISH = """
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local top = 0
if #last > 0 then top = tonumber(string.match(last[1][1], '^(%d+)-')) end
if top < tonumber(ARGV[2]) then return {'tail_lost', top} end
local field = ARGV[1]
for i = 3, #ARGV, 2 do
  local reply = redis.pcall('XADD', KEYS[1], ARGV[i], field, ARGV[i + 1])
  if type(reply) == 'table' and reply.err
      and not string.find(reply.err, 'equal or smaller', 1, true) then
    return reply
  end
end
return (#ARGV - 2) / 2
"""


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
        """One script call adds the batch (atomically, as MULTI/EXEC would, with one reply to
        parse instead of one per event); an id at or below the top is passed over."""
        if not items:
            return
        arguments: list[Any] = [DATA_FIELD, self.published]
        for position, data in items:
            arguments += (position_to_entry_id(position), data)
        reply = await self.redis.eval(_PUBLISH, 1, self.stream, *arguments)  # type: ignore[misc]
        if isinstance(reply, list):  # ["tail_lost", top]
            raise TailLost(f"{self.stream} ends at {reply[1]}, {self.published} was published")
        self.published = max(self.published, items[-1][0])

    def _read_batch(self) -> list[tuple[int, bytes]]:
        with collector.paused():
            return self.feed.read_batch()

    async def relay_once(self) -> int:
        """Publish what is stored and not yet published; return how many events went out."""
        total = 0
        while True:
            before = self.feed.read_up_to
            items = await asyncio.to_thread(self._read_batch)
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
            except TailLost as error:
                # lost tail: go on from the stream's top
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
