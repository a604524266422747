"""The relay: follows the event store's notification log and publishes each stored event to
the events stream, in position order, exactly once per position.

Each event is added with the explicit entry id ``<position>-1`` inside MULTI/EXEC: Redis
refuses an id at or below the stream's top, so a re-publish after a crash changes nothing,
and the stream's last id is where the relay resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
from collections import OrderedDict
from collections.abc import Callable
from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEvent
from eventsourcing.utils import get_topic
from redis.asyncio import Redis

from contracts.codec import json_encoder
from contracts.streams import DATA_FIELD, entry_id_to_position, position_to_entry_id
from services.common.lifeline import die_with_parent
from services.common.redis_client import connect
from services.common.resilience import Backoff, Outage, Stopping, is_transient, keep_trying
from services.keys.domain import ApiKey, Organization
from services.keys.mapping import is_published, to_contract
from services.keys.store import ApiKeysApplication

log = logging.getLogger(__name__)


def _event_topics(*aggregate_classes: type) -> tuple[str, ...]:
    """The topics of every event class the aggregates define (receipts are left out)."""
    return tuple(
        get_topic(member)
        for cls in aggregate_classes
        for member in vars(cls).values()
        if isinstance(member, type) and issubclass(member, DomainEvent)
    )


# The relay reads only what it folds: key and organization events, not command receipts.
FOLDED_TOPICS = _event_topics(ApiKey, Organization)


async def stream_top_position(redis: Redis, stream: str) -> int:
    """The position of the events stream's last entry (0 when there is none)."""
    last: Any = await redis.xrevrange(stream, count=1)
    return entry_id_to_position(last[0][0]) if last else 0


class EventRelay:
    def __init__(
        self,
        app: ApiKeysApplication,
        redis: Redis,
        stream: str,
        *,
        batch_size: int = 1000,
        cache_size: int = 50_000,
    ):
        self.app = app
        self.redis = redis
        self.stream = stream
        self.batch_size = batch_size
        self.cache_size = cache_size
        self.aggregates: OrderedDict[UUID, Any] = OrderedDict()
        self.read_up_to = 0
        self.wake = asyncio.Event()

    async def start_position(self) -> int:
        self.read_up_to = await stream_top_position(self.redis, self.stream)
        return self.read_up_to

    def read_batch(self) -> list[tuple[int, bytes]]:
        """The next stored events, mapped to contract events, as (position, JSON)."""
        notifications = self.app.recorder.select_notifications(
            start=self.read_up_to + 1, limit=self.batch_size, topics=FOLDED_TOPICS
        )
        out: list[tuple[int, bytes]] = []
        for notification in notifications:
            self.read_up_to = notification.id
            event = self.app.mapper.to_domain_event(notification)
            aggregate = self._fold(event)
            if not is_published(event):
                continue
            contract = to_contract(event, aggregate, notification.id)
            if contract is not None:
                out.append((notification.id, json_encoder.encode(contract)))
        return out

    def _fold(self, event: Any) -> Any:
        aggregate = self.aggregates.get(event.originator_id)
        if aggregate is not None and aggregate.version == event.originator_version - 1:
            aggregate = event.mutate(aggregate)
        elif event.originator_version == 1:
            aggregate = event.mutate(None)  # a creation needs no earlier state
        else:
            aggregate = self.app.repository.get(
                event.originator_id, version=event.originator_version
            )
        self.aggregates[event.originator_id] = aggregate
        self.aggregates.move_to_end(event.originator_id)
        if len(self.aggregates) > self.cache_size:
            self.aggregates.popitem(last=False)
        return aggregate

    async def publish(self, items: list[tuple[int, bytes]]) -> None:
        if not items:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            for position, data in items:
                pipe.xadd(self.stream, {DATA_FIELD: data}, id=position_to_entry_id(position))
            replies = await pipe.execute(raise_on_error=False)
        for reply in replies:
            if isinstance(reply, Exception) and "equal or smaller" not in str(reply):
                raise reply

    async def relay_once(self) -> int:
        """Publish what is stored and not yet published; return how many events went out."""
        total = 0
        while True:
            before = self.read_up_to
            items = await asyncio.to_thread(self.read_batch)
            await self.publish(items)
            total += len(items)
            if self.read_up_to == before:
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
            except Exception as error:
                if is_transient(error):
                    outage.failed(error)
                elif not failing:  # the traceback once, not once per retry
                    failing = True
                    log.exception("relay failed; retrying with backoff")
                self.aggregates.clear()
                started = False  # resume from what the stream holds
                await asyncio.sleep(backoff.next_delay())
                continue
            if published:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), poll_seconds)


async def relay_forever(event_store: str, redis_url: str, stream: str, wake_fd: int) -> None:
    """The relay as a process of its own. The keys service writes a byte to ``wake_fd`` after
    each stored batch; end of file there means the keys service is gone, and so the relay
    ends too."""
    parent_gone = asyncio.Event()
    loop = asyncio.get_running_loop()
    os.set_blocking(wake_fd, False)
    try:  # a relay started during a store outage waits for the store
        app = await keep_trying(
            lambda: asyncio.to_thread(ApiKeysApplication, event_store),
            Outage("relay's event store", log),
            parent_gone.is_set,
            Backoff(cap=5.0),
        )
    except Stopping:
        return
    redis = connect(redis_url)
    relay = EventRelay(app, redis, stream)
    gc.collect()
    gc.freeze()  # start-up's objects out of the collector's full passes

    def readable() -> None:
        try:
            data = os.read(wake_fd, 4096)
        except BlockingIOError:
            return
        if not data:
            loop.remove_reader(wake_fd)
            parent_gone.set()
        relay.wake.set()

    loop.add_reader(wake_fd, readable)
    try:
        await relay.run(IDLE_POLL_SECONDS, alive=lambda: not parent_gone.is_set())
    finally:
        await redis.aclose()
        app.close()


RELAY_NICENESS = 5
# how often an idle relay looks at the store without being woken (another writer's events)
IDLE_POLL_SECONDS = 1.0


def run_relay_process(event_store: str, redis_url: str, stream: str, wake: Any) -> None:
    """Entry point of the relay process (``wake``: the read end of the wake-up pipe)."""
    die_with_parent()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when the relay stops
    # The command path comes first when both cores are busy: the relay is a follower whose
    # lag drains as soon as there is room (measured: +5-8% commands/s end to end).
    os.nice(RELAY_NICENESS)
    fd = wake.fileno()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(relay_forever(event_store, redis_url, stream, fd))
