"""A lease: a Redis key naming its holder, set only when free and kept alive by renewing it
before it expires (``PX``). Each script touches one key, so it works on one server and on a
cluster alike.

A holder is ``<consumer name>|<instance>``: a replica restarted under the same consumer name
(its previous run killed) takes its own leases over at once instead of waiting for them to
expire; consumer names are unique per replica (README), so no other replica does that.

Renewing takes the lease again if it expired meanwhile and nobody else took it (Redis was
unreachable for longer than the lease), so an outage does not stop the work for nothing.

A lease says who should do the work; it does not stop a holder that has lost it without
knowing (paused, cut off), nor one whose lease expired and was taken and given back in
between: the event store's epochs do that (``store.fencing``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

# KEYS: lease. ARGV: holder, ttl ms, holder's name prefix ("<consumer>|").
ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] or string.sub(holder, 1, #ARGV[3]) == ARGV[3] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
# KEYS: lease. ARGV: holder.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def lease_key(name: str) -> str:
    """The lease of a partition (its commands stream) or of a duty (``<events>.relay``)."""
    return f"{name}.lease"


def holder_name(consumer: str) -> str:
    """This process's holder string: its consumer name and a token of this run."""
    return f"{consumer}|{uuid.uuid4().hex[:12]}"


@dataclass
class Leases:
    """Leases held under one holder string, each ``ttl_ms`` long."""

    redis: Any
    holder: str
    ttl_ms: int

    def __post_init__(self) -> None:
        self._acquire = self.redis.register_script(ACQUIRE)
        self._release = self.redis.register_script(RELEASE)
        self._prefix = self.holder.split("|", 1)[0] + "|"

    async def acquire(self, name: str) -> bool:
        """Take the lease if it is free (or held by a previous run of this replica)."""
        args = [self.holder, self.ttl_ms, self._prefix]
        return bool(await self._acquire(keys=[lease_key(name)], args=args))

    async def renew(self, name: str) -> bool:
        """Extend the lease (or take it again if it is free); False if another replica
        holds it."""
        return await self.acquire(name)

    async def release(self, name: str) -> None:
        await self._release(keys=[lease_key(name)], args=[self.holder])

    async def holder_of(self, name: str) -> str | None:
        value = await self.redis.get(lease_key(name))
        return value.decode() if isinstance(value, bytes) else value
