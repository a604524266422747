"""Notices a partition's reader that stopped reading while this replica holds the partition.

The reader is FastStream's subscriber, whose reads fail and are retried inside FastStream: a
reader whose every read fails (a cluster client that lost its way after a failover) or that
ended (FastStream stops a subscriber whose group is gone) says nothing to the worker. Redis
says it: entries wait in the stream beyond the group's last delivered id, and that id does not
move. Judged only while this consumer is idle (a batch held through a store outage reads
nothing new, on purpose), and only after ``STALL_SECONDS``, well beyond a failover and
FastStream's 5 s back-off after a failed read. The worker is then restarted (given back and
taken again), with a new reader and a new client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

STALL_SECONDS = 20.0


async def undelivered(redis: Any, stream: str, group: str) -> tuple[bool, str]:
    """Whether the stream holds entries after the group's last delivered id (entries no
    consumer of the group was given yet), and that id. A group that is gone is not judged
    here (nothing this replica restarts brings its entries back)."""
    groups: Any = await redis.xinfo_groups(stream)
    found = [_text(g["last-delivered-id"]) for g in groups if _text(g["name"]) == group]
    if not found:
        return False, ""
    delivered = found[0]
    after: Any = await redis.xrange(stream, min=f"({delivered}", max="+", count=1)
    return bool(after), delivered


@dataclass
class ReaderWatch:
    redis: Any
    stream: str
    group: str
    stall_seconds: float = STALL_SECONDS
    delivered: str = ""  # the group's last delivered id when last seen moving
    since: float = 0.0  # when it was last seen moving (or the consumer busy, or nothing waiting)

    async def stalled(self, busy: bool, now: float) -> bool:
        """Whether entries have been waiting undelivered, with the consumer idle, for
        ``stall_seconds``; ``busy``: the consumer is handling entries now."""
        waiting, delivered = await undelivered(self.redis, self.stream, self.group)
        if busy or not waiting or delivered != self.delivered:
            self.delivered, self.since = delivered, now
            return False
        return now - self.since >= self.stall_seconds


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
