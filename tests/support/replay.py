"""Catching up in tests: histories on a stream that is then trimmed, a stand-in that answers
replay requests from hand-built events by the wire contract, and a real event store filled
and published as the relay publishes it (``previous_position`` filled in)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import msgspec
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from contracts import events as ev
from contracts.codec import json_encoder
from contracts.commands import command_decoder
from contracts.replay import ReplayEnd, ReplayRequest, replay_request_decoder
from contracts.streams import (
    DATA_FIELD,
    position_to_entry_id,
    replay_end_entry_id,
    replay_stream,
)
from services.keys.processor import CommandProcessor, Entry
from services.keys.store import ApiKeysApplication
from services.keys.streams.feed import EventFeed
from tests.support.projection_builders import EventLog, stream_fields
from tests.support.scenario import create_key, key_command, organization_setup


def history(keys: int = 12) -> EventLog:
    """One organization's chained events: locations, a role, keys, renames."""
    log = EventLog(chained=True, step=2).setup()
    log.location("hq")
    log.location("plant", "hq")
    log.role("viewer", ("view", "location_and_below"))
    for n in range(keys):
        log.create_key(f"k{n}", ["plant"], ["viewer"])
    for n in range(0, keys, 3):
        log.key(ev.ApiKeyRenamed, f"k{n}", {"name": f"renamed {n}"}, name=f"renamed {n}")
    return log


def publish(redis: SyncRedis, stream: str, events: list[ev.AnyEvent]) -> None:
    pipe = redis.pipeline(transaction=True)
    for event in events:
        entry_id, fields = stream_fields(event)
        pipe.xadd(stream, fields, id=entry_id)  # type: ignore[arg-type]
    pipe.execute()


def trim_to(redis: SyncRedis, stream: str, kept: int) -> None:
    """Keep exactly the last ``kept`` entries (what retention leaves of a long history)."""
    redis.xtrim(stream, maxlen=kept, approximate=False)


class LogResponder:
    """Answers replay requests from a list of events, as the keys service does: each event at
    entry id ``<position>-1``, then the end marker; clear ``answering`` to keep requests waiting."""

    def __init__(self, redis: Redis, requests_stream: str, events: list[ev.AnyEvent]) -> None:
        self.redis = redis
        self.requests_stream = requests_stream
        self.events = events
        self.answered: list[ReplayRequest] = []
        self.answering = asyncio.Event()
        self.answering.set()

    async def run(self) -> None:
        cursor = "0-0"
        while True:
            reply: Any = await self.redis.xread({self.requests_stream: cursor}, block=100)
            for entry_id, fields in reply[0][1] if reply else []:
                cursor = entry_id
                await self.answering.wait()
                await self.answer(replay_request_decoder.decode(fields[DATA_FIELD.encode()]))

    async def answer(self, request: ReplayRequest) -> None:
        target = replay_stream(request.request_id)
        after, up_to = request.after_position, request.up_to_position
        for event in self.events:
            if after < event.position <= up_to:
                entry_id, fields = stream_fields(event)
                await self.redis.xadd(target, fields, id=entry_id)  # type: ignore[arg-type]
        end = ReplayEnd(request_id=request.request_id, last_position=up_to, complete=True)
        await self.redis.xadd(
            target, {DATA_FIELD: json_encoder.encode(end)}, id=replay_end_entry_id(up_to)
        )
        self.answered.append(request)


def fill_store(url: str, keys: int = 6) -> None:
    """Commands for two organizations stored through the processor (events and receipts)."""
    app = ApiKeysApplication(url)
    commands = organization_setup("acme") + organization_setup("globex")
    commands += [create_key("acme", f"a{n}") for n in range(keys)]
    commands += [create_key("globex", f"g{n}") for n in range(keys)]
    commands += [key_command("RenameApiKey", "acme", "a0", name="Renamed")]
    entries = [
        Entry(f"{i}-0", command_decoder.decode(json.dumps(c))) for i, c in enumerate(commands)
    ]
    results = CommandProcessor(app).process(entries)
    assert all(r.status == "accepted" for r in results)
    app.close()


def published_history(url: str) -> list[tuple[int, bytes]]:
    """The store's feed as the relay publishes it, each event naming the one before it."""
    app = ApiKeysApplication(url)
    try:
        feed, items = EventFeed(app), []
        while True:
            before = feed.read_up_to
            items.extend(feed.read_batch())
            if feed.read_up_to == before:
                return items
    finally:
        app.close()


def publish_items(redis: SyncRedis, stream: str, items: list[tuple[int, bytes]]) -> None:
    pipe = redis.pipeline(transaction=True)
    for position, data in items:
        pipe.xadd(stream, {DATA_FIELD: data}, id=position_to_entry_id(position))
    pipe.execute()


def decoded_items(items: list[tuple[int, bytes]]) -> list[Any]:
    return [msgspec.json.decode(data) for _, data in items]
