"""Keeping the results, events and dead-letter streams within their windows (the commands
stream is kept short by the reply script, see ``replies``).

Every second the keys service trims each stream in steps; a step is one short Redis call that
removes at most ``STEP_ENTRIES`` entries (or reads ``EVENTS_STEP`` events), so neither Redis
nor the event loop is held for long, and a backlog (a limit lowered at a restart) drains over
several steps. Trimming is exact (``=``, never ``~``): a stream holds at most its limit, give
or take what was added since the last pass.

- results: the ids are Redis times, so entries older than the retention are those with ids
  below ``<now - retention in ms>-0``; at most ``results_max_entries``.
- events: the ids are positions, not times: the first position to keep is the first event,
  from the oldest, whose own ``occurred_at`` is within the retention; at most
  ``events_max_entries``; the newest event always stays (the relay resumes after it). The
  event store keeps the whole history.
- dead letters: at most ``dead_letter_max_entries``, otherwise kept until an operator acts
  (``dead_letters``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from redis.asyncio import Redis

from contracts.streams import DATA_FIELD, entry_id_to_position
from services.common.resilience import Outage, is_transient
from services.keys.settings import KeysSettings

log = logging.getLogger(__name__)
TRIM_SECONDS = 1.0
STEP_ENTRIES = 1000  # most entries one Redis call removes
EVENTS_STEP = 200  # most events read (to look at their occurred_at) per step
_DATA_KEY = DATA_FIELD.encode()

# KEYS: stream. ARGV: most entries to keep, most entries to remove now. Returns how many went.
TRIM_TO_COUNT = """
local length = redis.call('XLEN', KEYS[1])
local excess = length - tonumber(ARGV[1])
if excess <= 0 then return 0 end
return redis.call('XTRIM', KEYS[1], 'MAXLEN', '=', length - math.min(excess, tonumber(ARGV[2])))
"""

# KEYS: stream. ARGV: the oldest id to keep, most entries to remove now. The entries below it
# are the stream's first ones, so trimming to the length without them removes exactly them.
TRIM_BEFORE_ID = """
local older = redis.call('XRANGE', KEYS[1], '-', '(' .. ARGV[1], 'COUNT', ARGV[2])
if #older == 0 then return 0 end
local length = redis.call('XLEN', KEYS[1])
return redis.call('XTRIM', KEYS[1], 'MAXLEN', '=', length - #older)
"""


class _Stamp(msgspec.Struct):
    occurred_at: datetime


_stamp = msgspec.json.Decoder(_Stamp)


@dataclass(frozen=True)
class Trimmed:
    results: int = 0
    events: int = 0
    dead_letters: int = 0


class StreamTrimmer:
    def __init__(
        self, settings: KeysSettings, redis: Redis, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.clock = clock
        self._to_count = redis.register_script(TRIM_TO_COUNT)
        self._before_id = redis.register_script(TRIM_BEFORE_ID)

    async def trim_once(self) -> Trimmed:
        """One pass over every stream; returns how many entries each lost."""
        s = self.settings
        results = await self._steps(self._to_count, s.results_stream, s.results_max_entries)
        cutoff_ms = int((self.clock() - s.results_retention_seconds) * 1000)
        if cutoff_ms > 0:
            results += await self._steps(self._before_id, s.results_stream, f"{cutoff_ms}-0")
        events = await self._steps(self._to_count, s.events_stream, s.events_max_entries)
        events += await self._trim_events_by_age()
        dead = await self._steps(self._to_count, s.dead_letter_stream, s.dead_letter_max_entries)
        return Trimmed(results, events, dead)

    async def run(self, outage: Outage) -> None:
        """Trim every ``TRIM_SECONDS`` until cancelled; Redis outages are waited out."""
        failing = False
        while True:
            try:
                await self.trim_once()
                outage.succeeded()
                failing = False
            except Exception as error:
                if is_transient(error):
                    outage.failed(error)
                elif not failing:  # the traceback once, not once a second
                    failing = True
                    log.exception("trimming the streams failed; trying again each second")
            await asyncio.sleep(TRIM_SECONDS)

    async def _steps(self, script: Any, stream: str, bound: int | str) -> int:
        removed = 0
        while True:
            step = int(await script(keys=[stream], args=[bound, STEP_ENTRIES]))
            removed += step
            if step < STEP_ENTRIES:
                return removed

    async def _trim_events_by_age(self) -> int:
        """Remove the events, from the oldest, whose ``occurred_at`` is older than the
        retention; stop at the first one within it. The newest event stays."""
        stream = self.settings.events_stream
        cutoff = datetime.fromtimestamp(self.clock(), UTC) - timedelta(
            seconds=self.settings.events_retention_seconds
        )
        removed, count = 0, 1  # the oldest alone first: usually it is within the window
        while True:
            entries: Any = await self.redis.xrange(stream, count=count + 1)
            older = _leading_older(entries[:-1], cutoff)  # never the newest
            if older is None:
                return removed
            removed += int(
                await self.redis.xtrim(stream, minid=f"{older + 1}-0", approximate=False)
            )
            if older != entry_id_to_position(entries[-2][0]):
                return removed  # the first one to keep was in this batch
            count = EVENTS_STEP


def _leading_older(entries: list[Any], cutoff: datetime) -> int | None:
    """The position of the last of the leading entries that occurred before ``cutoff``
    (None if the first did not); an entry that cannot be read stops the scan, kept."""
    last = None
    for entry_id, fields in entries:
        try:
            occurred_at = _stamp.decode(fields[_DATA_KEY]).occurred_at
        except (KeyError, msgspec.DecodeError):
            return last
        if occurred_at.tzinfo is None:  # written without a zone: UTC, as the relay writes
            occurred_at = occurred_at.replace(tzinfo=UTC)
        if occurred_at >= cutoff:
            return last
        last = entry_id_to_position(entry_id)
    return last
