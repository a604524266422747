"""Events as typed contract structs, from a position the caller keeps, or shared out among
the consumers of a consumer group.

``events(after=p)`` follows the README's resume recipe: it reads after entry ``<p>-1`` and
checks every event's ``previous_position`` against the position before it, so an event missed
because the stream no longer holds it raises ``EventsMissing`` (never a silent gap), and an
event at or below the position is never yielded twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis

from client.connection import BLOCK_MS, RECONNECT_ERRORS, stop_if_cancelled, text
from client.errors import EventsMissing
from client.group_gaps import Entries, GroupGaps
from contracts.events import AnyEvent, event_decoder
from contracts.streams import DATA_FIELD, entry_id_to_position, position_to_entry_id

log = logging.getLogger("client.events")
READ_COUNT = 500
MAX_BACKOFF = 2.0
_DATA = DATA_FIELD.encode()


def _start_id(after: int) -> str:
    return position_to_entry_id(after) if after > 0 else "0-0"


def check_continuity(position: int, event: AnyEvent) -> None:
    """Events after ``position`` up to the event's ``previous_position`` are missing unless
    that range is empty."""
    previous = event.previous_position
    if previous is not None and previous > position:
        raise EventsMissing(position, previous)


class Subscriber:
    def __init__(self, redis: Redis, stream: str) -> None:
        self.redis = redis
        self.stream = stream
        self.gaps = GroupGaps(redis, stream)

    async def events(
        self, after: int = 0, *, count: int = READ_COUNT, block_ms: int = BLOCK_MS
    ) -> AsyncIterator[AnyEvent]:
        """Every event after position ``after``, in order, waiting for new ones for ever.
        Store ``event.position`` once an event is handled and pass it back as ``after``."""
        position = after
        last_id = _start_id(after)
        backoff = 0.05
        while True:
            stop_if_cancelled()
            try:
                reply: Any = await self.redis.xread(
                    {self.stream: last_id}, count=count, block=block_ms
                )
            except RECONNECT_ERRORS as error:
                log.warning("events stream unreachable (%s); retrying", type(error).__name__)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            backoff = 0.05
            for _, entries in reply or ():
                for entry_id, fields in entries:
                    last_id = text(entry_id)
                    event = event_decoder.decode(fields[_DATA])
                    if event.position <= position:
                        continue
                    check_continuity(position, event)
                    position = event.position
                    yield event

    async def group_events(
        self,
        group: str,
        consumer: str,
        *,
        start_after: int = 0,
        claim_idle_ms: int = 30_000,
        count: int = 100,
        block_ms: int = BLOCK_MS,
    ) -> AsyncIterator[AnyEvent]:
        """The events of a consumer group, each to one of its consumers, acknowledged when the
        consumer asks for the next one (at least once: an event being handled when a consumer
        stops is handled again, by it after a restart or by another after ``claim_idle_ms``).
        A new group starts after ``start_after``. Order holds only within one consumer's share.

        Every delivery of new events is checked against the last event the group was given
        (``group_gaps``): events the stream no longer held when the group came to them raise
        ``EventsMissing`` here, and for every consumer of the group, until
        ``resume_group`` says they were caught up with. So do events given to a consumer
        and trimmed from the stream before they were acknowledged (found when they are read
        again after a restart or claimed by another consumer)."""
        await self._create_group(group, start_after)
        backlog = True  # first this consumer's own pending entries (a restart)
        while True:
            stop_if_cancelled()
            try:
                await self._raise_recorded_gap(group)
                entries = await self._next_entries(group, consumer, backlog, claim_idle_ms, count)
                if backlog and not entries:
                    backlog = False
                    continue
                gap = None
                if not entries:
                    entries, gap = await self._read_new(group, consumer, count, block_ms)
            except RECONNECT_ERRORS as error:
                log.warning("events stream unreachable (%s); retrying", type(error).__name__)
                await asyncio.sleep(MAX_BACKOFF)
                backlog = True
                continue
            for entry_id, fields in entries:
                yield event_decoder.decode(fields[_DATA])
                await self.redis.xack(self.stream, group, entry_id)
            if gap is not None:
                raise gap

    async def resume_group(self, group: str) -> None:
        """After catching up with the events a group missed (``EventsMissing``): let its
        consumers read on from the first event after the gap."""
        await self.gaps.resume(group)

    async def _raise_recorded_gap(self, group: str) -> None:
        gap = await self.gaps.recorded_gap(group)
        if gap is not None:
            raise gap

    async def _create_group(self, group: str, start_after: int) -> None:
        start_id = _start_id(start_after)
        if not await self.gaps.create(group, start_id, start_after):
            return  # an existing group goes on from where it is
        first: Any = await self.redis.xrange(self.stream, min=f"({start_id}", count=1)
        if first:
            check_continuity(start_after, event_decoder.decode(first[0][1][_DATA]))

    async def _next_entries(
        self, group: str, consumer: str, backlog: bool, claim_idle_ms: int, count: int
    ) -> Entries:
        if not backlog:
            claimed: Any = await self.redis.xautoclaim(
                self.stream, group, consumer, min_idle_time=claim_idle_ms, count=count
            )
            # Redis 6.2 gives a trimmed entry it claimed without its id; the claimed entries
            # are this consumer's now, so its own pending list (below) names them
            if all(i is not None for i, _ in claimed[1]):
                # Redis 7 lists trimmed pending entries apart (and drops them)
                trimmed: Entries = [(i, {}) for i in (claimed[2] if len(claimed) > 2 else ())]
                return await self._kept(group, [*claimed[1], *trimmed])
        reply: Any = await self.redis.xreadgroup(group, consumer, {self.stream: "0"}, count=count)
        return await self._kept(group, [(i, f) for _, found in reply or () for i, f in found])

    async def _kept(self, group: str, entries: Entries) -> Entries:
        gone = [i for i, f in entries if not f]  # pending, but trimmed from the stream since
        if gone:
            # delivered, maybe never handled, and no longer there to handle again: a gap
            await self.redis.xack(self.stream, group, *gone)
            positions = sorted(entry_id_to_position(i) for i in gone)
            raise await self.gaps.record(group, positions[0] - 1, positions[-1])
        return [(i, f) for i, f in entries if f]

    async def _read_new(
        self, group: str, consumer: str, count: int, block_ms: int
    ) -> tuple[Entries, EventsMissing | None]:
        """New entries for this consumer, checked against the group's last delivery; waits
        up to ``block_ms`` for some when there are none."""
        entries, gap, top = await self.gaps.deliver(group, consumer, count)
        if top is None:
            return entries, gap
        # nothing new: wait (taking nothing) for an entry after the one that was the stream's
        # top when the group had had everything
        await self.redis.xread({self.stream: top}, count=1, block=block_ms)
        entries, gap, _ = await self.gaps.deliver(group, consumer, count)
        return entries, gap
