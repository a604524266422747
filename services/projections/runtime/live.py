"""The live read model shared by the consumer (writer) and the HTTP queries (readers).

Everything runs in one asyncio loop: the consumer folds a batch without awaiting, so a query
always sees the model at one position.
"""

from __future__ import annotations

import asyncio
import time

from services.projections.model import gc_policy
from services.projections.model.state import ReadModel


class PositionNotReached(Exception):
    def __init__(self, wanted: int, position: int) -> None:
        super().__init__(f"position {wanted} not applied yet")
        self.wanted = wanted
        self.position = position


class NotLoaded(Exception):
    """The service has started but has not loaded its read model yet."""


class LiveReadModel:
    def __init__(self, model: ReadModel | None = None, *, loaded: bool = True) -> None:
        self.model = _deferring(model if model is not None else ReadModel())
        # False while the service loads its model from the store: queries answer 503
        self.loaded = loaded
        self.caught_up_at: float | None = None
        self._advanced = asyncio.Event()
        self.growth_freeze = gc_policy.GrowthFreeze()

    @property
    def position(self) -> int:
        return self.model.position

    def advanced(self) -> None:
        """Wake every query waiting for a position; later waiters get a fresh event. A model
        grown by many keys is frozen out of the collector's full passes."""
        self.growth_freeze.check(self.model)
        event, self._advanced = self._advanced, asyncio.Event()
        event.set()

    def replace(self, model: ReadModel) -> None:
        self.model = _deferring(model)
        self.advanced()

    def settle(self) -> None:
        """Work out every key's grants and keep the model out of the cycle collector's way."""
        gc_policy.settle(self.model)
        self.growth_freeze.frozen_at = len(self.model.keys)

    def mark_caught_up(self) -> None:
        self.caught_up_at = time.monotonic()

    def caught_up_seconds_ago(self) -> float | None:
        return None if self.caught_up_at is None else time.monotonic() - self.caught_up_at

    def load(self, model: ReadModel) -> None:
        """The model loaded at start-up: queries are answered from now on."""
        self.model = _deferring(model)
        self.settle()
        self.loaded = True
        self.advanced()

    async def wait_for(self, position: int | None, timeout: float) -> None:
        """Return once the model is loaded and at ``position`` (a query without one does not
        wait for loading: it is answered 503 at once)."""
        if position is None:
            if not self.loaded:
                raise NotLoaded
            return
        deadline = time.monotonic() + timeout
        while not self.loaded or self.model.position < position:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise TimeoutError
                await asyncio.wait_for(self._advanced.wait(), remaining)
            except TimeoutError:
                if not self.loaded:
                    raise NotLoaded from None
                raise PositionNotReached(position, self.model.position) from None


def _deferring(model: ReadModel) -> ReadModel:
    """The model, keeping what its fold drops for ``gc_policy.release`` (the follower frees it
    a slice at a time)."""
    if model.released is None:
        model.released = []
    return model
