"""How current the projection is: what the keys service has stored (its watermark in Redis),
how far behind that the live model is, and whether the stream and the store answer.

Read by /ready and by every query answer (``stale``, ``lag_seconds``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from services.common.lag import LagTracker
from services.common.resilience import Outage

log = logging.getLogger(__name__)
EVENTS_MISSING = (
    "events_missing"  # /ready's reason while events the stream no longer holds are missing
)


class Freshness:
    def __init__(
        self,
        ready_lag_seconds: float,
        clock: Callable[[], float] = time.time,
        read_block_seconds: float = 1.0,
    ) -> None:
        self.ready_lag_seconds = ready_lag_seconds
        # a read may wait this long for new events: silence beyond it is not "nothing new"
        self.read_block_seconds = read_block_seconds
        self.clock = clock
        self.lag = LagTracker()
        self.stream = Outage("Redis (events stream)", log)
        self.store = Outage("view store", log)
        self.last_contact = clock()
        # (after, up_to): events the stream no longer holds, not applied yet; None when none
        self.missing: tuple[int, int] | None = None

    def observed(self, watermark: tuple[int, float] | None) -> None:
        """A successful read of the stream and the watermark."""
        self.last_contact = self.clock()
        if watermark is not None:
            self.lag.observe(*watermark)

    def lag_seconds(self, position: int) -> float:
        """Age of the oldest stored event not applied yet. Without an answer from Redis
        nobody can tell, so the time since it last answered (beyond one blocking read) counts
        too, whether or not an error has said so yet: never understated."""
        now = self.clock()
        lag = self.lag.lag_seconds(position, now)
        silent = now - self.last_contact
        if self.stream.is_down:
            lag = max(lag, silent)
        elif silent > self.read_block_seconds:
            lag = max(lag, silent - self.read_block_seconds)
        return round(lag, 3)

    def events_missing(self, after: int, up_to: int, remedy: str) -> None:
        """Events after ``after`` up to ``up_to`` are missing: answers say ``stale`` (or are
        refused) and /ready says why until ``caught_up``; the remedy is logged once."""
        if self.missing is None:
            log.error("events after position %d up to %d are missing: %s", after, up_to, remedy)
        self.missing = (after, up_to)

    def caught_up(self) -> None:
        if self.missing is not None:
            log.warning("caught up: the events missing up to %d are applied", self.missing[1])
        self.missing = None

    def stale_lag(self, position: int) -> float | None:
        """The lag when it is over the ready lag (answers then say ``stale``), else None;
        while events are missing, always the lag (never answered as if complete)."""
        if self.missing is not None:
            return self.lag_seconds(position)
        if (
            position >= self.lag.stored_position
            and not self.stream.is_down
            and self.clock() - self.last_contact <= self.ready_lag_seconds
        ):
            return None  # the common case, on every check: nothing stored is unapplied
        lag = self.lag_seconds(position)
        return lag if lag > self.ready_lag_seconds else None

    def not_ready_because(self, position: int) -> str | None:
        if self.missing is not None:
            return EVENTS_MISSING
        if self.stream.is_down:
            return "events stream unreachable"
        if self.store.is_down:
            return "view store unreachable"
        lag = self.lag_seconds(position)
        if lag > self.ready_lag_seconds:
            return f"behind what is stored by {lag:.1f} s"
        return None
