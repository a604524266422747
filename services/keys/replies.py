"""What goes back to Redis after a batch is stored: results, dead letters, the XACK, the
failure counts' removal and the stored-position watermark, in one MULTI/EXEC.

The script is retried until Redis answers. When a reply is lost (the connection dropped after
the script was sent), whether it went through is read off the entries themselves: the XACK is
part of the script, so entries no longer pending mean it was applied. So a result is
never sent twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis

from contracts.results import CommandResult, DeadLetter, result_encoder
from contracts.streams import DATA_FIELD
from services.common.lag import watermark_key
from services.common.resilience import Outage, keep_trying
from services.keys.settings import KeysSettings

log = logging.getLogger(__name__)


# One script, so atomic like MULTI/EXEC, but one command and one reply for the whole batch.
# KEYS: results, dead letters, commands, failures hash, watermark hash.
# ARGV: group, #results, #dead letters, #acked, stored position ('' for none), stored at,
# then the results' JSON, the dead letters' JSON and the acknowledged entry ids.
REPLY_SCRIPT = """
local results, dead, acked = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local i = 7
for _ = 1, results do
  redis.call('XADD', KEYS[1], '*', '{data}', ARGV[i]); i = i + 1
end
for _ = 1, dead do
  redis.call('XADD', KEYS[2], '*', '{data}', ARGV[i]); i = i + 1
end
if acked > 0 then
  redis.call('XACK', KEYS[3], ARGV[1], unpack(ARGV, i, i + acked - 1))
  redis.call('HDEL', KEYS[4], unpack(ARGV, i, i + acked - 1))
end
if ARGV[5] ~= '' then
  local current = tonumber(redis.call('HGET', KEYS[5], 'position') or '0')
  if tonumber(ARGV[5]) > current then
    redis.call('HSET', KEYS[5], 'position', ARGV[5], 'stored_at', ARGV[6])
  end
end
return results
""".replace("{data}", DATA_FIELD)


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

    async def send(
        self,
        results: list[CommandResult],
        dead: list[DeadLetter],
        acked: list[str],
        stored_position: int | None = None,
    ) -> None:
        attempted = False

        async def once() -> None:
            nonlocal attempted
            if attempted and acked and not await self.still_pending(acked):
                return  # the earlier call went through; its reply was lost
            attempted = True
            await self._exec(results, dead, acked, stored_position)

        await keep_trying(once, self.outage, self.stopping)

    async def _exec(
        self,
        results: list[CommandResult],
        dead: list[DeadLetter],
        acked: list[str],
        stored_position: int | None,
    ) -> None:
        settings = self.settings
        keys = [
            settings.results_stream,
            settings.dead_letter_stream,
            settings.commands_stream,
            failures_key(settings),
            watermark_key(settings.events_stream),
        ]
        args: list[Any] = [
            settings.group, len(results), len(dead), len(acked),
            "" if stored_position is None else stored_position, f"{time.time():.6f}",
        ]
        args.extend(result_encoder.encode(result) for result in results)
        args.extend(result_encoder.encode(letter) for letter in dead)
        args.extend(acked)
        await self._reply(keys=keys, args=args)

    async def still_pending(self, entry_ids: list[str]) -> bool:
        first, last = min(entry_ids, key=_id_key), max(entry_ids, key=_id_key)
        pending = await self.redis.xpending_range(
            self.settings.commands_stream,
            self.settings.group,
            min=first,
            max=last,
            count=len(entry_ids) + 100,
            consumername=self.settings.consumer,
        )
        wanted = set(entry_ids)
        return any(text(p["message_id"]) in wanted for p in pending)


def dead_letter(
    settings: KeysSettings, entry_id: str, data: dict[bytes, bytes], failures: int
) -> DeadLetter:
    return DeadLetter(
        entry_id=entry_id,
        stream=settings.commands_stream,
        reason=f"handling failed {failures} times",
        payload=data.get(DATA_FIELD.encode(), b"").decode("utf-8", errors="replace"),
        deliveries=failures,
    )


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
