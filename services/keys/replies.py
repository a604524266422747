"""What goes back to Redis after a batch is stored: results, dead letters, the XACK, the
failure counts' removal and the stored-position watermark, in one MULTI/EXEC.

The EXEC is retried until Redis answers. When a reply is lost (the connection dropped after
the EXEC was sent), whether it went through is read off the entries themselves: the XACK is
part of the transaction, so entries no longer pending mean it was applied. So a result is
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
from services.common.lag import RAISE_WATERMARK, watermark_key
from services.common.resilience import Outage, keep_trying
from services.keys.settings import KeysSettings

log = logging.getLogger(__name__)


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
                return  # the earlier EXEC went through; its reply was lost
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
        async with self.redis.pipeline(transaction=True) as pipe:
            for result in results:
                pipe.xadd(settings.results_stream, _fields(result))
            for letter in dead:
                pipe.xadd(settings.dead_letter_stream, _fields(letter))
            if acked:
                pipe.xack(settings.commands_stream, settings.group, *acked)
                pipe.hdel(failures_key(settings), *acked)
            if stored_position is not None:
                key = watermark_key(settings.events_stream)
                pipe.eval(RAISE_WATERMARK, 1, key, stored_position, f"{time.time():.6f}")
            await pipe.execute()

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


def _fields(message: CommandResult | DeadLetter) -> dict[Any, Any]:
    return {DATA_FIELD: result_encoder.encode(message)}


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
