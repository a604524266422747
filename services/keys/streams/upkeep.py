"""Background care of the commands group: own entries whose delivery was lost are handled
soon even when no new entry arrives, entries another (crashed) consumer left pending too long
are claimed, and a reader that stopped reading is reported (``watchdog``)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from services.common.resilience import Outage, is_transient
from services.keys.streams import watchdog
from services.keys.streams.consumer import CommandConsumer

log = logging.getLogger(__name__)
SWEEP_SECONDS = 1.0
LOST_IDLE_MS = 2000


async def look_after_pending(
    consumer: CommandConsumer, outage: Outage, on_stalled: Callable[[], None] = lambda: None
) -> None:
    """Run until cancelled, or until the reader has stalled (``on_stalled`` is told)."""
    settings = consumer.settings
    next_reclaim = time.monotonic() + settings.reclaim_idle_ms / 2000
    watch = watchdog.ReaderWatch(
        consumer.redis, settings.commands_stream, settings.group, watchdog.STALL_SECONDS
    )
    while True:
        await asyncio.sleep(SWEEP_SECONDS)
        if consumer.stopping:
            return
        try:
            if not consumer.lock.locked() and await consumer.lost_entries_idle(LOST_IDLE_MS):
                await consumer.recover_own_pending()
            if time.monotonic() >= next_reclaim:
                next_reclaim = time.monotonic() + settings.reclaim_idle_ms / 2000
                await reclaim(consumer)
            if await watch.stalled(consumer.lock.locked(), time.monotonic()):
                on_stalled()
                return
            outage.succeeded()
        except Exception as error:
            if not is_transient(error):
                log.exception("looking after pending entries failed")
            else:
                outage.failed(error)


async def reclaim(consumer: CommandConsumer) -> None:
    """Take over entries pending longer than the reclaim idle time (on any consumer)."""
    settings = consumer.settings
    start = "0-0"
    while True:
        reply = await consumer.redis.xautoclaim(
            settings.commands_stream,
            settings.group,
            settings.consumer,
            min_idle_time=settings.reclaim_idle_ms,
            start_id=start,
            count=100,
        )
        start, claimed = reply[0], [(i, d) for i, d in reply[1] if d]
        await consumer.handle_redelivered(claimed)
        if start in (b"0-0", "0-0"):
            return
