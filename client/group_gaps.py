"""Gap detection for a consumer group, on every delivery.

A group hands the stream's entries out in stream order, whichever consumer asks, so the place to
check that no event is missing is the delivery, not the handling (the consumers of a group handle
their shares concurrently). One script (atomic, one hash slot: the stream's) reads the new
entries for the consumer (``XREADGROUP ... >``) and checks each event's ``previous_position``
against the last position the group was given, kept in Redis next to the group
(``{<stream>}.group-positions``, a field per group). A gap is recorded in
``{<stream>}.group-gaps`` and raised as ``EventsMissing`` to every consumer of the group until
``resume_group`` clears it: the events after the gap stay pending, never skipped silently.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from client.connection import text
from client.errors import EventsMissing
from contracts.redis_layout import same_slot_key
from contracts.streams import DATA_FIELD

Entries = list[tuple[bytes, dict[bytes, bytes]]]

# KEYS: stream, positions hash, gaps hash; ARGV: group, consumer, count, data field.
# Replies {"gap", "<after> <up to>"}, {"idle", <stream's top entry id>} or
# {"entries", entries, false | "<after> <up to>"}.
DELIVER = """
local function number(value)
  if type(value) == 'number' then return value end
  return nil
end
local recorded = redis.call('HGET', KEYS[3], ARGV[1])
if recorded then return {'gap', recorded} end
local reply = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3],
                         'STREAMS', KEYS[1], '>')
if not reply then
  local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  if top[1] then return {'idle', top[1][1]} end
  return {'idle', '0-0'}
end
local last = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '')
local kept = {}
local gap = false
for _, entry in ipairs(reply[1][2]) do
  local fields = entry[2]
  local event = {}
  for i = 1, #fields, 2 do
    if fields[i] == ARGV[4] then
      local ok, decoded = pcall(cjson.decode, fields[i + 1])
      if ok and type(decoded) == 'table' then event = decoded end
    end
  end
  local previous = number(event['previous_position'])
  if last and previous and previous > last then
    gap = string.format('%d %d', last, previous)
    redis.call('HSET', KEYS[3], ARGV[1], gap)
    break
  end
  table.insert(kept, entry)
  last = number(event['position']) or last
end
if last then redis.call('HSET', KEYS[2], ARGV[1], string.format('%d', last)) end
return {'entries', kept, gap}
"""

# KEYS: stream, positions hash, gaps hash; ARGV: group, start id, start position.
# 1 when the group was created (its first event must follow the start position), 0 when it
# existed: one step, so no consumer reads the new group before its start is recorded.
CREATE = """
local created = redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], ARGV[2], 'MKSTREAM')
if type(created) == 'table' and created.err then
  if string.find(created.err, 'BUSYGROUP') then return 0 end
  return redis.error_reply(created.err)
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
"""


class GroupGaps:
    def __init__(self, redis: Redis, stream: str) -> None:
        self.redis = redis
        self.stream = stream
        self._deliver = redis.register_script(DELIVER)
        self._create = redis.register_script(CREATE)
        self.positions_key = same_slot_key(stream, ".group-positions")
        self.gaps_key = same_slot_key(stream, ".group-gaps")

    async def create(self, group: str, start_id: str, start_after: int) -> bool:
        """Create the group at ``start_id`` unless it exists (then False); a new group's
        first event must follow ``start_after``."""
        keys = [self.stream, self.positions_key, self.gaps_key]
        created: Any = await self._create(keys=keys, args=[group, start_id, start_after])
        return bool(created)

    async def recorded_gap(self, group: str) -> EventsMissing | None:
        recorded: Any = await self.redis.hget(self.gaps_key, group)
        return None if recorded is None else missing(recorded, group)

    async def record(self, group: str, after: int, up_to: int) -> EventsMissing:
        """Record a gap found outside a delivery (pending entries trimmed before they were
        handled) unless one is recorded already; the recorded one."""
        await self.redis.hsetnx(self.gaps_key, group, f"{after} {up_to}")
        recorded = await self.recorded_gap(group)
        return recorded or EventsMissing(after, up_to, group)

    async def resume(self, group: str) -> None:
        await self.redis.hdel(self.gaps_key, group)

    async def deliver(
        self, group: str, consumer: str, count: int
    ) -> tuple[Entries, EventsMissing | None, str | None]:
        """New entries for ``consumer`` up to a gap, the gap (if any), and when there were
        none, the stream's top entry id (wait for entries after it)."""
        keys = [self.stream, self.positions_key, self.gaps_key]
        reply: Any = await self._deliver(keys=keys, args=[group, consumer, count, DATA_FIELD])
        kind = text(reply[0])
        if kind == "gap":
            return [], missing(reply[1], group), None
        if kind == "idle":
            return [], None, text(reply[1])
        entries = [(entry_id, _fields(flat)) for entry_id, flat in reply[1]]
        gap = missing(reply[2], group) if len(reply) > 2 and reply[2] else None
        return entries, gap, None


def _fields(flat: list[bytes]) -> dict[bytes, bytes]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def missing(recorded: bytes | str, group: str) -> EventsMissing:
    after, up_to = text(recorded).split()
    return EventsMissing(int(after), int(up_to), group)
