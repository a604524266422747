"""The pending entries of one commands stream's group, as its one active consumer sees them:
which entries were given out and never answered (lost with a dropped connection, or left by
the replica that held the partition before, not deliberately parked here), taking them over,
reading them again, and resetting their idle time while they are held through an outage."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

from redis.asyncio import Redis

from services.common.resilience import is_transient
from services.keys.settings import KeysSettings
from services.keys.streams.replies import text

T = TypeVar("T")
RawEntry = tuple[bytes, dict[bytes, bytes]]
CLAIM_STEP = 500  # pending entries looked at (and claimed) per call when taking over
Retry = Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]]


class OwnPending:
    def __init__(self, settings: KeysSettings, redis: Redis, parked: set[str], retry: Retry):
        self.settings = settings
        self.redis = redis
        self.parked = parked  # left pending after failing: not lost, retried later
        self.retry = retry  # an idempotent call, retried until Redis answers (or we stop)

    async def lost_before(self, entry_id: str) -> bool:
        """Whether entries older than ``entry_id`` are pending that this consumer is not
        deliberately leaving pending: delivered to it in a reply that never arrived, or to a
        replica that held the partition before (the group hands entries out in order, so
        whatever was given out before a batch is pending or answered by then)."""
        return await self.retry(lambda: self._any_lost(max=f"({entry_id}"))

    async def lost_idle(self, idle_ms: int) -> bool:
        """Whether entries not parked here have been pending longer than ``idle_ms``."""
        return await self._any_lost(max="+", idle=idle_ms)

    async def _any_lost(self, **bounds: Any) -> bool:
        pending = await self.redis.xpending_range(
            self.settings.commands_stream,
            self.settings.group,
            min="-",
            count=len(self.parked) + 1,
            **bounds,
        )
        return any(text(p["message_id"]) not in self.parked for p in pending)

    async def take_over(self) -> int:
        """Every entry pending on another consumer of the group becomes this consumer's
        (XCLAIM JUSTID: no delivery counted), so that reading its own pending list from the
        oldest gives every unanswered entry, in stream order. Returns how many moved."""
        settings, mine = self.settings, self.settings.consumer
        moved, start = 0, "-"
        while True:
            pending: Any = await self.retry(
                partial(
                    self.redis.xpending_range,
                    settings.commands_stream,
                    settings.group,
                    min=start,
                    max="+",
                    count=CLAIM_STEP,
                )
            )
            theirs = [p["message_id"] for p in pending if text(p["consumer"]) != mine]
            if theirs:
                await self.retry(
                    partial(
                        self.redis.xclaim,
                        settings.commands_stream,
                        settings.group,
                        mine,
                        min_idle_time=0,
                        message_ids=theirs,
                        justid=True,
                    )
                )
                moved += len(theirs)
            if len(pending) < CLAIM_STEP:
                return moved
            start = f"({text(pending[-1]['message_id'])}"

    async def read_after(self, start: str) -> list[RawEntry]:
        """Own pending entries after ``start`` ("0": from the oldest), one batch of them."""
        reply: Any = await self.retry(
            partial(
                self.redis.xreadgroup,
                self.settings.group,
                self.settings.consumer,
                {self.settings.commands_stream: start},
                count=self.settings.batch_size,
            )
        )
        return [(i, d) for _, batch in reply for i, d in batch if d] if reply else []

    async def hold(self, entry_ids: list[str]) -> None:
        """Reset the idle time of entries in hand (XCLAIM JUSTID does not count a delivery)."""
        try:
            await self.redis.xclaim(
                self.settings.commands_stream,
                self.settings.group,
                self.settings.consumer,
                min_idle_time=0,
                message_ids=list[Any](entry_ids),
                justid=True,
            )
        except Exception as error:
            if not is_transient(error):
                raise
