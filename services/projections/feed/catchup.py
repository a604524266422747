"""Catching up from beyond the events stream's window: what a gap is, the wire replay (ask the
keys service for the missing range, read it from a private stream), and a file of events in
the stream's format (``apikeys export``) as entries.

Positions skip numbers, so a gap cannot be read off entry ids: every event says the position
published just before it (``previous_position``), and a reader at p whose next event names
another has missed what lies between.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass

import msgspec
from redis.asyncio import Redis

from contracts.codec import json_encoder
from contracts.replay import ReplayEnd, ReplayRequest, replay_end_decoder
from contracts.streams import (
    DATA_FIELD,
    REPLAY_END_SEQUENCE,
    position_to_entry_id,
    replay_stream,
)
from services.projections.feed.entries import (
    Entry,
    RawEntry,
    data_field,
    entry_position,
    stream_entries,
)

log = logging.getLogger(__name__)
# requests are small and useless once answered: the requests stream keeps only the latest
REQUESTS_MAX_ENTRIES = 1000


@dataclass(frozen=True)
class Gap:
    """Events after ``after_position`` up to and including ``up_to_position`` are missing:
    found at entry ``index`` of a batch, whose event names ``up_to_position`` as previous."""

    after_position: int
    up_to_position: int
    index: int = 0

    def __str__(self) -> str:
        return f"events after position {self.after_position} up to {self.up_to_position}"


def gap_before(previous: int | None, position: int, reader_at: int) -> bool:
    """Whether an event at ``position`` naming ``previous`` leaves a gap after ``reader_at``.

    None: published before the field existed, nobody can tell. An event at or below the
    reader is a repeat, not a gap. A previous below the reader names nothing the reader lacks.
    """
    return previous is not None and position > reader_at and previous > reader_at


class CatchUpFailed(Exception):
    """The missing events could not be had (no answer in time, or a reply that falls short)."""


class EventsMissing(Exception):
    def __init__(self, gap: Gap) -> None:
        super().__init__(f"{gap} are missing from the events stream")
        self.gap = gap


class Replayer:
    """Asks the keys service to replay a range (``contracts.replay``) and yields the replayed
    entries as they arrive; asks again after a bounded reply that stops short."""

    def __init__(
        self,
        redis: Redis,
        requests_stream: str,
        *,
        timeout_seconds: float = 30.0,
        count: int = 500,
        block_ms: int = 1000,
    ) -> None:
        self.redis = redis
        self.requests_stream = requests_stream
        self.timeout_seconds = timeout_seconds
        self.count = count
        self.block_ms = block_ms

    async def replay(self, after: int, up_to: int) -> AsyncIterator[list[Entry]]:
        """The entries of every published event in (after, up_to], in position order."""
        while after < up_to:
            last = after
            end: ReplayEnd | None = None
            async for entries, marker in self._one_reply(after, up_to):
                end = marker or end
                if entries:
                    last = entry_position(entries[-1][0])
                    yield entries
            assert end is not None
            if end.complete:
                return
            if end.error is not None or last == after:
                raise CatchUpFailed(
                    f"the keys service replayed {after}..{up_to} only up to "
                    f"{end.last_position} ({end.error or 'its store holds no more'})"
                )
            after = last  # a bounded reply: ask for the rest

    async def _one_reply(
        self, after: int, up_to: int
    ) -> AsyncIterator[tuple[list[Entry], ReplayEnd | None]]:
        request = ReplayRequest(
            request_id=uuid.uuid4().hex, after_position=after, up_to_position=up_to
        )
        target = replay_stream(request.request_id)
        await self.redis.xadd(
            self.requests_stream,
            {DATA_FIELD: json_encoder.encode(request)},
            maxlen=REQUESTS_MAX_ENTRIES,
            approximate=True,
        )
        try:
            cursor, deadline = "0-0", time.monotonic() + self.timeout_seconds
            while True:
                reply = await self.redis.xread(
                    {target: cursor}, count=self.count, block=self.block_ms
                )
                entries = stream_entries(reply)
                if not entries:
                    if time.monotonic() > deadline:
                        raise CatchUpFailed(
                            f"no replay of {after}..{up_to} from the keys service within "
                            f"{self.timeout_seconds:.0f} s (on {self.requests_stream})"
                        )
                    continue
                deadline = time.monotonic() + self.timeout_seconds
                cursor = _text(entries[-1][0])
                events, end = _split_end(entries)
                yield events, end
                if end is not None:
                    return
        finally:
            await self.redis.delete(target)


def _split_end(entries: list[Entry]) -> tuple[list[Entry], ReplayEnd | None]:
    """The events of a reply's entries, and its end marker when they include it (last)."""
    entry_id, fields = entries[-1]
    if _text(entry_id).rpartition("-")[2] != str(REPLAY_END_SEQUENCE):
        return entries, None
    try:
        return entries[:-1], replay_end_decoder.decode(data_field(fields))
    except (msgspec.DecodeError, TypeError) as error:
        raise CatchUpFailed(f"an unreadable end of a replay: {error}") from None


def _text(entry_id: bytes | str) -> str:
    return entry_id.decode() if isinstance(entry_id, bytes) else entry_id


class _Positioned(msgspec.Struct):
    position: int


_position_of = msgspec.json.Decoder(_Positioned)


def file_entries(lines: Iterable[str | bytes], chunk: int) -> Iterator[list[RawEntry]]:
    """Lines of event JSON (``apikeys export``'s output) as stream entries, ``chunk`` at a time."""
    batch: list[RawEntry] = []
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text:
            continue
        try:
            position = _position_of.decode(text).position
        except msgspec.DecodeError:
            raise ValueError(f"line {number} is not an event of the events stream") from None
        batch.append((position_to_entry_id(position), [DATA_FIELD, text]))
        if len(batch) >= chunk:
            yield batch
            batch = []
    if batch:
        yield batch
