"""The live read model shared by the consumer (writer) and the HTTP queries (readers).

Everything runs in one asyncio loop: the consumer folds a batch without awaiting, so a query
always sees the model at one position.
"""

from __future__ import annotations

import asyncio
import time

from services.projections import rules


class PositionNotReached(Exception):
    def __init__(self, wanted: int, position: int) -> None:
        super().__init__(f"position {wanted} not applied yet")
        self.wanted = wanted
        self.position = position


class LiveReadModel:
    def __init__(self, model: rules.ReadModel | None = None) -> None:
        self.model = model if model is not None else rules.ReadModel()
        self.caught_up_at: float | None = None
        self._advanced = asyncio.Event()

    @property
    def position(self) -> int:
        return self.model.position

    def advanced(self) -> None:
        """Wake every query waiting for a position; later waiters get a fresh event."""
        event, self._advanced = self._advanced, asyncio.Event()
        event.set()

    def replace(self, model: rules.ReadModel) -> None:
        self.model = model
        self.advanced()

    def mark_caught_up(self) -> None:
        self.caught_up_at = time.monotonic()

    def caught_up_seconds_ago(self) -> float | None:
        return None if self.caught_up_at is None else time.monotonic() - self.caught_up_at

    async def wait_for(self, position: int | None, timeout: float) -> None:
        if position is None:
            return
        deadline = time.monotonic() + timeout
        while self.model.position < position:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PositionNotReached(position, self.model.position)
            try:
                await asyncio.wait_for(self._advanced.wait(), remaining)
            except TimeoutError:
                raise PositionNotReached(position, self.model.position) from None
