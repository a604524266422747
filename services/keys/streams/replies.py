"""What goes back to Redis after a batch is stored: for each entry its result and/or dead
letter and its XACK, the failure count's removal, and the stored-position watermark, in one
atomic script (one command, one reply for the whole batch).

An entry's result is added only if its XACK acknowledged it (it was still pending), so sending
the same answers again (a reply lost with a dropped connection, an entry handled twice after a
lost delivery, a second replica that claimed it meanwhile) publishes nothing twice; the script
is simply retried until Redis answers.

The same script removes each acknowledged entry from the commands stream (XDEL): once an entry
is stored, answered and acknowledged nothing needs it any more (its receipt answers a
redelivery, its dead letter keeps its payload), and an entry still pending or never delivered
is never in a reply, so the commands stream holds only what is still to be done. Doing it in
the script that acknowledges makes it atomic with the XACK and costs no extra round trip.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from contracts.codec import json_encoder
from contracts.results import CommandResult, DeadLetter
from contracts.streams import DATA_FIELD
from services.common.lag import watermark_key
from services.common.redis_client import is_cluster
from services.common.resilience import Outage, keep_trying
from services.keys.settings import KeysSettings
from services.keys.streams.cluster_replies import ClusterReplies
from services.keys.streams.intake import payload_text

log = logging.getLogger(__name__)


# KEYS: results, dead letters, commands, failures hash, watermark hash.
# ARGV: group, number of entries, stored position ('' for none), stored at, '1' to remove
# acknowledged entries ('' to keep them), then per entry: its id, its result's JSON ('' for
# none), its dead letter's JSON ('' for none).
REPLY_SCRIPT = """
local entries = tonumber(ARGV[2])
local answered = 0
local ids = {}
for k = 0, entries - 1 do
  local id, result, dead = ARGV[6 + 3 * k], ARGV[7 + 3 * k], ARGV[8 + 3 * k]
  if redis.call('XACK', KEYS[3], ARGV[1], id) == 1 then
    if result ~= '' then redis.call('XADD', KEYS[1], '*', '{data}', result) end
    if dead ~= '' then redis.call('XADD', KEYS[2], '*', '{data}', dead) end
    answered = answered + 1
  end
  ids[#ids + 1] = id
  -- acknowledged now or before: stored and answered either way; removed in runs of 500
  -- (one call each instead of one per entry)
  if #ids == 500 or k == entries - 1 then
    if ARGV[5] ~= '' then redis.call('XDEL', KEYS[3], unpack(ids)) end
    redis.call('HDEL', KEYS[4], unpack(ids))
    ids = {}
  end
end
if ARGV[3] ~= '' then
  local current = tonumber(redis.call('HGET', KEYS[5], 'position') or '0')
  if tonumber(ARGV[3]) > current then
    redis.call('HSET', KEYS[5], 'position', ARGV[3], 'stored_at', ARGV[4])
  end
end
return answered
""".replace("{data}", DATA_FIELD)


@dataclass(frozen=True)
class Answer:
    """What one handled entry gets: a result, a dead letter, or both (a command that fails
    the schema), and in any case its XACK."""

    entry_id: str
    result: CommandResult | None = None
    dead_letter: DeadLetter | None = None


def failures_key(settings: KeysSettings) -> str:
    """A hash of entry id -> handling failures (outages do not count), per group."""
    return f"{settings.commands_stream}.failures.{settings.group}"


class Replies:
    def __init__(
        self, settings: KeysSettings, redis: Redis, outage: Outage, stopping: Callable[[], bool]
    ) -> None:
        self.settings = settings
        self.redis = redis  # a client without automatic retries (see the module's docstring)
        self.outage = outage
        self.stopping = stopping
        self._reply = redis.register_script(REPLY_SCRIPT)
        # on a Redis Cluster the streams live in different slots: the same work, in order
        self._cluster = (
            ClusterReplies(settings, redis, lambda call: keep_trying(call, outage, stopping))
            if is_cluster(redis)
            else None
        )

    async def send(self, answers: list[Answer], stored_position: int | None = None) -> int:
        """Returns how many entries were answered now (not answered before)."""
        settings = self.settings
        if self._cluster is not None:
            return await self._cluster.send(answers, stored_position, failures_key(settings))
        keys = [
            settings.results_stream,
            settings.dead_letter_stream,
            settings.commands_stream,
            failures_key(settings),
            watermark_key(settings.events_stream),
        ]
        args: list[Any] = [
            settings.group,
            len(answers),
            "" if stored_position is None else stored_position,
            f"{time.time():.6f}",
            "1" if settings.trim_streams else "",
        ]
        encode = json_encoder.encode
        for answer in answers:
            args.append(answer.entry_id)
            args.append(b"" if answer.result is None else encode(answer.result))
            args.append(b"" if answer.dead_letter is None else encode(answer.dead_letter))
        answered = await keep_trying(
            lambda: self._reply(keys=keys, args=args), self.outage, self.stopping
        )
        return int(answered)


def dead_letter(
    settings: KeysSettings, entry_id: str, data: dict[bytes, bytes], failures: int
) -> DeadLetter:
    payload, truncated = payload_text(data.get(DATA_FIELD.encode(), b""))
    return DeadLetter(
        entry_id=entry_id,
        stream=settings.commands_stream,
        reason=f"handling failed {failures} times",
        payload=payload,
        deliveries=failures,
        truncated=truncated,
    )


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
