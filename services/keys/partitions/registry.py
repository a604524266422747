"""The live replicas of a commands stream: a sorted set of consumer names scored by the time
(Redis's clock, in ms) until which each is alive. Each replica renews its own entry with its
leases; entries not renewed in time are dropped by whoever looks next. A replica takes at
most its fair share, ceil(partitions / live replicas), so partitions spread over replicas."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# KEYS: registry. ARGV: member ('' to only count), ttl ms, '1' to remove the member instead.
# TIME is not deterministic: effects replication (always on from Redis 7, asked for on 6.2).
HEARTBEAT = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if ARGV[3] == '1' then
  redis.call('ZREM', KEYS[1], ARGV[1])
elseif ARGV[1] ~= '' then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], 10 * tonumber(ARGV[2]))
end
return redis.call('ZCARD', KEYS[1])
"""


def registry_key(commands_stream: str) -> str:
    return f"{commands_stream}.replicas"


def fair_share(partitions: int, live_replicas: int) -> int:
    """The most partitions one replica takes: ceil(partitions / live replicas)."""
    return -(-partitions // max(1, live_replicas))


@dataclass
class Registry:
    redis: Any
    key: str
    member: str  # the replica's consumer name
    ttl_ms: int

    def __post_init__(self) -> None:
        self._script = self.redis.register_script(HEARTBEAT)

    async def heartbeat(self) -> int:
        """Say this replica is alive; returns how many replicas are."""
        args = [self.member, self.ttl_ms, ""]
        return int(await self._script(keys=[self.key], args=args))

    async def leave(self) -> None:
        await self._script(keys=[self.key], args=[self.member, self.ttl_ms, "1"])
