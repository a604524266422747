"""How far a follower is behind what has been stored, in seconds.

The keys service keeps a watermark in Redis after each commit: the position of the last stored
event that will be published, and when it was stored. A follower (the relay's output, the
projection) observes watermarks and compares them with its own position: its lag is the age of
the oldest watermark it has not reached yet (0 when it has reached every one it saw).
"""

from __future__ import annotations

from collections import deque
from typing import Any

WATERMARK_POSITION = "position"
WATERMARK_STORED_AT = "stored_at"

# Raise the watermark, never lower it (two replicas may commit in either order).
RAISE_WATERMARK = """
local current = tonumber(redis.call('HGET', KEYS[1], 'position') or '0')
if tonumber(ARGV[1]) > current then
  redis.call('HSET', KEYS[1], 'position', ARGV[1], 'stored_at', ARGV[2])
  return 1
end
return 0
"""


def watermark_key(events_stream: str) -> str:
    return f"{events_stream}.stored"


def parse_watermark(fields: Any) -> tuple[int, float] | None:
    if not fields:
        return None
    position = fields.get(WATERMARK_POSITION.encode())
    stored_at = fields.get(WATERMARK_STORED_AT.encode())
    if position is None or stored_at is None:
        return None
    return int(position), float(stored_at)


class LagTracker:
    """Watermarks seen and not yet reached, oldest first (bounded: older ones merge)."""

    def __init__(self, limit: int = 1024) -> None:
        self._unreached: deque[tuple[int, float]] = deque()
        self._limit = limit
        self.stored_position = 0

    def observe(self, position: int, stored_at: float) -> None:
        if position <= self.stored_position:
            return
        self.stored_position = position
        if len(self._unreached) >= self._limit:
            # keep the oldest time: the lag is never understated
            oldest = self._unreached.popleft()
            self._unreached[0] = (self._unreached[0][0], oldest[1])
        self._unreached.append((position, stored_at))

    def lag_seconds(self, reached: int, now: float) -> float:
        unreached = self._unreached
        while unreached and unreached[0][0] <= reached:
            unreached.popleft()
        if not unreached:
            return 0.0
        return max(0.0, now - unreached[0][1])
