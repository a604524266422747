"""What goes back to Redis after a batch is stored, on a Redis Cluster.

On a single server one script does it all atomically (``replies.REPLY_SCRIPT``). On a cluster
the commands, results and dead-letter streams, the failures hash and the watermark live in
different hash slots, and a script or transaction may touch only one slot. So the same work is
done as a sequence of single-slot steps, ordered so that a crash between any two of them
loses nothing and publishes nothing twice:

1. which of the batch's entries are still pending in the group (an entry already
   acknowledged, by this replica earlier or by another that claimed it, gets nothing);
2. their dead letters, then 3. their results, each added at most once: a marker key in the
   stream's own slot, set with ``NX`` in the same script as the XADD, says that the entry was
   answered (a retried step, or a redelivery after a crash before step 4, adds nothing);
4. XACK and XDEL of every entry of the batch (acknowledged now or before);
5. the failure counts dropped, the stored-position watermark raised, the markers removed.

Results and dead letters are written before the acknowledgement: a crash in between leaves
the entries pending, they are delivered again, the event store's receipts answer them with
their original outcome (nothing is applied twice), and the markers keep their results from
being published a second time. A marker left by a crash expires with the results window.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio import Redis

from contracts.codec import json_encoder
from contracts.streams import DATA_FIELD
from services.common.lag import RAISE_WATERMARK, watermark_key
from services.common.redis_client import same_slot_key
from services.keys.settings import KeysSettings

T = TypeVar("T")
Retry = Callable[[Callable[[], Awaitable[T]]], Awaitable[T]]

# KEYS: commands. ARGV: group, entry ids. Returns 1 per entry still pending in the group, else 0.
STILL_PENDING = """
local out = {}
for k = 2, #ARGV do
  local found = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[k], ARGV[k], 1)
  out[k - 1] = (#found > 0) and 1 or 0
end
return out
"""

# KEYS: a stream, then one marker key per entry (in the stream's slot). ARGV: the markers'
# lifetime in ms, then one payload per entry. Returns how many were added now.
ADD_ONCE = """
local added = 0
for k = 2, #KEYS do
  if redis.call('SET', KEYS[k], '1', 'NX', 'PX', ARGV[1]) then
    redis.call('XADD', KEYS[1], '*', '{data}', ARGV[k])
    added = added + 1
  end
end
return added
""".replace("{data}", DATA_FIELD)

# KEYS: commands. ARGV: group, '1' to remove the entries ('' to keep them), entry ids.
ACKNOWLEDGE = """
local acknowledged = 0
for k = 3, #ARGV do
  acknowledged = acknowledged + redis.call('XACK', KEYS[1], ARGV[1], ARGV[k])
  if ARGV[2] ~= '' then redis.call('XDEL', KEYS[1], ARGV[k]) end
end
return acknowledged
"""


class ClusterReplies:
    """The steps above; ``retry`` repeats one step until Redis answers (each is idempotent)."""

    def __init__(self, settings: KeysSettings, redis: Redis, retry: Retry[Any]) -> None:
        self.settings = settings
        self.redis = redis
        self.retry = retry
        self._pending = redis.register_script(STILL_PENDING)
        self._add_once = redis.register_script(ADD_ONCE)
        self._acknowledge = redis.register_script(ACKNOWLEDGE)
        self._raise_watermark = redis.register_script(RAISE_WATERMARK)

    async def send(self, answers: list[Any], stored_position: int | None, failures: str) -> int:
        """Returns how many entries were answered now (not answered before)."""
        s = self.settings
        ids = [answer.entry_id for answer in answers]
        flags = await self.retry(
            lambda: self._pending(keys=[s.commands_stream], args=[s.group, *ids])
        )
        fresh = [a for a, flag in zip(answers, flags, strict=True) if int(flag)]
        letters = [(a.entry_id, a.dead_letter) for a in fresh if a.dead_letter is not None]
        results = [(a.entry_id, a.result) for a in fresh if a.result is not None]
        markers = [
            await self._add(s.dead_letter_stream, letters),
            await self._add(s.results_stream, results),
        ]
        remove = "1" if s.trim_streams else ""
        await self.retry(
            lambda: self._acknowledge(keys=[s.commands_stream], args=[s.group, remove, *ids])
        )
        await self._tidy(ids, stored_position, failures, markers)
        return len(fresh)

    async def _add(self, stream: str, items: list[tuple[str, Any]]) -> list[str]:
        """Each item's payload added to ``stream`` unless its marker says it was; returns the
        markers (to remove once the entries are acknowledged)."""
        if not items:
            return []
        commands = self.settings.commands_stream
        markers = [same_slot_key(stream, f".answered.{commands}.{i}") for i, _ in items]
        lifetime_ms = max(1000, int(self.settings.results_retention_seconds * 1000))
        payloads = [json_encoder.encode(item) for _, item in items]
        await self.retry(
            lambda: self._add_once(keys=[stream, *markers], args=[lifetime_ms, *payloads])
        )
        return markers

    async def _tidy(
        self,
        ids: list[str],
        stored_position: int | None,
        failures: str,
        markers: list[list[str]],
    ) -> None:
        await self.retry(lambda: self.redis.hdel(failures, *ids))
        if stored_position is not None:
            key = watermark_key(self.settings.events_stream)
            stored_at = f"{time.time():.6f}"
            await self.retry(
                lambda: self._raise_watermark(keys=[key], args=[stored_position, stored_at])
            )
        for slot_markers in markers:  # one call per stream's slot
            if slot_markers:
                await self.retry(lambda keys=slot_markers: self.redis.delete(*keys))  # type: ignore[misc]
