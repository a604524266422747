"""The replay responder: answers replay requests (``contracts.replay``) by publishing the range
asked for from the event store, through the same feed the relay publishes, to the requester's
private stream; so a reader that has fallen behind the events stream's window catches up
without a file and without the keys service's code.

Requests are read in the keys service's consumer group and acknowledged when read: a request
lost in a crash is asked again by its requester, which gives up waiting after a timeout. A
request older than the reply's expiry is passed over (its requester has given up). Requests
are answered one at a time, each bounded (``max_events``), each reply stream expiring.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import msgspec
from redis.asyncio import Redis

from contracts.codec import json_encoder
from contracts.replay import ReplayEnd, ReplayRequest, replay_request_decoder
from contracts.streams import (
    DATA_FIELD,
    position_to_entry_id,
    replay_end_entry_id,
    replay_stream,
)
from services.common.resilience import Backoff, Outage, is_transient
from services.keys.store import ApiKeysApplication
from services.keys.streams.consumer import ensure_group
from services.keys.streams.feed import EventFeed

log = logging.getLogger(__name__)
READ_BATCH = 1000  # stored events read, and entries written in one pipeline, at a time
Items = list[tuple[int, bytes]]


def next_chunk(feed: EventFeed, up_to: int) -> tuple[Items, int, bool]:
    """The next published events up to ``up_to`` (each with the ``previous_position`` the
    feed gives it, as on the events stream), how far the store has been read
    (at most ``up_to``), and whether the store holds nothing more."""
    before = feed.read_up_to
    items = [item for item in feed.read_batch() if item[0] <= up_to]
    return items, min(feed.read_up_to, up_to), feed.read_up_to == before


class ReplayResponder:
    def __init__(
        self,
        app: ApiKeysApplication,
        redis: Redis,
        requests_stream: str,
        *,
        group: str,
        consumer: str,
        max_events: int = 10_000,
        ttl_seconds: int = 300,
        block_ms: int = 1000,
    ) -> None:
        self.app = app
        self.redis = redis
        self.requests_stream = requests_stream
        self.group = group
        self.consumer = consumer
        self.max_events = max_events
        self.ttl_seconds = ttl_seconds
        self.block_ms = block_ms

    async def run(self, alive: Callable[[], bool] = lambda: True) -> None:
        """Answer requests until ``alive()`` is false, riding out outages with backoff."""
        outage, backoff = Outage("replay responder", log), Backoff(cap=2.0)
        grouped = failing = False
        while alive():
            try:
                if not grouped:
                    await ensure_group(self.redis, self.requests_stream, self.group)
                    grouped = True
                await self.answer_waiting()
                outage.succeeded()
                backoff.reset()
                failing = False
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if is_transient(error):
                    outage.failed(error)
                elif "NOGROUP" in str(error):  # Redis lost its data: create the group again
                    pass
                elif not failing:  # the traceback once, not once per retry
                    failing = True
                    log.exception("answering a replay request failed; retrying with backoff")
                grouped = False
                await asyncio.sleep(backoff.next_delay())

    async def answer_waiting(self) -> int:
        """Read the waiting requests (blocking a while for one) and answer each; return how
        many were answered."""
        reply: Any = await self.redis.xreadgroup(
            self.group, self.consumer, {self.requests_stream: ">"}, count=10, block=self.block_ms
        )
        entries = list(reply[0][1]) if reply else []
        if not entries:
            return 0
        await self.redis.xack(self.requests_stream, self.group, *(e[0] for e in entries))
        seconds, micros = await self.redis.time()
        now_ms = seconds * 1000 + micros // 1000
        answered = 0
        for entry_id, fields in entries:
            request = _request(entry_id, fields)
            if request is None:
                continue
            if now_ms - _entry_ms(entry_id) > self.ttl_seconds * 1000:
                log.warning("replay request %s is too old to answer", request.request_id)
                continue
            await self.answer(request)
            answered += 1
        return answered

    async def answer(self, request: ReplayRequest) -> ReplayEnd:
        """Publish the events of (after_position, up_to_position], at most ``max_events``,
        then the end marker saying how far the reply goes."""
        target = replay_stream(request.request_id)
        after, up_to = request.after_position, request.up_to_position
        if up_to < after:
            end = ReplayEnd(
                request_id=request.request_id,
                last_position=after,
                complete=False,
                error="invalid_request",
            )
            await self._write(target, [], end)
            return end
        feed = EventFeed(self.app, read_up_to=after, batch_size=READ_BATCH)
        covered, written = after, 0
        while covered < up_to and written < self.max_events:
            items, read_to, exhausted = await asyncio.to_thread(next_chunk, feed, up_to)
            room = self.max_events - written
            if len(items) > room:  # the bound falls inside this chunk: stop after its last
                items, read_to, exhausted = items[:room], items[room - 1][0], True
            await self._write(target, items)
            written += len(items)
            covered = read_to
            if exhausted:
                break
        end = ReplayEnd(
            request_id=request.request_id, last_position=covered, complete=covered >= up_to
        )
        await self._write(target, [], end)
        return end

    async def _write(self, target: str, items: Items, end: ReplayEnd | None = None) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for position, data in items:
                pipe.xadd(target, {DATA_FIELD: data}, id=position_to_entry_id(position))
            if end is not None:
                pipe.xadd(
                    target,
                    {DATA_FIELD: json_encoder.encode(end)},
                    id=replay_end_entry_id(end.last_position),
                )
            pipe.expire(target, self.ttl_seconds)
            replies = await pipe.execute(raise_on_error=False)
        for reply in replies:  # a request answered twice writes the same entries: no-ops
            if isinstance(reply, Exception) and "equal or smaller" not in str(reply):
                raise reply


def _request(entry_id: Any, fields: dict[Any, Any]) -> ReplayRequest | None:
    data = fields.get(DATA_FIELD.encode(), fields.get(DATA_FIELD))
    try:
        if data is None:
            raise msgspec.DecodeError(f"no {DATA_FIELD} field")
        return replay_request_decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError, TypeError) as error:
        log.warning("passing over an invalid replay request %r: %s", entry_id, error)
        return None


def _entry_ms(entry_id: bytes | str) -> int:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.partition("-")[0])
