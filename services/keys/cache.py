"""The command path's cache of aggregates, so a batch loads each aggregate at most once."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

Load = Callable[[UUID], Aggregate]  # raises AggregateNotFoundError (a repository's `get`)


class AggregateCache:
    """Aggregates as of the last saved batch, least recently used first (evicted first).
    Aggregates changed by the batch in progress are pinned: they cannot be evicted before the
    batch is saved."""

    def __init__(self, load: Load, capacity: int):
        self.load = load
        self.capacity = capacity
        self.items: OrderedDict[UUID, Aggregate] = OrderedDict()
        self.pinned: dict[UUID, Aggregate] = {}

    def get(self, aggregate_id: UUID) -> Any:
        found = self.cached(aggregate_id)
        if found is not None:
            return found
        try:
            found = self.load(aggregate_id)
        except AggregateNotFoundError:
            return None
        self.items[aggregate_id] = found
        self._trim()
        return found

    def cached(self, aggregate_id: UUID) -> Any:
        """The aggregate if it is cached (a hit counts as a use), without loading it."""
        found = self.pinned.get(aggregate_id)
        if found is not None:
            return found
        found = self.items.get(aggregate_id)
        if found is not None:
            self.items.move_to_end(aggregate_id)
        return found

    def pin(self, aggregate: Aggregate) -> None:
        self.pinned[aggregate.id] = aggregate

    def release(self) -> None:
        """The batch is saved: pinned aggregates become ordinary, most recently used."""
        for aggregate_id, aggregate in self.pinned.items():
            self.items[aggregate_id] = aggregate
            self.items.move_to_end(aggregate_id)
        self.pinned.clear()
        self._trim()

    def _trim(self) -> None:
        while len(self.items) > self.capacity:
            self.items.popitem(last=False)

    def clear(self) -> None:
        self.items.clear()
        self.pinned.clear()
